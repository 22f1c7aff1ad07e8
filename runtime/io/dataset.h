// Datasets (prototype TSV or JSONL, pre-tokenized or text) for classification
// and causal language modelling, and deterministic batching.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace galaxy::io {

class WordPieceTokenizer;
class TextTokenizer;

// A label no loss counts (Hugging Face's ignore_index).
constexpr int32_t kIgnoreIndex = -100;

// What a dataset's rows are for; it decides the keys a row needs and the
// fields of a batch.
enum class Task {
  kClassification, // a class label per row
  kCausalLm,       // a next-token target per position
  kSeq2Seq,        // encoder-decoder: a target sequence per row (labels)
};

// One sample; every array has the dataset's padSize entries.
struct Row {
  std::vector<int32_t> input_ids;
  std::vector<float> attention_mask; // 1 real token, 0 padding
  std::vector<int32_t> token_type_ids;
  int32_t label = 0; // classification
  std::string id;    // a JSONL row's "id" as JSON text (empty: none)
  // Classification: the last position whose id is not the pad id (0 when
  // none): the token Hugging Face's LlamaForSequenceClassification scores.
  int32_t lastIndex = 0;
  // Causal LM: the target of each position, already shifted
  // (causalTargets()), and how many are not kIgnoreIndex.
  std::vector<int32_t> labels;
  int32_t numTargets = 0;
  // Encoder-decoder (DatasetOptions::encoderDecoder): the decoder's input,
  // shiftTokensRight of the labels (seq2seq) or of input_ids
  // (classification), its mask (1 up to the last position a counted query
  // reads, 0 on the trailing padding), and (classification) the last
  // position of the eos id in input_ids.
  std::vector<int32_t> decoder_input_ids;
  std::vector<float> decoder_attention_mask;
  int32_t eosIndex = 0;
};

// Hugging Face's shift_tokens_right: [decoderStart, ids[0..n-2]], every
// kIgnoreIndex replaced by padId.
std::vector<int32_t> shiftTokensRight(const std::vector<int32_t> &ids,
                                      int32_t padId, int32_t decoderStart);

// Causal-LM targets of one padded row: out[s] = tokenLabels[s + 1], except
// kIgnoreIndex at the last position and wherever position s + 1 is padding
// (mask[s + 1] == 0). tokenLabels are the row's own labels (or its ids), one
// per position; a kIgnoreIndex among them stays ignored.
std::vector<int32_t> causalTargets(const std::vector<int32_t> &tokenLabels,
                                   const std::vector<float> &mask);

// One field of a batch: a global tensor, rows first, row-major; i32 (ids,
// labels) or f32 (masks). A 0-d field (num_targets) is one value for the
// whole batch: the plan reads it as a 0-d input, and a pipeline passes it
// whole to every microbatch (pipeline_detail::wholeBatchFields).
struct BatchField {
  bool isInt = true;
  std::vector<int32_t> i32;
  std::vector<float> f32;
  int64_t numel() const {
    return static_cast<int64_t>(isInt ? i32.size() : f32.size());
  }
};

// A batch as the plan reads it: fields by input name (a plan binds each
// program input to the field of its name); Dataset::fieldNames() lists them.
// Classification: textFields() — input_ids, attention_mask, token_type_ids
// [size, seqLen] and labels [size] — and, when asked, last_index [size].
// Causal LM: input_ids, attention_mask, labels [size, seqLen] (shifted
// targets, kIgnoreIndex where none) and num_targets (f32, one value: the
// targets of the whole global batch, the loss's divisor).
struct Batch {
  int64_t size = 0;
  int64_t seqLen = 0;
  std::map<std::string, BatchField> fields;

  // The field `name`, created (empty, of that dtype) when absent.
  std::vector<int32_t> &ints(const std::string &name);
  std::vector<float> &floats(const std::string &name);
  // The field `name` or nullptr.
  const BatchField *find(const std::string &name) const;
  // Its values; empty when the batch has no such field.
  const std::vector<int32_t> &ints(const std::string &name) const;
  const std::vector<float> &floats(const std::string &name) const;
};

// The fields of a classification batch without last_index, by name.
const std::vector<std::string> &textFields();

