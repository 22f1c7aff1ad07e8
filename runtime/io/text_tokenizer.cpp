#include "runtime/io/text_tokenizer.h"

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "runtime/io/bpe.h"
#include "runtime/io/sentencepiece.h"

namespace galaxy::io {
namespace {
namespace fs = std::filesystem;

// Whether `path` names a byte-level BPE (else a SentencePiece model).
bool bpeFiles(const std::string &path) {
  std::error_code ec;
  if (fs::is_directory(path, ec))
    return !fs::exists(fs::path(path) / "tokenizer.model", ec);
  return absl::EndsWith(path, ".json");
}
} // namespace

TextTokenizer::TextTokenizer() = default;
TextTokenizer::TextTokenizer(TextTokenizer &&) = default;
TextTokenizer &TextTokenizer::operator=(TextTokenizer &&) = default;
TextTokenizer::~TextTokenizer() = default;

absl::StatusOr<TextTokenizer> TextTokenizer::fromPath(const std::string &path) {
  TextTokenizer t;
  if (bpeFiles(path)) {
    auto b = ByteLevelBpeTokenizer::fromPath(path);
    if (!b.ok())
      return b.status();
    t.bpe_ = std::make_unique<ByteLevelBpeTokenizer>(std::move(*b));
    return t;
  }
  std::error_code ec;
  const std::string model = fs::is_directory(path, ec)
                                ? (fs::path(path) / "tokenizer.model").string()
                                : path;
  auto s = SentencePieceTokenizer::fromFile(model);
  if (!s.ok())
    return s.status();
  t.sp_ = std::make_unique<SentencePieceTokenizer>(std::move(*s));
  return t;
}

int64_t TextTokenizer::vocabSize() const {
  return bpe_ ? bpe_->vocabSize() : sp_->vocabSize();
}

const std::string &TextTokenizer::path() const {
  return bpe_ ? bpe_->path() : sp_->path();
}

std::string TextTokenizer::piece(int32_t id) const {
  return bpe_ ? bpe_->piece(id) : sp_->piece(id);
}

absl::StatusOr<std::vector<int32_t>>
TextTokenizer::encode(std::string_view text, int64_t maxLen) const {
  return bpe_ ? bpe_->encode(text, maxLen) : sp_->encode(text, maxLen);
}

absl::StatusOr<std::string>
TextTokenizer::decode(const std::vector<int32_t> &ids, bool skipSpecial) const {
  // SentencePiece decodes as LlamaTokenizer's skip_special_tokens=True.
  return bpe_ ? bpe_->decode(ids, skipSpecial) : sp_->decode(ids);
}

} // namespace galaxy::io
