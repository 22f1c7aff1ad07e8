#include "runtime/io/wordpiece.h"

#include <algorithm>
#include <fstream>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/io/line_reader.h"
#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/utf8.h>

namespace galaxy::io {
namespace {

// HF keeps these whole (never_split = the tokenizer's special tokens).
bool isSpecialToken(std::string_view s) {
  return s == "[UNK]" || s == "[SEP]" || s == "[PAD]" || s == "[CLS]" ||
         s == "[MASK]";
}

bool inCategory(UChar32 c, uint32_t mask) {
  return (U_GET_GC_MASK(c) & mask) != 0;
}

bool isWhitespace(UChar32 c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
         inCategory(c, U_GC_ZS_MASK);
}

bool isControl(UChar32 c) {
  if (c == '\t' || c == '\n' || c == '\r')
    return false;
  return inCategory(c, U_GC_C_MASK);
}

bool isPunctuation(UChar32 c) {
  // BERT treats every non-alphanumeric ASCII symbol as punctuation ("$", "^",
  // "`" ...).
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
      (c >= 123 && c <= 126))
    return true;
  return inCategory(c, U_GC_P_MASK);
}

// The CJK Unified Ideographs blocks (not Hangul, Hiragana or Katakana), as in
// BERT.
bool isChineseChar(UChar32 c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

void appendUtf8(std::string *s, UChar32 c) {
  char buf[U8_MAX_LENGTH];
  int32_t n = 0;
  UBool err = false;
  U8_APPEND(buf, n, U8_MAX_LENGTH, c, err);
  if (!err)
    s->append(buf, n);
}

// Lower-case (full mapping, like Python's str.lower), NFD, then drop Mn marks.
std::string lowerStripAccents(const std::string &word) {
  icu::UnicodeString u = icu::UnicodeString::fromUTF8(word);
  u.toLower(icu::Locale::getRoot());
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2 *nfd = icu::Normalizer2::getNFDInstance(status);
  if (U_SUCCESS(status))
    u = nfd->normalize(u, status);
  std::string out;
  for (int32_t i = 0; i < u.length();) {
    UChar32 c = u.char32At(i);
    i += U16_LENGTH(c);
    if (!inCategory(c, U_GC_MN_MASK))
      appendUtf8(&out, c);
  }
  return out;
}

} // namespace

absl::StatusOr<WordPieceTokenizer>
WordPieceTokenizer::fromFile(const std::string &vocabPath) {
  std::ifstream in(vocabPath, std::ios::binary);
  if (!in)
    return absl::NotFoundError(absl::StrFormat(
        "cannot open vocab file %s (one token per line)", vocabPath));
  std::vector<std::string> tokens;
  std::string line;
  for (int64_t lineNo = 1;; ++lineNo) {
    absl::StatusOr<bool> more = readLine(in, line, vocabPath, lineNo);
    if (!more.ok())
      return more.status();
    if (!*more)
      break;
    if (!line.empty() && line.back() == '\r') // tolerate CRLF files
      line.pop_back();
    tokens.push_back(line);
  }
  return fromTokens(std::move(tokens), vocabPath);
}

absl::StatusOr<WordPieceTokenizer>
WordPieceTokenizer::fromTokens(std::vector<std::string> tokens,
                               std::string source) {
  WordPieceTokenizer t;
  t.tokens_ = std::move(tokens);
  for (size_t i = 0; i < t.tokens_.size(); ++i)
    t.ids_[t.tokens_[i]] =
        static_cast<int32_t>(i); // a repeated token keeps its last id, as in HF
  t.unkId_ = t.id("[UNK]");
  t.clsId_ = t.id("[CLS]");
  // Every token the message names is required: a vocab without [PAD] or
  // [SEP] is not a BERT vocab (a wrong file, or one cut short), even though
  // encode() itself only reads [CLS] and [UNK].
  std::vector<std::string> missing;
  for (const char *special : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"})
    if (t.id(special) < 0)
      missing.push_back(special);
  if (!missing.empty())
    return absl::InvalidArgumentError(absl::StrFormat(
        "vocab %s lacks %s: a BERT vocab must list [PAD], [UNK], [CLS], "
        "[SEP], [MASK]",
        source, absl::StrJoin(missing, ", ")));
  return t;
}

int32_t WordPieceTokenizer::id(std::string_view token) const {
  auto it = ids_.find(std::string(token));
  return it == ids_.end() ? -1 : it->second;
}

std::vector<std::string>
WordPieceTokenizer::basicTokenize(std::string_view text) const {
  // Clean and split on whitespace, putting CJK ideographs in words of their
  // own.
  std::vector<std::string> words;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty())
      words.push_back(std::move(cur));
    cur.clear();
  };
  const auto *s = reinterpret_cast<const uint8_t *>(text.data());
  const int32_t n = static_cast<int32_t>(text.size());
  for (int32_t i = 0; i < n;) {
    UChar32 c;
    U8_NEXT(s, i, n, c);
    if (c < 0 || c == 0 || c == 0xFFFD ||
        isControl(c)) // invalid UTF-8 is dropped too
      continue;
    if (isWhitespace(c) || u_isUWhiteSpace(c)) {
      flush();
    } else if (isChineseChar(c)) {
      flush();
      appendUtf8(&cur, c);
      flush();
    } else {
      appendUtf8(&cur, c);
    }
  }
  flush();

