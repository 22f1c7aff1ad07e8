// A SentencePiece model (a LLaMA checkpoint's tokenizer.model) through
// Debian's libsentencepiece, encoding as Hugging Face's LlamaTokenizer does by
// default: the BOS id, then the model's pieces; no EOS.
//
// The library is reached through libgalaxy_sentencepiece.so, loaded privately
// (sentencepiece_shim.cpp says why it cannot be linked directly).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace galaxy::io {

class SentencePieceTokenizer {
public:
  // Loads `modelPath`; errors name the file. Fails when the model has no BOS
  // piece (LlamaTokenizer prepends one).
  static absl::StatusOr<SentencePieceTokenizer>
  fromFile(const std::string &modelPath);

  SentencePieceTokenizer(SentencePieceTokenizer &&);
  SentencePieceTokenizer &operator=(SentencePieceTokenizer &&);
  ~SentencePieceTokenizer();

  int64_t vocabSize() const { return vocabSize_; }
  int32_t bosId() const { return bosId_; }
  // The piece of `id` ("?" outside the vocabulary), for messages.
  std::string piece(int32_t id) const;
  const std::string &path() const { return path_; }

  // The model's ids of `text`, without BOS.
  absl::StatusOr<std::vector<int32_t>> pieces(std::string_view text) const;
  // LlamaTokenizer(text, truncation=True, max_length=maxLen)'s input_ids:
  // BOS + pieces, cut to maxLen ids.
  absl::StatusOr<std::vector<int32_t>> encode(std::string_view text,
                                              int64_t maxLen) const;
  // The text of `ids`, as LlamaTokenizer.decode(ids, skip_special_tokens=
  // True) gives it: BOS/EOS dropped, pieces joined, "▁" as spaces, no space
  // before the first word. Fails on an id outside the vocabulary.
  absl::StatusOr<std::string> decode(const std::vector<int32_t> &ids) const;

private:
  struct Handle;
  SentencePieceTokenizer() = default;

  std::unique_ptr<Handle> h_;
  std::string path_;
  int64_t vocabSize_ = 0;
  int32_t bosId_ = -1;
};

} // namespace galaxy::io
