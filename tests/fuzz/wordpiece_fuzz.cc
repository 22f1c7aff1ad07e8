// The WordPiece tokenizer (runtime/io/wordpiece.cpp) on any text: with the
// demo vocab.txt, and with a vocab made of the input's own lines (plus the
// special tokens it needs). Properties: no crash or UB; every piece is in the
// vocab or [UNK]; encode() gives padSize ids inside the vocab, [CLS] first.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/str_split.h"
#include "runtime/io/wordpiece.h"
#include "tests/fuzz/fuzz_file.h"

using namespace galaxy;
using fuzz::violated;

namespace {
void check(const io::WordPieceTokenizer &tok, std::string_view text) {
  for (const std::string &piece : tok.tokenize(text))
    if (tok.id(piece) < 0)
      violated("piece '" + piece + "' is not in the vocab");
  for (int64_t pad : {1, 5, 64}) {
    io::EncodedText e = tok.encode(text, pad);
    if (int64_t(e.input_ids.size()) != pad ||
        int64_t(e.attention_mask.size()) != pad ||
        int64_t(e.token_type_ids.size()) != pad)
      violated("encode gave arrays not padSize long");
    if (e.input_ids[0] != tok.clsId())
      violated("encode did not start with [CLS]");
    for (int32_t id : e.input_ids)
      if (id < 0 || id >= tok.vocabSize())
        violated("encode gave id " + std::to_string(id));
  }
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const io::WordPieceTokenizer *demo = [] {
    auto t = io::WordPieceTokenizer::fromFile(GALAXY_FUZZ_VOCAB);
    if (!t.ok())
      violated(std::string(t.status().message()));
    return new io::WordPieceTokenizer(std::move(*t));
  }();
  const std::string_view text(reinterpret_cast<const char *>(data), size);
  check(*demo, text);
  std::vector<std::string> tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]",
                                     "[MASK]"};
  for (absl::string_view line :
       absl::StrSplit(absl::string_view(text.data(), text.size()), '\n'))
    tokens.emplace_back(line);
  absl::StatusOr<io::WordPieceTokenizer> own =
      io::WordPieceTokenizer::fromTokens(std::move(tokens), "fuzz");
  if (own.ok())
    check(*own, text);
  return 0;
}