  std::vector<std::string> out;
  for (const std::string &w : words) {
    if (isSpecialToken(w)) {
      out.push_back(w);
      continue;
    }
    const std::string lw = lowerStripAccents(w);
    const auto *p = reinterpret_cast<const uint8_t *>(lw.data());
    const int32_t m = static_cast<int32_t>(lw.size());
    std::string piece;
    for (int32_t i = 0; i < m;) {
      const int32_t start = i;
      UChar32 c;
      U8_NEXT(p, i, m, c);
      if (isPunctuation(c)) {
        if (!piece.empty())
          out.push_back(std::move(piece));
        piece.clear();
        out.emplace_back(lw.substr(start, i - start));
      } else {
        piece.append(lw, start, i - start);
      }
    }
    if (!piece.empty())
      out.push_back(std::move(piece));
  }
  return out;
}

void WordPieceTokenizer::wordPiece(const std::string &word,
                                   std::vector<std::string> *out) const {
  // Byte offset of every code point, plus the end.
  std::vector<int32_t> at;
  const auto *p = reinterpret_cast<const uint8_t *>(word.data());
  const int32_t n = static_cast<int32_t>(word.size());
  for (int32_t i = 0; i < n;) {
    at.push_back(i);
    U8_FWD_1(p, i, n);
  }
  const size_t chars = at.size();
  at.push_back(n);
  if (chars > static_cast<size_t>(kMaxCharsPerWord)) {
    out->push_back("[UNK]");
    return;
  }
  std::vector<std::string> pieces;
  size_t start = 0;
  while (start < chars) {
    size_t end = chars;
    std::string found;
    for (; end > start; --end) {
      std::string sub = word.substr(at[start], at[end] - at[start]);
      if (start > 0)
        sub = "##" + sub;
      if (ids_.count(sub)) {
        found = std::move(sub);
        break;
      }
    }
    if (end == start) { // no piece matches: the whole word is unknown
      out->push_back("[UNK]");
      return;
    }
    pieces.push_back(std::move(found));
    start = end;
  }
  for (auto &piece : pieces)
    out->push_back(std::move(piece));
}

std::vector<std::string>
WordPieceTokenizer::tokenize(std::string_view text) const {
  std::vector<std::string> out;
  for (const std::string &w : basicTokenize(text)) {
    if (isSpecialToken(w))
      out.push_back(w);
    else
      wordPiece(w, &out);
  }
  return out;
}

std::vector<int32_t>
WordPieceTokenizer::tokenizeToIds(std::string_view text) const {
  std::vector<int32_t> ids;
  for (const std::string &t : tokenize(text)) {
    int32_t i = id(t);
    ids.push_back(i >= 0 ? i : unkId_); // a special token absent from the vocab
  }
  return ids;
}

EncodedText WordPieceTokenizer::encode(std::string_view text,
                                       int64_t padSize) const {
  std::vector<int32_t> ids{clsId_};
  for (int32_t i : tokenizeToIds(text))
    ids.push_back(i);
  EncodedText e;
  const size_t S = static_cast<size_t>(std::max<int64_t>(padSize, 0));
  e.input_ids.assign(S, 0);
  e.attention_mask.assign(S, 0.0f);
  e.token_type_ids.assign(S, 0);
  for (size_t i = 0; i < S && i < ids.size(); ++i) {
    e.input_ids[i] = ids[i];
    e.attention_mask[i] = 1.0f;
  }
  return e;
}

} // namespace galaxy::io
