#include "runtime/io/dataset.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "runtime/io/line_reader.h"
#include "runtime/io/wordpiece.h"
#include <nlohmann/json.hpp>

namespace galaxy::io {
namespace {

constexpr int64_t kMaxI32 = std::numeric_limits<int32_t>::max();

absl::Status checkOptions(const std::string &path, const DatasetOptions &opts) {
  if (opts.padSize <= 0)
    return absl::InvalidArgumentError(absl::StrFormat(
        "loading %s: pad_size must be > 0, got %d", path, opts.padSize));
  if (opts.numClasses <= 0)
    return absl::InvalidArgumentError(absl::StrFormat(
        "loading %s: num_classes must be > 0, got %d", path, opts.numClasses));
  // Ids and labels travel as i32: a bound past that would let a value wrap
  // into another id (or a negative one) after its range check.
  for (auto [name, v] : {std::pair{"num_classes", opts.numClasses},
                         std::pair{"vocab_size", opts.vocabSize},
                         std::pair{"pad_size", opts.padSize}})
    if (v > kMaxI32)
      return absl::InvalidArgumentError(absl::StrFormat(
          "loading %s: %s %d does not fit 32-bit ids (at most %d)", path, name,
          v, kMaxI32));
  return absl::OkStatus();
}

absl::Status checkLabel(const std::string &where, int64_t label,
                        int64_t numClasses) {
  if (label < 0 || label >= numClasses)
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: label %d is outside [0, %d): fix the label or raise num_classes",
        where, label, numClasses));
  return absl::OkStatus();
}

// Precondition failures of the batching calls are programming errors, not data
// errors.
void require(bool ok, const char *what) {
  if (!ok) {
    std::fprintf(stderr, "galaxy::io::Dataset: %s\n", what);
    std::abort();
  }
}

// Uniform in [0, bound) without the modulo bias (rejects the low 2^64 mod bound
// values).
uint64_t uniformBelow(std::mt19937_64 &rng, uint64_t bound) {
  const uint64_t threshold = (0 - bound) % bound;
  while (true) {
    uint64_t x = rng();
    if (x >= threshold)
      return x % bound;
  }
}

void appendRow(const Row &r, Batch *b) {
  auto append = [](auto &to, const auto &from) {
    to.insert(to.end(), from.begin(), from.end());
  };
  append(b->ints("input_ids"), r.input_ids);
  append(b->floats("attention_mask"), r.attention_mask);
  append(b->ints("token_type_ids"), r.token_type_ids);
  b->ints("labels").push_back(r.label);
}

} // namespace

const std::vector<std::string> &textFields() {
  static const std::vector<std::string> names = {"input_ids", "attention_mask",
                                                 "token_type_ids", "labels"};
  return names;
}

std::vector<int32_t> &Batch::ints(const std::string &name) {
  BatchField &f = fields[name];
  f.isInt = true;
  return f.i32;
}

std::vector<float> &Batch::floats(const std::string &name) {
  BatchField &f = fields[name];
  f.isInt = false;
  return f.f32;
}

const BatchField *Batch::find(const std::string &name) const {
  auto it = fields.find(name);
  return it == fields.end() ? nullptr : &it->second;
}

const std::vector<int32_t> &Batch::ints(const std::string &name) const {
  static const std::vector<int32_t> none;
  const BatchField *f = find(name);
  return f && f->isInt ? f->i32 : none;
}

const std::vector<float> &Batch::floats(const std::string &name) const {
  static const std::vector<float> none;
  const BatchField *f = find(name);
  return f && !f->isInt ? f->f32 : none;
}

absl::StatusOr<Dataset> Dataset::load(const std::string &path,
                                      const DatasetOptions &opts) {
  if (absl::EndsWith(path, ".jsonl") || absl::EndsWith(path, ".json"))
    return loadJsonl(path, opts);
  if (opts.vocabPath.empty())
    return absl::InvalidArgumentError(
        absl::StrFormat("%s is text<TAB>label data and needs a vocab.txt: set "
                        "the vocab path (or give a "
                        ".jsonl file of pre-tokenized rows)",
                        path));
  auto tok = WordPieceTokenizer::fromFile(opts.vocabPath);
  if (!tok.ok())
    return tok.status();
  return loadTsv(path, *tok, opts);
}

