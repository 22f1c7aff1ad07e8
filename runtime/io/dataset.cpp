#include "runtime/io/dataset.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "runtime/io/line_reader.h"
#include "runtime/io/text_tokenizer.h"
#include "runtime/io/wordpiece.h"
#include <nlohmann/json.hpp>

namespace galaxy::io {
namespace {

constexpr int64_t kMaxI32 = std::numeric_limits<int32_t>::max();

absl::Status checkOptions(const std::string &path, const DatasetOptions &opts) {
  if (opts.padSize <= 0)
    return absl::InvalidArgumentError(absl::StrFormat(
        "loading %s: pad_size must be > 0, got %d", path, opts.padSize));
  if (opts.task == Task::kClassification && opts.numClasses <= 0)
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
  if (opts.vocabSize > 0 && (opts.padId < 0 || opts.padId >= opts.vocabSize))
    return absl::InvalidArgumentError(absl::StrFormat(
        "loading %s: pad_token_id %d is outside [0, vocab_size %d): rows are "
        "padded with it; set pad_token_id in the config",
        path, opts.padId, opts.vocabSize));
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

// The last position whose id is not `padId`; 0 when every one is.
int32_t lastNonPad(const std::vector<int32_t> &ids, int64_t padId) {
  for (size_t s = ids.size(); s-- > 0;)
    if (ids[s] != padId)
      return static_cast<int32_t>(s);
  return 0;
}

// The fields derived from a padded row's ids, mask and (causal LM) its token
// labels, one per position.
void finishRow(Row &r, const std::vector<int32_t> &tokenLabels,
               const DatasetOptions &opts) {
  r.lastIndex = lastNonPad(r.input_ids, opts.padId);
  if (opts.task == Task::kCausalLm)
    r.labels = causalTargets(tokenLabels, r.attention_mask);
  else if (opts.task == Task::kSeq2Seq)
    r.labels = tokenLabels; // already padded to the target length
  r.numTargets = static_cast<int32_t>(
      r.labels.size() -
      std::count(r.labels.begin(), r.labels.end(), kIgnoreIndex));
  if (!opts.encoderDecoder)
    return;
  const auto pad = static_cast<int32_t>(opts.padId);
  r.decoder_input_ids =
      shiftTokensRight(opts.task == Task::kSeq2Seq ? r.labels : r.input_ids,
                       pad, static_cast<int32_t>(opts.decoderStartId));
  // Hugging Face runs the decoder with the causal mask alone: an ignored
  // target inside a row (-100, fed as a pad token) is still attended. The
  // mask only drops the trailing padding after the last position that has a
  // target (seq2seq) or after the shifted ids (classification), which no
  // counted query sees under the causal mask: equal on every counted one.
  const int64_t T = static_cast<int64_t>(r.decoder_input_ids.size());
  int64_t last = 0; // the last decoder position some counted query reads
  if (opts.task == Task::kSeq2Seq) {
    for (int64_t t = T; t-- > 0;)
      if (r.labels[t] != kIgnoreIndex) {
        last = t;
        break;
      }
  } else {
    last = std::min<int64_t>(T - 1, r.lastIndex + 1);
  }
  r.decoder_attention_mask.assign(T, 0.0f);
  std::fill(r.decoder_attention_mask.begin(),
            r.decoder_attention_mask.begin() + last + 1, 1.0f);
  r.eosIndex = -1;
  for (size_t s = r.input_ids.size(); s-- > 0;)
    if (r.input_ids[s] == opts.eosId) {
      r.eosIndex = static_cast<int32_t>(s);
      break;
    }
}

void appendRow(const Row &r, Task task, bool lastIndex, bool encoderDecoder,
               Batch *b) {
  auto append = [](auto &to, const auto &from) {
    to.insert(to.end(), from.begin(), from.end());
  };
  append(b->ints("input_ids"), r.input_ids);
  append(b->floats("attention_mask"), r.attention_mask);
  if (encoderDecoder) {
    append(b->ints("decoder_input_ids"), r.decoder_input_ids);
    append(b->floats("decoder_attention_mask"), r.decoder_attention_mask);
    if (task == Task::kSeq2Seq)
      append(b->ints("labels"), r.labels);
    else {
      b->ints("labels").push_back(r.label);
      b->ints("eos_index").push_back(r.eosIndex);
    }
    return;
  }
  if (task == Task::kCausalLm) {
    append(b->ints("labels"), r.labels);
    return;
  }
  append(b->ints("token_type_ids"), r.token_type_ids);
  b->ints("labels").push_back(r.label);
  if (lastIndex)
    b->ints("last_index").push_back(r.lastIndex);
}

// The id of a text token must lie in the model's vocabulary.
template <typename Tokenizer>
absl::Status checkTextIds(const std::string &where,
                          const std::vector<int32_t> &ids, int64_t vocab,
                          const Tokenizer &tok) {
  for (int32_t id : ids)
    if (id < 0 || id >= vocab)
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: piece '%s' of %s has id %d, outside the model's vocab_size %d: "
          "use the model's own tokenizer",
          where, tok.piece(id), tok.path(), id, vocab));
  return absl::OkStatus();
}

// A padded row of `ids` (at most padSize), mask 1 on each, types 0.
Row paddedRow(const std::vector<int32_t> &ids, const DatasetOptions &opts) {
  const size_t S = static_cast<size_t>(opts.padSize);
  Row r;
  r.input_ids.assign(S, static_cast<int32_t>(opts.padId));
  r.attention_mask.assign(S, 0.0f);
  r.token_type_ids.assign(S, 0);
  for (size_t i = 0; i < S && i < ids.size(); ++i) {
    r.input_ids[i] = ids[i];
    r.attention_mask[i] = 1.0f;
  }
  return r;
}

} // namespace

