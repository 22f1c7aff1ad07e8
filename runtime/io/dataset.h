// Classification datasets (prototype TSV or pre-tokenized JSONL) and
// deterministic batching.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace galaxy::io {

class WordPieceTokenizer;

// One sample; every array has the dataset's padSize entries.
struct Row {
  std::vector<int32_t> input_ids;
  std::vector<float> attention_mask; // 1 real token, 0 padding
  std::vector<int32_t> token_type_ids;
  int32_t label = 0;
};

// One field of a batch: a global tensor, rows first, row-major; i32 (ids,
// labels) or f32 (masks).
struct BatchField {
  bool isInt = true;
  std::vector<int32_t> i32;
  std::vector<float> f32;
  int64_t numel() const {
    return static_cast<int64_t>(isInt ? i32.size() : f32.size());
  }
};

// A batch as the plan reads it: fields by input name (a plan binds each
// program input to the field of its name). A text dataset provides
// textFields(): input_ids, attention_mask, token_type_ids [size, seqLen] and
// labels [size].
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

// The fields every Dataset batch holds, by name.
const std::vector<std::string> &textFields();

struct DatasetOptions {
  int64_t padSize = 32;   // sequence length of every row
  int64_t numClasses = 0; // labels must lie in [0, numClasses)
  int64_t vocabSize =
      0; // ids must lie in [0, vocabSize); <= 0: the vocab.txt size (TSV)
  int64_t typeVocabSize = 2; // token types must lie in [0, typeVocabSize)
  std::string vocabPath;     // vocab.txt, required for TSV
};

class Dataset {
public:
  // By extension: .jsonl / .json -> loadJsonl, anything else -> loadTsv with
  // opts.vocabPath.
  static absl::StatusOr<Dataset> load(const std::string &path,
                                      const DatasetOptions &opts);
  // Prototype format: "text<TAB>label" lines (split at the last tab; blank
  // lines skipped), text encoded with WordPieceTokenizer::encode.
  static absl::StatusOr<Dataset> loadTsv(const std::string &path,
                                         const WordPieceTokenizer &tok,
                                         const DatasetOptions &opts);
  // One JSON object a line: {"input_ids": [...], "attention_mask": [...],
  // "token_type_ids": [...], "label": k}; mask and types optional.
  static absl::StatusOr<Dataset> loadJsonl(const std::string &path,
                                           const DatasetOptions &opts);

  int64_t size() const { return static_cast<int64_t>(rows_.size()); }
  int64_t padSize() const { return padSize_; }
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
  // data-parallel rank's part). Requires 0 <= rowBegin <= rowBegin + rowCount
  // <= batchSize.
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
  std::vector<Row> rows_;
  bool shuffle_ = false;
  uint64_t seed_ = 0;
  // Last permutation computed (batch() is therefore not thread-safe).
  mutable int64_t cachedEpoch_ = -1;
  mutable std::vector<int64_t> cachedPerm_;
};

} // namespace galaxy::io