struct DatasetOptions {
  Task task = Task::kClassification;
  int64_t padSize = 32;   // sequence length of every row
  int64_t numClasses = 0; // classification: labels lie in [0, numClasses)
  int64_t vocabSize =
      0; // ids must lie in [0, vocabSize); <= 0: the vocab.txt size (TSV)
  int64_t typeVocabSize = 2; // token types must lie in [0, typeVocabSize)
  // The id that fills pre-tokenized and SentencePiece rows up to padSize
  // (WordPiece text pads with its [PAD], id 0); last_index looks for it.
  int64_t padId = 0;
  bool lastIndex = false; // classification: batches also hold last_index
  // Classification rows without a label (galaxy-run --predict): JSONL rows
  // may leave out "label" and text lines their "<TAB>label"; they get 0.
  bool labelsOptional = false;
  // An encoder-decoder model (BART): batches hold decoder_input_ids and
  // decoder_attention_mask [size, targetPadSize] and, for classification,
  // eos_index [size]. Seq2seq (always encoder-decoder) rows hold "labels" of
  // up to targetPadSize ids (kIgnoreIndex allowed), padded with kIgnoreIndex.
  bool encoderDecoder = false;
  int64_t targetPadSize = 0; // 0: padSize
  int64_t decoderStartId = 2;
  int64_t eosId = 2;
  std::string vocabPath; // BERT's vocab.txt: WordPiece for text
  // The model's tokenizer for "text" rows (TextTokenizer::fromPath): a
  // SentencePiece tokenizer.model, or a byte-level BPE tokenizer.json /
  // vocab.json + merges.txt (or a folder of them).
  std::string tokenizerPath;
};

class Dataset {
public:
  // By extension: .jsonl / .json -> loadJsonl, anything else -> loadTsv with
  // opts.tokenizerPath (the model's tokenizer) or else opts.vocabPath
  // (WordPiece).
  static absl::StatusOr<Dataset> load(const std::string &path,
                                      const DatasetOptions &opts);
  // Prototype format (classification): "text<TAB>label" lines (split at the
  // last tab; blank lines skipped), text encoded with
  // WordPieceTokenizer::encode or with the model's own tokenizer
  // (TextTokenizer::encode: SentencePiece BOS + pieces, BPE <s> pieces </s>)
  // cut to padSize and padded with opts.padId.
  static absl::StatusOr<Dataset> loadTsv(const std::string &path,
                                         const WordPieceTokenizer &tok,
                                         const DatasetOptions &opts);
  static absl::StatusOr<Dataset> loadTsv(const std::string &path,
                                         const TextTokenizer &tok,
                                         const DatasetOptions &opts);
  // One JSON object a line: {"input_ids": [...], "attention_mask": [...],
  // "token_type_ids": [...], "label": k}; mask and types optional. Causal LM:
  // an optional "labels" array (one per id, kIgnoreIndex allowed) instead of
  // "label". Instead of ids a row may hold "text" when opts.tokenizerPath
  // names the model's tokenizer (seq2seq: "text" and "target_text", the
  // labels being target_text's ids). Rows longer than padSize are truncated.
  static absl::StatusOr<Dataset> loadJsonl(const std::string &path,
                                           const DatasetOptions &opts);

  int64_t size() const { return static_cast<int64_t>(rows_.size()); }
  int64_t padSize() const { return padSize_; }
  Task task() const { return task_; }
  // The fields of every batch (see Batch).
  std::vector<std::string> fieldNames() const;
  const Row &row(int64_t i) const { return rows_.at(i); }
  const std::string &path() const { return path_; }

  // Shuffle each epoch with its own seeded permutation (see rowIndex);
  // clearShuffle() returns to file order.
  void setShuffle(uint64_t seed);
  void clearShuffle() { shuffle_ = false; }

  // The dataset row at position i of global batch `step` (0-based): stream
  // position p = step*B + i, epoch e = p / N, row = perm_e[p % N] (identity
  // without shuffle).
  int64_t rowIndex(int64_t step, int64_t batchSize, int64_t i) const;
  // Global batch `step`: stream positions [step*B, step*B + B), wrapping around
  // the end.
  Batch batch(int64_t step, int64_t batchSize) const;
  // Only rows [rowBegin, rowBegin + rowCount) of global batch `step` (a
  // data-parallel rank's part); num_targets still counts the whole global
  // batch. Requires 0 <= rowBegin <= rowBegin + rowCount <= batchSize.
  Batch rows(int64_t step, int64_t batchSize, int64_t rowBegin,
             int64_t rowCount) const;

  // The permutation of epoch e: Fisher–Yates driven by std::mt19937_64(seed +
  // e) with an unbiased bounded draw of our own, so it is identical on every
  // standard library.
  static std::vector<int64_t> permutation(int64_t n, uint64_t seed,
                                          int64_t epoch);

private:
  const std::vector<int64_t> &epochPermutation(int64_t epoch) const;

  std::string path_;
  int64_t padSize_ = 0;
  Task task_ = Task::kClassification;
  bool lastIndex_ = false;
  bool encoderDecoder_ = false;
  int64_t targetPadSize_ = 0;
  std::vector<Row> rows_;
  bool shuffle_ = false;
  uint64_t seed_ = 0;
  // Last permutation computed (batch() is therefore not thread-safe).
  mutable int64_t cachedEpoch_ = -1;
  mutable std::vector<int64_t> cachedPerm_;
};

} // namespace galaxy::io