absl::StatusOr<Dataset> Dataset::loadTsv(const std::string &path,
                                         const WordPieceTokenizer &tok,
                                         const DatasetOptions &opts) {
  if (absl::Status s = checkOptions(path, opts); !s.ok())
    return s;
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return absl::NotFoundError(
        absl::StrFormat("cannot open dataset file %s", path));
  const int64_t vocab = opts.vocabSize > 0 ? opts.vocabSize : tok.vocabSize();
  Dataset ds;
  ds.path_ = path;
  ds.padSize_ = opts.padSize;
  std::string line;
  for (int64_t lineNo = 1;; ++lineNo) {
    absl::StatusOr<bool> more = readLine(in, line, path, lineNo);
    if (!more.ok())
      return more.status();
    if (!*more)
      break;
    const std::string where = absl::StrFormat("%s:%d", path, lineNo);
    // absl::string_view: Debian's abseil is not built on std::string_view.
    absl::string_view lin = absl::StripAsciiWhitespace(line);
    if (lin.empty())
      continue;
    // The last tab separates the label, so a tab inside the text is only
    // whitespace.
    const size_t tab = lin.rfind('\t');
    if (tab == absl::string_view::npos)
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: no tab: expected text<TAB>label", where));
    absl::string_view labelText =
        absl::StripAsciiWhitespace(lin.substr(tab + 1));
    int64_t label;
    if (!absl::SimpleAtoi(labelText, &label))
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: label '%s' is not an integer: expected text<TAB>label", where,
          labelText));
    if (absl::Status s = checkLabel(where, label, opts.numClasses); !s.ok())
      return s;
    EncodedText e = tok.encode(std::string_view(lin.data(), tab), opts.padSize);
    for (size_t i = 0; i < e.input_ids.size(); ++i) {
      if (e.input_ids[i] >= vocab)
        return absl::InvalidArgumentError(absl::StrFormat(
            "%s: token '%s' has id %d, outside the model's vocab_size %d: use "
            "the model's "
            "vocab.txt",
            where, tok.token(e.input_ids[i]), e.input_ids[i], vocab));
    }
    ds.rows_.push_back(Row{std::move(e.input_ids), std::move(e.attention_mask),
                           std::move(e.token_type_ids),
                           static_cast<int32_t>(label)});
  }
  if (ds.rows_.empty())
    return absl::InvalidArgumentError(
        absl::StrFormat("dataset %s holds no rows", path));
  return ds;
}

absl::StatusOr<Dataset> Dataset::loadJsonl(const std::string &path,
                                           const DatasetOptions &opts) {
  if (absl::Status s = checkOptions(path, opts); !s.ok())
    return s;
  if (opts.vocabSize <= 0)
    return absl::InvalidArgumentError(absl::StrFormat(
        "loading %s: vocab_size must be > 0 to check pre-tokenized ids, got %d",
        path, opts.vocabSize));
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return absl::NotFoundError(
        absl::StrFormat("cannot open dataset file %s", path));
  Dataset ds;
  ds.path_ = path;
  ds.padSize_ = opts.padSize;
  const size_t S = static_cast<size_t>(opts.padSize);
  std::string line;
  for (int64_t lineNo = 1;; ++lineNo) {
    absl::StatusOr<bool> more = readLine(in, line, path, lineNo);
    if (!more.ok())
      return more.status();
    if (!*more)
      break;
    const std::string where = absl::StrFormat("%s:%d", path, lineNo);
    if (absl::StripAsciiWhitespace(line).empty())
      continue;
    nlohmann::json j =
        nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object())
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: not a JSON object: expected {\"input_ids\": "
                          "[...], \"label\": k}",
                          where));
    // Reads an optional integer array; `lo`/`hi` bound its values.
    auto ints = [&](const char *key, int64_t lo, int64_t hi, bool required,
                    std::vector<int64_t> *out) -> absl::Status {
      if (!j.contains(key)) {
        if (required)
          return absl::InvalidArgumentError(
              absl::StrFormat("%s: missing \"%s\"", where, key));
        return absl::OkStatus();
      }
      const nlohmann::json &a = j[key];
      if (!a.is_array())
        return absl::InvalidArgumentError(
            absl::StrFormat("%s: \"%s\" is not an array", where, key));
      for (size_t i = 0; i < a.size(); ++i) {
        if (!a[i].is_number_integer())
          return absl::InvalidArgumentError(absl::StrFormat(
              "%s: %s[%d] = %s is not an integer", where, key, i, a[i].dump()));
        // Above int64 (a JSON integer up to 2^64-1) is out of range too.
        const bool huge =
            a[i].is_number_unsigned() &&
            a[i].get<uint64_t>() >
                static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
        const int64_t v = huge ? 0 : a[i].get<int64_t>();
        if (huge || v < lo || v >= hi)
          return absl::InvalidArgumentError(
              absl::StrFormat("%s: %s[%d] = %s is outside [%d, %d)", where, key,
                              i, a[i].dump(), lo, hi));
        out->push_back(v);
      }
      return absl::OkStatus();
    };
    std::vector<int64_t> ids, mask, types;
    if (absl::Status s = ints("input_ids", 0, opts.vocabSize, true, &ids);
        !s.ok())
      return s;
    if (absl::Status s = ints("attention_mask", 0, 2, false, &mask); !s.ok())
      return s;
    if (absl::Status s =
            ints("token_type_ids", 0, opts.typeVocabSize, false, &types);
        !s.ok())
      return s;
    if (j.contains("attention_mask") && mask.size() != ids.size())
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: attention_mask has %d entries, input_ids %d",
                          where, mask.size(), ids.size()));
    if (j.contains("token_type_ids") && types.size() != ids.size())
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: token_type_ids has %d entries, input_ids %d",
                          where, types.size(), ids.size()));
    if (!j.contains("label") || !j["label"].is_number_integer())
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: \"label\" is missing or not an integer", where));
    if (j["label"].is_number_unsigned() &&
        j["label"].get<uint64_t>() > static_cast<uint64_t>(kMaxI32))
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: label %s is outside [0, %d): fix the label or raise "
          "num_classes",
          where, j["label"].dump(), opts.numClasses));
    const int64_t label = j["label"].get<int64_t>();
    if (absl::Status s = checkLabel(where, label, opts.numClasses); !s.ok())
      return s;
    // Longer rows are truncated to pad_size, exactly as the tokenizer truncates
    // text; shorter rows are padded with id 0 and mask 0.
    Row r;
    r.input_ids.assign(S, 0);
    r.attention_mask.assign(S, 0.0f);
    r.token_type_ids.assign(S, 0);
    r.label = static_cast<int32_t>(label);
    for (size_t i = 0; i < S && i < ids.size(); ++i) {
      r.input_ids[i] = static_cast<int32_t>(ids[i]);
      r.attention_mask[i] = mask.empty() ? 1.0f : static_cast<float>(mask[i]);
      r.token_type_ids[i] = types.empty() ? 0 : static_cast<int32_t>(types[i]);
    }
    ds.rows_.push_back(std::move(r));
  }
  if (ds.rows_.empty())
    return absl::InvalidArgumentError(
        absl::StrFormat("dataset %s holds no rows", path));
  return ds;
}

