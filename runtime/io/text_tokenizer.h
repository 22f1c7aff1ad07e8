// A model's own text tokenizer, chosen by its files: a SentencePiece
// `tokenizer.model` (LLaMA) or a byte-level BPE `tokenizer.json` /
// `vocab.json` + `merges.txt` (BART). Each encodes as the model's Hugging
// Face tokenizer does by default (LlamaTokenizer: BOS + pieces; BART:
// <s> pieces </s>).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace galaxy::io {

class SentencePieceTokenizer;
class ByteLevelBpeTokenizer;

class TextTokenizer {
public:
  // `path`: a .model file (SentencePiece); a .json file (byte-level BPE:
  // tokenizer.json, or vocab.json with merges.txt beside it); or a folder
  // holding tokenizer.model, else tokenizer.json, else vocab.json +
  // merges.txt.
  static absl::StatusOr<TextTokenizer> fromPath(const std::string &path);

  TextTokenizer(TextTokenizer &&);
  TextTokenizer &operator=(TextTokenizer &&);
  ~TextTokenizer();

  bool isBpe() const { return bpe_ != nullptr; }
  int64_t vocabSize() const;
  const std::string &path() const;
  // The token of `id`, for messages.
  std::string piece(int32_t id) const;
  // The model tokenizer's input_ids of `text`, cut to maxLen ids.
  absl::StatusOr<std::vector<int32_t>> encode(std::string_view text,
                                              int64_t maxLen) const;
  // The text of `ids` (SentencePiece: special tokens always skipped, as
  // LlamaTokenizer.decode(skip_special_tokens=True)).
  absl::StatusOr<std::string> decode(const std::vector<int32_t> &ids,
                                     bool skipSpecial) const;

private:
  TextTokenizer();
  std::unique_ptr<SentencePieceTokenizer> sp_;
  std::unique_ptr<ByteLevelBpeTokenizer> bpe_;
};

} // namespace galaxy::io
