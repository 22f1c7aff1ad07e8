#include "runtime/io/bpe.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include <nlohmann/json.hpp>
#include <unicode/regex.h>
#include <unicode/unistr.h>
#include <unicode/ustring.h>

namespace galaxy::io {
namespace {

namespace fs = std::filesystem;

// GPT-2's pre-tokenizer (Hugging Face's ByteLevel), with \s and \S spelled
// as the White_Space property, which is what they mean to the Oniguruma
// engine of `tokenizers` (ICU documents its own \s as [\t\n\f\r\p{Z}]).
constexpr const char *kPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\p{White_Space}\p{L}\p{N}]+|\p{White_Space}+(?!\P{White_Space})|\p{White_Space}+)";

absl::StatusOr<nlohmann::json> readJson(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return absl::NotFoundError(absl::StrFormat("cannot open %s", path));
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded())
    return absl::InvalidArgumentError(
        absl::StrFormat("%s is not valid JSON", path));
  return j;
}

// Whitespace as Rust's char::is_whitespace (the added tokens' lstrip/rstrip).
bool isSpace(UChar32 c) { return u_hasBinaryProperty(c, UCHAR_WHITE_SPACE); }

// The UTF-8 of a UTF-16 range.
std::string utf8(const icu::UnicodeString &s, int32_t begin, int32_t end) {
  std::string out;
  s.tempSubStringBetween(begin, end).toUTF8String(out);
  return out;
}

} // namespace

struct ByteLevelBpeTokenizer::Regex {
  std::unique_ptr<icu::RegexPattern> pattern;
};

ByteLevelBpeTokenizer::ByteLevelBpeTokenizer() = default;
ByteLevelBpeTokenizer::ByteLevelBpeTokenizer(ByteLevelBpeTokenizer &&) =
    default;
ByteLevelBpeTokenizer &
ByteLevelBpeTokenizer::operator=(ByteLevelBpeTokenizer &&) = default;
ByteLevelBpeTokenizer::~ByteLevelBpeTokenizer() = default;

const std::vector<std::string> &byteToUnicode() {
  static const std::vector<std::string> map = [] {
    std::vector<std::string> m(256);
    int32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') ||
                             (b >= 0xA1 && b <= 0xAC) ||
                             (b >= 0xAE && b <= 0xFF);
      const UChar32 c = printable ? b : next++;
      icu::UnicodeString(c).toUTF8String(m[b]);
    }
    return m;
  }();
  return map;
}

absl::StatusOr<ByteLevelBpeTokenizer>
ByteLevelBpeTokenizer::fromPath(const std::string &path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    const fs::path dir(path);
    if (fs::exists(dir / "tokenizer.json"))
      return fromTokenizerJson((dir / "tokenizer.json").string());
    if (fs::exists(dir / "vocab.json"))
      return fromVocabMerges((dir / "vocab.json").string(),
                             (dir / "merges.txt").string());
    return absl::NotFoundError(absl::StrFormat(
        "%s holds neither tokenizer.json nor vocab.json + merges.txt", path));
  }
  if (fs::path(path).filename() == "vocab.json")
    return fromVocabMerges(
        path, (fs::path(path).parent_path() / "merges.txt").string());
  return fromTokenizerJson(path);
}