std::vector<int32_t> causalTargets(const std::vector<int32_t> &tokenLabels,
                                   const std::vector<float> &mask) {
  const size_t S = mask.size();
  std::vector<int32_t> out(S, kIgnoreIndex);
  for (size_t s = 0; s + 1 < S && s + 1 < tokenLabels.size(); ++s)
    if (mask[s + 1] != 0.0f)
      out[s] = tokenLabels[s + 1];
  return out;
}

std::vector<int32_t> shiftTokensRight(const std::vector<int32_t> &ids,
                                      int32_t padId, int32_t decoderStart) {
  std::vector<int32_t> out(ids.size(), padId);
  if (out.empty())
    return out;
  out[0] = decoderStart;
  for (size_t t = 1; t < ids.size(); ++t)
    out[t] = ids[t - 1] == kIgnoreIndex ? padId : ids[t - 1];
  return out;
}

std::vector<std::string> Dataset::fieldNames() const {
  if (encoderDecoder_) {
    std::vector<std::string> names = {"input_ids", "attention_mask",
                                      "decoder_input_ids",
                                      "decoder_attention_mask", "labels"};
    names.push_back(task_ == Task::kSeq2Seq ? "num_targets" : "eos_index");
    return names;
  }
  if (task_ == Task::kCausalLm)
    return {"input_ids", "attention_mask", "labels", "num_targets"};
  std::vector<std::string> names = textFields();
  if (lastIndex_)
    names.push_back("last_index");
  return names;
}

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
  if (opts.encoderDecoder || opts.task == Task::kSeq2Seq)
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: encoder-decoder data is .jsonl rows, {\"input_ids\": [...], "
        "\"labels\": [...]} (seq2seq) or {\"input_ids\": [...], \"label\": "
        "k} (classification)",
        path));
  if (opts.task == Task::kCausalLm)
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: causal-LM data is .jsonl rows, {\"input_ids\": [...]} or "
        "{\"text\": \"...\"} (text<TAB>label files are for classification)",
        path));
  if (!opts.tokenizerPath.empty()) {
    auto tok = TextTokenizer::fromPath(opts.tokenizerPath);
    if (!tok.ok())
      return tok.status();
    return loadTsv(path, *tok, opts);
  }
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

