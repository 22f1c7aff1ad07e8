// A byte-level BPE tokenizer (GPT-2 / RoBERTa / BART): a model's own
// `vocab.json` + `merges.txt`, or a `tokenizer.json` whose model is BPE under
// a ByteLevel pre-tokenizer, encoding as Hugging Face's `tokenizers` does:
// special (added) tokens split out whole, then GPT-2's pre-tokenizer regex
// (through ICU), each word's UTF-8 bytes mapped to GPT-2's printable
// characters, and the merges applied lowest rank first. `encode` wraps the
// pieces as BART's tokenizer does: `<s> pieces </s>`.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"

namespace galaxy::io {

class ByteLevelBpeTokenizer {
public:
  // `path`: a tokenizer.json, a vocab.json (merges.txt beside it), or a
  // folder holding either (tokenizer.json preferred, as AutoTokenizer does).
  static absl::StatusOr<ByteLevelBpeTokenizer>
  fromPath(const std::string &path);
  // vocab.json ({"token": id}) and merges.txt ("a b" a line, after an
  // optional "#version" line). Special tokens: <s>, <pad>, </s>, <unk> and
  // <mask> where the vocabulary has them (<mask> takes the whitespace before
  // it, as BartTokenizer's does).
  static absl::StatusOr<ByteLevelBpeTokenizer>
  fromVocabMerges(const std::string &vocabJson, const std::string &mergesTxt);
  // tokenizer.json: model BPE (no dropout, no word prefixes or suffixes, no
  // byte fallback), no normalizer, pre-tokenizer ByteLevel; its added tokens.
  static absl::StatusOr<ByteLevelBpeTokenizer>
  fromTokenizerJson(const std::string &path);

  ByteLevelBpeTokenizer(ByteLevelBpeTokenizer &&);
  ByteLevelBpeTokenizer &operator=(ByteLevelBpeTokenizer &&);
  ~ByteLevelBpeTokenizer();

  // One past the largest id (vocabulary and added tokens).
  int64_t vocabSize() const { return vocabSize_; }
  int32_t bosId() const { return bosId_; }
  int32_t eosId() const { return eosId_; }
  const std::string &path() const { return path_; }
  // The token of `id` ("?" when none), for messages.
  std::string piece(int32_t id) const;

  // The ids of `text` without <s> / </s>.
  absl::StatusOr<std::vector<int32_t>> pieces(std::string_view text) const;
  // tokenizer(text, truncation=True, max_length=maxLen)["input_ids"]:
  // <s>, the pieces cut to maxLen - 2, </s>.
  absl::StatusOr<std::vector<int32_t>> encode(std::string_view text,
                                              int64_t maxLen) const;
  // tokenizer.decode(ids, skip_special_tokens=skipSpecial): the tokens'
  // bytes, invalid UTF-8 replaced by U+FFFD.
  std::string decode(const std::vector<int32_t> &ids, bool skipSpecial) const;

private:
  struct Regex;
  struct AddedToken {
    std::string content;
    int32_t id = 0;
    bool special = false, lstrip = false, rstrip = false;
  };
  ByteLevelBpeTokenizer();
  absl::Status finish(); // ids, specials, merges checked; the regex compiled
  // Appends the ids of one pre-tokenized segment (no added tokens in it).
  absl::Status encodeSegment(std::string_view text,
                             std::vector<int32_t> *out) const;
  void encodeWord(const std::string &mapped, std::vector<int32_t> *out) const;

  std::string path_;
  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> tokens_; // by id ("" where none)
  // Rank of a merge, by its pair's tokens joined with a space.
  std::unordered_map<std::string, int32_t> ranks_;
  std::vector<AddedToken> added_;
  bool addPrefixSpace_ = false;
  std::string unk_; // empty: a byte outside the vocabulary is an error
  int32_t bosId_ = -1, eosId_ = -1;
  int64_t vocabSize_ = 0;
  std::unique_ptr<Regex> regex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

// GPT-2's reversible map of the 256 bytes to printable characters (UTF-8):
// '!'..'~', '¡'..'¬', '®'..'ÿ' stand for themselves, the other bytes for
// U+0100 on, in byte order.
const std::vector<std::string> &byteToUnicode();

} // namespace galaxy::io