void Dataset::setShuffle(uint64_t seed) {
  shuffle_ = true;
  seed_ = seed;
  cachedEpoch_ = -1;
  cachedPerm_.clear();
}

std::vector<int64_t> Dataset::permutation(int64_t n, uint64_t seed,
                                          int64_t epoch) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    p[i] = i;
  std::mt19937_64 rng(seed + static_cast<uint64_t>(epoch));
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j =
        static_cast<int64_t>(uniformBelow(rng, static_cast<uint64_t>(i) + 1));
    std::swap(p[i], p[j]);
  }
  return p;
}

const std::vector<int64_t> &Dataset::epochPermutation(int64_t epoch) const {
  if (epoch != cachedEpoch_) {
    cachedPerm_ = permutation(size(), seed_, epoch);
    cachedEpoch_ = epoch;
  }
  return cachedPerm_;
}

int64_t Dataset::rowIndex(int64_t step, int64_t batchSize, int64_t i) const {
  require(step >= 0 && batchSize > 0 && i >= 0 && i < batchSize,
          "rowIndex needs step >= 0, batchSize > 0 and 0 <= i < batchSize");
  const int64_t pos = step * batchSize + i;
  const int64_t n = size();
  if (!shuffle_)
    return pos % n;
  return epochPermutation(pos / n)[pos % n];
}

Batch Dataset::rows(int64_t step, int64_t batchSize, int64_t rowBegin,
                    int64_t rowCount) const {
  require(rowBegin >= 0 && rowCount >= 0 && rowBegin + rowCount <= batchSize,
          "rows() needs 0 <= rowBegin <= rowBegin + rowCount <= batchSize");
  Batch b;
  b.size = rowCount;
  b.seqLen = padSize_;
  b.ints("input_ids").reserve(rowCount * padSize_);
  b.floats("attention_mask").reserve(rowCount * padSize_);
  b.ints("token_type_ids").reserve(rowCount * padSize_);
  b.ints("labels").reserve(rowCount);
  for (int64_t i = rowBegin; i < rowBegin + rowCount; ++i)
    appendRow(rows_[rowIndex(step, batchSize, i)], &b);
  return b;
}

Batch Dataset::batch(int64_t step, int64_t batchSize) const {
  return rows(step, batchSize, 0, batchSize);
}

} // namespace galaxy::io