namespace {

// The prototype's text<TAB>label lines into `rows`; `encode` makes the row of
// a text (its label is set here).
absl::Status readTsv(
    const std::string &path, const DatasetOptions &opts,
    const std::function<absl::StatusOr<Row>(absl::string_view text,
                                            const std::string &where)> &encode,
    std::vector<Row> *rows) {
  if (opts.task != Task::kClassification)
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: text<TAB>label files are for classification", path));
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return absl::NotFoundError(
        absl::StrFormat("cannot open dataset file %s", path));
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
    if (tab == absl::string_view::npos && !opts.labelsOptional)
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: no tab: expected text<TAB>label", where));
    absl::string_view labelText =
        tab == absl::string_view::npos
            ? absl::string_view("0")
            : absl::StripAsciiWhitespace(lin.substr(tab + 1));
    int64_t label;
    if (!absl::SimpleAtoi(labelText, &label))
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: label '%s' is not an integer: expected text<TAB>label", where,
          labelText));
    if (absl::Status s = checkLabel(where, label, opts.numClasses); !s.ok())
      return s;
    absl::StatusOr<Row> r = encode(
        tab == absl::string_view::npos ? lin : lin.substr(0, tab), where);
    if (!r.ok())
      return r.status();
    r->label = static_cast<int32_t>(label);
    rows->push_back(std::move(*r));
  }
  if (rows->empty())
    return absl::InvalidArgumentError(
        absl::StrFormat("dataset %s holds no rows", path));
  return absl::OkStatus();
}

} // namespace

absl::StatusOr<Dataset> Dataset::loadTsv(const std::string &path,
                                         const WordPieceTokenizer &tok,
                                         const DatasetOptions &opts) {
  if (absl::Status s = checkOptions(path, opts); !s.ok())
    return s;
  const int64_t vocab = opts.vocabSize > 0 ? opts.vocabSize : tok.vocabSize();
  std::vector<Row> rows;
  auto encode = [&](absl::string_view text,
                    const std::string &where) -> absl::StatusOr<Row> {
    EncodedText e =
        tok.encode(std::string_view(text.data(), text.size()), opts.padSize);
    for (size_t i = 0; i < e.input_ids.size(); ++i) {
      if (e.input_ids[i] >= vocab)
        return absl::InvalidArgumentError(absl::StrFormat(
            "%s: token '%s' has id %d, outside the model's vocab_size %d: use "
            "the model's "
            "vocab.txt",
            where, tok.token(e.input_ids[i]), e.input_ids[i], vocab));
    }
    Row r{std::move(e.input_ids), std::move(e.attention_mask),
          std::move(e.token_type_ids)};
    finishRow(r, {}, opts);
    return r;
  };
  if (absl::Status s = readTsv(path, opts, encode, &rows); !s.ok())
    return s;
  Dataset ds;
  ds.path_ = path;
  ds.padSize_ = opts.padSize;
  ds.task_ = opts.task;
  ds.lastIndex_ = opts.lastIndex;
  ds.rows_ = std::move(rows);
  return ds;
}