absl::StatusOr<ByteLevelBpeTokenizer>
ByteLevelBpeTokenizer::fromVocabMerges(const std::string &vocabJson,
                                       const std::string &mergesTxt) {
  ByteLevelBpeTokenizer t;
  t.path_ = vocabJson;
  absl::StatusOr<nlohmann::json> v = readJson(vocabJson);
  if (!v.ok())
    return v.status();
  if (!v->is_object())
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: expected an object {\"token\": id, ...}", vocabJson));
  for (auto &[tok, id] : v->items()) {
    if (!id.is_number_integer())
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: the id of \"%s\" is not an integer", vocabJson, tok));
    t.vocab_[tok] = id.get<int32_t>();
  }
  std::ifstream in(mergesTxt, std::ios::binary);
  if (!in)
    return absl::NotFoundError(absl::StrFormat(
        "cannot open %s (the merges of %s)", mergesTxt, vocabJson));
  std::string line;
  for (int64_t lineNo = 1; std::getline(in, line); ++lineNo) {
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    if ((lineNo == 1 && line.rfind("#version", 0) == 0) || line.empty())
      continue;
    std::vector<std::string> ab = absl::StrSplit(line, ' ');
    if (ab.size() != 2)
      return absl::InvalidArgumentError(
          absl::StrFormat("%s:%d: a merge is two tokens separated by one space",
                          mergesTxt, lineNo));
    t.ranks_.emplace(line, static_cast<int32_t>(t.ranks_.size()));
  }
  // BartTokenizer's special tokens; <mask> takes the space before it.
  for (const char *s : {"<s>", "<pad>", "</s>", "<unk>", "<mask>"})
    if (auto it = t.vocab_.find(s); it != t.vocab_.end())
      t.added_.push_back(
          {s, it->second, true, std::string(s) == "<mask>", false});
  if (t.vocab_.count("<unk>"))
    t.unk_ = "<unk>";
  if (absl::Status s = t.finish(); !s.ok())
    return s;
  return t;
}

absl::StatusOr<ByteLevelBpeTokenizer>
ByteLevelBpeTokenizer::fromTokenizerJson(const std::string &path) {
  absl::StatusOr<nlohmann::json> jr = readJson(path);
  if (!jr.ok())
    return jr.status();
  const nlohmann::json &j = *jr;
  auto bad = [&](const std::string &what) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: %s (galaxy reads byte-level BPE tokenizers: GPT-2, RoBERTa, "
        "BART)",
        path, what));
  };
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object())
    return bad("no \"model\" object");
  const nlohmann::json &m = j["model"];
  if (m.value("type", std::string()) != "BPE")
    return bad(absl::StrCat("model type \"", m.value("type", std::string("?")),
                            "\" is not BPE"));
  for (const char *key :
       {"dropout", "continuing_subword_prefix", "end_of_word_suffix"})
    if (m.contains(key) && !m[key].is_null() &&
        !(m[key].is_string() && m[key].get<std::string>().empty()))
      return bad(absl::StrCat("BPE option \"", key, "\" is not supported"));
  if (m.value("byte_fallback", false))
    return bad("BPE byte_fallback (a SentencePiece-style model) is not "
               "supported");
  if (m.value("ignore_merges", false))
    return bad("BPE ignore_merges is not supported");
  if (j.contains("normalizer") && !j["normalizer"].is_null())
    return bad("a normalizer is not supported");
  const nlohmann::json pre = j.value("pre_tokenizer", nlohmann::json());
  if (!pre.is_object() || pre.value("type", std::string()) != "ByteLevel" ||
      !pre.value("use_regex", true))
    return bad("the pre-tokenizer is not ByteLevel (with its regex)");
  ByteLevelBpeTokenizer t;
  t.path_ = path;
  t.addPrefixSpace_ = pre.value("add_prefix_space", false);
  if (!m.contains("vocab") || !m["vocab"].is_object())
    return bad("model.vocab is not an object");
  for (auto &[tok, id] : m["vocab"].items()) {
    if (!id.is_number_integer())
      return bad(absl::StrCat("the id of \"", tok, "\" is not an integer"));
    t.vocab_[tok] = id.get<int32_t>();
  }
  if (!m.contains("merges") || !m["merges"].is_array())
    return bad("model.merges is not an array");
  for (const nlohmann::json &mg : m["merges"]) {
    // "a b" (tokenizers < 0.20 and most files) or ["a", "b"].
    std::string key;
    if (mg.is_string())
      key = mg.get<std::string>();
    else if (mg.is_array() && mg.size() == 2 && mg[0].is_string() &&
             mg[1].is_string())
      key = mg[0].get<std::string>() + " " + mg[1].get<std::string>();
    else
      return bad(absl::StrCat("merge ", mg.dump(), " is not \"a b\""));
    t.ranks_.emplace(key, static_cast<int32_t>(t.ranks_.size()));
  }
  if (m.contains("unk_token") && m["unk_token"].is_string())
    t.unk_ = m["unk_token"].get<std::string>();
  for (const nlohmann::json &a : j.value("added_tokens", nlohmann::json())) {
    if (!a.is_object() || !a.contains("id") || !a.contains("content"))
      return bad("an added token lacks its id or content");
    if (a.value("single_word", false))
      return bad("single_word added tokens are not supported");
    t.added_.push_back({a["content"].get<std::string>(), a["id"].get<int32_t>(),
                        a.value("special", false), a.value("lstrip", false),
                        a.value("rstrip", false)});
  }
  if (absl::Status s = t.finish(); !s.ok())
    return s;
  // RobertaProcessing names its own <s> / </s>.
  const nlohmann::json post = j.value("post_processor", nlohmann::json());
  if (post.is_object() &&
      post.value("type", std::string()) == "RobertaProcessing") {
    if (post.contains("cls") && post["cls"].is_array() &&
        post["cls"].size() == 2)
      t.bosId_ = post["cls"][1].get<int32_t>();
    if (post.contains("sep") && post["sep"].is_array() &&
        post["sep"].size() == 2)
      t.eosId_ = post["sep"][1].get<int32_t>();
  }
  return t;
}

