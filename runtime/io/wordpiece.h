// The BERT WordPiece tokenizer with Hugging Face BertTokenizer semantics
// (do_lower_case=true, strip accents, split CJK ideographs and punctuation).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"

namespace galaxy::io {

// One encoded sample, each array of length padSize.
struct EncodedText {
  std::vector<int32_t> input_ids;
  std::vector<float> attention_mask;
  std::vector<int32_t> token_type_ids;
};

class WordPieceTokenizer {
public:
  // Words longer than this many code points become [UNK] (as in BERT).
  static constexpr int kMaxCharsPerWord = 100;

  // vocab.txt: one token per line, id = line number (0-based). The vocab must
  // hold [UNK] and [CLS].
  static absl::StatusOr<WordPieceTokenizer>
  fromFile(const std::string &vocabPath);
  // Same from tokens in id order; `source` names them in errors.
  static absl::StatusOr<WordPieceTokenizer>
  fromTokens(std::vector<std::string> tokens, std::string source = "<tokens>");

  // Number of ids (lines of vocab.txt).
  int64_t vocabSize() const { return static_cast<int64_t>(tokens_.size()); }
  // -1 when absent.
  int32_t id(std::string_view token) const;
  const std::string &token(int32_t id) const { return tokens_.at(id); }
  int32_t unkId() const { return unkId_; }
  int32_t clsId() const { return clsId_; }

  // Basic tokenization: clean, split CJK, lower-case, strip accents, split on
  // whitespace and punctuation. Special tokens such as "[CLS]" pass through
  // whole.
  std::vector<std::string> basicTokenize(std::string_view text) const;
  // Basic tokenization then WordPiece: "unaffable" -> "un", "##aff", "##able".
  std::vector<std::string> tokenize(std::string_view text) const;
  std::vector<int32_t> tokenizeToIds(std::string_view text) const;
  // The prototype's encoding of one sample: [CLS] + pieces, truncated to
  // padSize, padded with id 0; mask 1 on real tokens; token types 0. (No [SEP],
  // like the prototype.)
  EncodedText encode(std::string_view text, int64_t padSize) const;

private:
  void wordPiece(const std::string &word, std::vector<std::string> *out) const;

  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int32_t> ids_;
  int32_t unkId_ = -1;
  int32_t clsId_ = -1;
};

} // namespace galaxy::io