absl::StatusOr<Dataset> Dataset::loadTsv(const std::string &path,
                                         const TextTokenizer &tok,
                                         const DatasetOptions &opts) {
  if (absl::Status s = checkOptions(path, opts); !s.ok())
    return s;
  const int64_t vocab = opts.vocabSize > 0 ? opts.vocabSize : tok.vocabSize();
  std::vector<Row> rows;
  auto encode = [&](absl::string_view text,
                    const std::string &where) -> absl::StatusOr<Row> {
    absl::StatusOr<std::vector<int32_t>> ids =
        tok.encode(std::string_view(text.data(), text.size()), opts.padSize);
    if (!ids.ok())
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": ", ids.status().message()));
    if (absl::Status s = checkTextIds(where, *ids, vocab, tok); !s.ok())
      return s;
    Row r = paddedRow(*ids, opts);
    finishRow(r, r.input_ids, opts);
    return r;
  };
  if (absl::Status s = readTsv(path, opts, encode, &rows); !s.ok())
    return s;
  Dataset ds;
  ds.path_ = path;
  ds.padSize_ = opts.padSize;
  ds.task_ = opts.task;
  ds.lastIndex_ = opts.lastIndex;
  ds.rows_ = std::move(rows);
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
  // Loaded at the first "text" row: pre-tokenized data needs no tokenizer.
  std::optional<TextTokenizer> tok;
  const bool causal = opts.task == Task::kCausalLm;
  const bool seq2seq = opts.task == Task::kSeq2Seq;
  Dataset ds;
  ds.path_ = path;
  ds.padSize_ = opts.padSize;
  ds.task_ = opts.task;
  ds.lastIndex_ = opts.lastIndex;
  ds.encoderDecoder_ = opts.encoderDecoder || seq2seq;
  const size_t S = static_cast<size_t>(opts.padSize);
  const size_t T = static_cast<size_t>(
      opts.targetPadSize > 0 ? opts.targetPadSize : opts.padSize);
  ds.targetPadSize_ = static_cast<int64_t>(T);
  DatasetOptions rowOpts = opts;
  rowOpts.encoderDecoder = ds.encoderDecoder_;
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
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: not a JSON object: expected %s", where,
          causal ? "{\"input_ids\": [...]} or {\"text\": \"...\"}"
                 : "{\"input_ids\": [...], \"label\": k}"));
    // Reads an optional integer array; its values lie in [lo, hi) or, where
    // `ignore` allows, equal kIgnoreIndex.
    auto ints = [&](const char *key, int64_t lo, int64_t hi, bool required,
                    std::vector<int64_t> *out,
                    bool ignore = false) -> absl::Status {
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
        if (!huge && ignore && v == kIgnoreIndex) {
          out->push_back(v);
          continue;
        }
        if (huge || v < lo || v >= hi)
          return absl::InvalidArgumentError(absl::StrFormat(
              "%s: %s[%d] = %s is outside [%d, %d)%s", where, key, i,
              a[i].dump(), lo, hi,
              ignore ? absl::StrFormat(" (or %d: no target)", kIgnoreIndex)
                     : ""));
        out->push_back(v);
      }
      return absl::OkStatus();
    };
    std::vector<int64_t> ids, mask, types, tokenLabels;
    // Pre-tokenized ids win: tokenized datasets often keep their text too.
    if (!j.contains("input_ids") && j.contains("text")) {
      // Text rows: the model's own tokenizer, nothing aligned to its ids.
      for (const char *key : {"attention_mask", "token_type_ids", "labels"})
        if (j.contains(key))
          return absl::InvalidArgumentError(absl::StrFormat(
              "%s: \"%s\" goes with \"input_ids\", not \"text\" (its entries "
              "align with ids)",
              where, key));
      if (opts.tokenizerPath.empty())
        return absl::InvalidArgumentError(absl::StrFormat(
            "%s: missing \"input_ids\": a \"text\" row needs the model's "
            "tokenizer (galaxy-run --tokenizer: LLaMA's tokenizer.model, "
            "BART's tokenizer.json or vocab.json + merges.txt)",
            where));
      if (!tok) {
        auto t = TextTokenizer::fromPath(opts.tokenizerPath);
        if (!t.ok())
          return t.status();
        tok.emplace(std::move(*t));
      }
      // The model's tokenizer on one text field, cut to `len` ids.
      auto encodeText = [&](const char *key, int64_t len,
                            std::vector<int64_t> *to) -> absl::Status {
        if (!j[key].is_string())
          return absl::InvalidArgumentError(
              absl::StrFormat("%s: \"%s\" is not a string", where, key));
        absl::StatusOr<std::vector<int32_t>> e =
            tok->encode(j[key].get_ref<const std::string &>(), len);
        if (!e.ok())
          return absl::InvalidArgumentError(
              absl::StrCat(where, ": ", e.status().message()));
        if (absl::Status s = checkTextIds(where, *e, opts.vocabSize, *tok);
            !s.ok())
          return s;
        to->assign(e->begin(), e->end());
        return absl::OkStatus();
      };
      if (absl::Status s = encodeText("text", opts.padSize, &ids); !s.ok())
        return s;
      // Seq2seq: the target through the same tokenizer, as Hugging Face's
      // tokenizer(text, text_target=...) makes its labels.
      if (seq2seq) {
        if (!j.contains("target_text"))
          return absl::InvalidArgumentError(absl::StrFormat(
              "%s: a seq2seq \"text\" row needs its \"target_text\"", where));
        if (absl::Status s = encodeText("target_text", T, &tokenLabels);
            !s.ok())
          return s;
      }
    } else {
      if (absl::Status s = ints("input_ids", 0, opts.vocabSize, true, &ids);
          !s.ok())
        return s;
      if (absl::Status s = ints("attention_mask", 0, 2, false, &mask); !s.ok())
        return s;
      if (absl::Status s =
              ints("token_type_ids", 0, opts.typeVocabSize, false, &types);
          !s.ok())
        return s;
      if (causal || seq2seq)
        if (absl::Status s = ints("labels", 0, opts.vocabSize, seq2seq,
                                  &tokenLabels, /*ignore=*/true);
            !s.ok())
          return s;
    }
    if (j.contains("attention_mask") && mask.size() != ids.size())
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: attention_mask has %d entries, input_ids %d",
                          where, mask.size(), ids.size()));
    if (j.contains("token_type_ids") && types.size() != ids.size())
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: token_type_ids has %d entries, input_ids %d",
                          where, types.size(), ids.size()));
    if (causal && j.contains("labels") && tokenLabels.size() != ids.size())
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: labels has %d entries, input_ids %d", where,
                          tokenLabels.size(), ids.size()));
    int64_t label = 0;
    if (!causal && !seq2seq && !(opts.labelsOptional && !j.contains("label"))) {
      if (!j.contains("label") || !j["label"].is_number_integer())
        return absl::InvalidArgumentError(absl::StrFormat(
            "%s: \"label\" is missing or not an integer", where));
      if (j["label"].is_number_unsigned() &&
          j["label"].get<uint64_t>() > static_cast<uint64_t>(kMaxI32))
        return absl::InvalidArgumentError(absl::StrFormat(
            "%s: label %s is outside [0, %d): fix the label or raise "
            "num_classes",
            where, j["label"].dump(), opts.numClasses));
      label = j["label"].get<int64_t>();
      if (absl::Status s = checkLabel(where, label, opts.numClasses); !s.ok())
        return s;
    }
    // Longer rows are truncated to pad_size, exactly as the tokenizer truncates
    // text; shorter rows are padded with the pad id and mask 0.
    Row r;
    r.input_ids.assign(S, static_cast<int32_t>(opts.padId));
    r.attention_mask.assign(S, 0.0f);
    r.token_type_ids.assign(S, 0);
    r.label = static_cast<int32_t>(label);
    if (j.contains("id"))
      r.id = j["id"].dump();
    std::vector<int32_t> given(causal ? S : seq2seq ? T : 0, kIgnoreIndex);
    // Seq2seq targets: their own length, truncated or padded to T.
    for (size_t t = 0; seq2seq && t < T && t < tokenLabels.size(); ++t)
      given[t] = static_cast<int32_t>(tokenLabels[t]);
    for (size_t i = 0; i < S && i < ids.size(); ++i) {
      r.input_ids[i] = static_cast<int32_t>(ids[i]);
      r.attention_mask[i] = mask.empty() ? 1.0f : static_cast<float>(mask[i]);
      r.token_type_ids[i] = types.empty() ? 0 : static_cast<int32_t>(types[i]);
      if (causal)
        given[i] = static_cast<int32_t>(j.contains("labels") ? tokenLabels[i]
                                                             : ids[i]);
    }
    finishRow(r, given, rowOpts);
    // Hugging Face's BartForSequenceClassification reads the last </s>.
    if (rowOpts.encoderDecoder && !seq2seq && r.eosIndex < 0)
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: input_ids hold no eos id %d within pad_size %d: encoder-decoder "
          "classification reads the hidden state at each row's last eos",
          where, opts.eosId, opts.padSize));
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
  const bool causal = task_ == Task::kCausalLm || task_ == Task::kSeq2Seq;
  Batch b;
  b.size = rowCount;
  b.seqLen = padSize_;
  b.ints("input_ids").reserve(rowCount * padSize_);
  b.floats("attention_mask").reserve(rowCount * padSize_);
  if (!causal && !encoderDecoder_)
    b.ints("token_type_ids").reserve(rowCount * padSize_);
  b.ints("labels").reserve(causal ? rowCount * padSize_ : rowCount);
  if (!causal && lastIndex_)
    b.ints("last_index").reserve(rowCount);
  for (int64_t i = rowBegin; i < rowBegin + rowCount; ++i)
    appendRow(rows_[rowIndex(step, batchSize, i)], task_, lastIndex_,
              encoderDecoder_, &b);
  if (causal) {
    // The loss is the mean over every target of the global batch, whichever
    // rows this part holds.
    int64_t targets = 0;
    for (int64_t i = 0; i < batchSize; ++i)
      targets += rows_[rowIndex(step, batchSize, i)].numTargets;
    // f32, as the loss divides by it: exact up to 2^24 targets a batch.
    b.floats("num_targets").assign(1, static_cast<float>(targets));
  }
  return b;
}

Batch Dataset::batch(int64_t step, int64_t batchSize) const {
  return rows(step, batchSize, 0, batchSize);
}

} // namespace galaxy::io