absl::Status ByteLevelBpeTokenizer::finish() {
  int64_t maxId = -1;
  for (const auto &[tok, id] : vocab_) {
    if (id < 0)
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: token \"%s\" has the negative id %d", path_, tok, id));
    maxId = std::max<int64_t>(maxId, id);
  }
  for (const AddedToken &a : added_) {
    if (a.id < 0 || a.content.empty())
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: added token \"%s\" (id %d) is empty or negative",
                          path_, a.content, a.id));
    maxId = std::max<int64_t>(maxId, a.id);
  }
  vocabSize_ = maxId + 1;
  tokens_.assign(vocabSize_, "");
  for (const auto &[tok, id] : vocab_)
    tokens_[id] = tok;
  for (const AddedToken &a : added_)
    tokens_[a.id] = a.content;
  for (const auto &[pair, rank] : ranks_) {
    const size_t sp = pair.find(' ');
    const std::string merged = pair.substr(0, sp) + pair.substr(sp + 1);
    if (!vocab_.count(merged))
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: merge \"%s\" makes \"%s\", which the vocabulary lacks", path_,
          pair, merged));
  }
  for (const std::string &b : byteToUnicode())
    if (!vocab_.count(b) && unk_.empty())
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: the vocabulary lacks the byte token \"%s\" and has no "
          "unk_token: not a byte-level BPE",
          path_, b));
  auto idOf = [&](const char *tok) {
    auto it = vocab_.find(tok);
    if (it != vocab_.end())
      return it->second;
    for (const AddedToken &a : added_)
      if (a.content == tok)
        return a.id;
    return -1;
  };
  bosId_ = idOf("<s>");
  eosId_ = idOf("</s>");
  // Longest first: at one position the longer added token wins.
  std::stable_sort(added_.begin(), added_.end(),
                   [](const AddedToken &a, const AddedToken &b) {
                     return a.content.size() > b.content.size();
                   });
  UErrorCode err = U_ZERO_ERROR;
  UParseError pe;
  regex_ = std::make_unique<Regex>();
  regex_->pattern.reset(icu::RegexPattern::compile(
      icu::UnicodeString::fromUTF8(kPattern), pe, err));
  if (U_FAILURE(err))
    return absl::InternalError(
        absl::StrCat("the byte-level pre-tokenizer regex does not compile: ",
                     u_errorName(err)));
  return absl::OkStatus();
}

