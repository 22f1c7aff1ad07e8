// bpe_encode TOKENIZER [MAX_LEN]: for each {"text": "..."} line of stdin, one
// line {"pieces": [...], "input_ids": [...], "decoded": "...",
// "decoded_skip": "..."} on stdout: ByteLevelBpeTokenizer's pieces, its
// encode(text, MAX_LEN) (default 1 << 20) and the decodings of input_ids with
// and without the special tokens. bpe_hf_check.py compares them with Hugging
// Face's tokenizers.
#include <cstdlib>
#include <iostream>
#include <string>

#include "runtime/io/bpe.h"
#include <nlohmann/json.hpp>

int main(int argc, char **argv) {
  if (argc < 2) {
    std::cerr << "usage: bpe_encode TOKENIZER [MAX_LEN] < texts.jsonl\n";
    return 2;
  }
  auto tok = galaxy::io::ByteLevelBpeTokenizer::fromPath(argv[1]);
  if (!tok.ok()) {
    std::cerr << tok.status().message() << "\n";
    return 1;
  }
  const int64_t maxLen = argc > 2 ? std::atoll(argv[2]) : (1 << 20);
  std::string line;
  while (std::getline(std::cin, line)) {
    const std::string text = nlohmann::json::parse(line)["text"];
    auto pieces = tok->pieces(text);
    auto ids = tok->encode(text, maxLen);
    if (!pieces.ok() || !ids.ok()) {
      std::cerr << (pieces.ok() ? ids.status() : pieces.status()).message()
                << "\n";
      return 1;
    }
    nlohmann::json out = {{"pieces", *pieces},
                          {"input_ids", *ids},
                          {"decoded", tok->decode(*ids, false)},
                          {"decoded_skip", tok->decode(*ids, true)}};
    std::cout << out.dump() << "\n";
  }
  return 0;
}