std::string ByteLevelBpeTokenizer::piece(int32_t id) const {
  if (id < 0 || id >= vocabSize_ || tokens_[id].empty())
    return "?";
  return tokens_[id];
}

void ByteLevelBpeTokenizer::encodeWord(const std::string &mapped,
                                       std::vector<int32_t> *out) const {
  if (auto it = cache_.find(mapped); it != cache_.end()) {
    out->insert(out->end(), it->second.begin(), it->second.end());
    return;
  }
  // One symbol per character, then the merges: each round the adjacent pair
  // of lowest rank, leftmost on a tie (as tokenizers' priority queue).
  std::vector<std::string> sym;
  const icu::UnicodeString u = icu::UnicodeString::fromUTF8(mapped);
  for (int32_t i = 0; i < u.length(); i = u.moveIndex32(i, 1))
    sym.push_back(utf8(u, i, u.moveIndex32(i, 1)));
  while (sym.size() > 1) {
    int32_t best = std::numeric_limits<int32_t>::max();
    size_t at = 0;
    for (size_t i = 0; i + 1 < sym.size(); ++i) {
      auto it = ranks_.find(sym[i] + " " + sym[i + 1]);
      if (it != ranks_.end() && it->second < best) {
        best = it->second;
        at = i;
      }
    }
    if (best == std::numeric_limits<int32_t>::max())
      break;
    sym[at] += sym[at + 1];
    sym.erase(sym.begin() + at + 1);
  }
  std::vector<int32_t> ids;
  for (const std::string &s : sym) {
    auto it = vocab_.find(s);
    if (it != vocab_.end())
      ids.push_back(it->second);
    else // finish() made sure unk_ exists when a byte may be missing
      ids.push_back(vocab_.at(unk_));
  }
  out->insert(out->end(), ids.begin(), ids.end());
  cache_.emplace(mapped, std::move(ids));
}

absl::Status
ByteLevelBpeTokenizer::encodeSegment(std::string_view text,
                                     std::vector<int32_t> *out) const {
  if (text.empty())
    return absl::OkStatus();
  std::string s(text);
  if (addPrefixSpace_ && s[0] != ' ')
    s.insert(s.begin(), ' ');
  const icu::UnicodeString u = icu::UnicodeString::fromUTF8(s);
  UErrorCode err = U_ZERO_ERROR;
  std::unique_ptr<icu::RegexMatcher> m(regex_->pattern->matcher(u, err));
  if (U_FAILURE(err))
    return absl::InternalError(
        absl::StrCat("the pre-tokenizer regex failed: ", u_errorName(err)));
  const std::vector<std::string> &map = byteToUnicode();
  auto word = [&](int32_t b, int32_t e) {
    std::string mapped;
    for (unsigned char c : utf8(u, b, e))
      mapped += map[c];
    encodeWord(mapped, out);
  };
  int32_t last = 0;
  while (m->find(err) && U_SUCCESS(err)) {
    const int32_t b = m->start(err), e = m->end(err);
    if (b > last) // text no alternative matched stays a word of its own
      word(last, b);
    word(b, e);
    last = e;
  }
  if (U_FAILURE(err))
    return absl::InternalError(
        absl::StrCat("the pre-tokenizer regex failed: ", u_errorName(err)));
  if (last < u.length())
    word(last, u.length());
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int32_t>>
ByteLevelBpeTokenizer::pieces(std::string_view text) const {
  // Added tokens split out first (tokenizers' AddedVocabulary): the earliest
  // match, the longest at one position; lstrip / rstrip take the whitespace
  // beside it.
  const icu::UnicodeString u =
      icu::UnicodeString::fromUTF8(icu::StringPiece(text.data(), text.size()));
  std::vector<int32_t> out;
  int32_t pos = 0;
  while (pos < u.length()) {
    int32_t bestAt = u.length();
    const AddedToken *best = nullptr;
    for (const AddedToken &a : added_) {
      const int32_t at =
          u.indexOf(icu::UnicodeString::fromUTF8(a.content), pos);
      if (at >= 0 && at < bestAt) {
        bestAt = at;
        best = &a;
      }
    }
    int32_t segEnd = bestAt, next = u.length();
    if (best) {
      next = bestAt + icu::UnicodeString::fromUTF8(best->content).length();
      if (best->lstrip)
        while (segEnd > pos && isSpace(u.char32At(u.moveIndex32(segEnd, -1))))
          segEnd = u.moveIndex32(segEnd, -1);
      if (best->rstrip)
        while (next < u.length() && isSpace(u.char32At(next)))
          next = u.moveIndex32(next, 1);
    }
    if (absl::Status s = encodeSegment(utf8(u, pos, segEnd), &out); !s.ok())
      return s;
    if (best)
      out.push_back(best->id);
    pos = next;
  }
  return out;
}

absl::StatusOr<std::vector<int32_t>>
ByteLevelBpeTokenizer::encode(std::string_view text, int64_t maxLen) const {
  if (bosId_ < 0 || eosId_ < 0)
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s has no <s> or </s> token to wrap the text in", path_));
  absl::StatusOr<std::vector<int32_t>> p = pieces(text);
  if (!p.ok())
    return p.status();
  const size_t room = static_cast<size_t>(std::max<int64_t>(maxLen - 2, 0));
  if (p->size() > room)
    p->resize(room);
  std::vector<int32_t> ids = {bosId_};
  ids.insert(ids.end(), p->begin(), p->end());
  ids.push_back(eosId_);
  if (static_cast<int64_t>(ids.size()) > maxLen && maxLen >= 0)
    ids.resize(maxLen);
  return ids;
}

std::string ByteLevelBpeTokenizer::decode(const std::vector<int32_t> &ids,
                                          bool skipSpecial) const {
  static const std::unordered_map<std::string, unsigned char> toByte = [] {
    std::unordered_map<std::string, unsigned char> m;
    for (int b = 0; b < 256; ++b)
      m[byteToUnicode()[b]] = static_cast<unsigned char>(b);
    return m;
  }();
  std::string bytes;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocabSize_)
      continue;
    const bool special =
        std::any_of(added_.begin(), added_.end(), [&](const AddedToken &a) {
          return a.id == id && a.special;
        });
    if (special && skipSpecial)
      continue;
    // A token whose characters are not all byte stand-ins (an added token
    // with a space, say) stays as it is written, as tokenizers' decoder does.
    const icu::UnicodeString u = icu::UnicodeString::fromUTF8(tokens_[id]);
    std::string mapped;
    bool all = true;
    for (int32_t i = 0; i < u.length() && all; i = u.moveIndex32(i, 1)) {
      auto it = toByte.find(utf8(u, i, u.moveIndex32(i, 1)));
      if (it == toByte.end())
        all = false;
      else
        mapped += static_cast<char>(it->second);
    }
    bytes += all ? mapped : tokens_[id];
  }
  // String::from_utf8_lossy: each invalid sequence becomes U+FFFD.
  UErrorCode err = U_ZERO_ERROR;
  int32_t len = 0;
  u_strFromUTF8WithSub(nullptr, 0, &len, bytes.data(),
                       static_cast<int32_t>(bytes.size()), 0xFFFD, nullptr,
                       &err);
  err = U_ZERO_ERROR;
  icu::UnicodeString u;
  UChar *buf = u.getBuffer(len + 1);
  u_strFromUTF8WithSub(buf, len + 1, &len, bytes.data(),
                       static_cast<int32_t>(bytes.size()), 0xFFFD, nullptr,
                       &err);
  u.releaseBuffer(U_SUCCESS(err) ? len : 0);
  std::string out;
  u.toUTF8String(out);
  return out;
}

} // namespace galaxy::io
