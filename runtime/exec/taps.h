// Side-only ("forward free") taps: the backbone activations a side network
// reads (the embedding output and every layer's output, [B,S,H] each).
// galaxy-run --dump-taps records them from a side-tuning plan's eval_step;
// --taps / --eval-taps feed them to a side-only plan's "tap.*" inputs.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/exec/executor.h"
#include "runtime/io/dataset.h"
#include "runtime/io/safetensors.h"

namespace galaxy::rt {

// Tap k: 0 is the embedding output, k >= 1 the output of layer k-1.
// Program input "tap.embeddings" / "tap.layer.{i}" <-> file tensor
// "taps.embeddings" / "taps.layer.{i}", [rows, S, H], rows in data-file order.
std::string tapSuffix(int64_t k);
// A side-tuning eval_step returns the taps after loss and logits, unnamed:
// LowerToPlan calls output j "out{j}", so tap k is "out{k+2}".
std::string tapOutputName(int64_t k);

// Records the taps of consecutive eval batches and writes them as one
// safetensors file.
class TapsRecorder {
public:
  TapsRecorder(int64_t taps, int64_t seq, int64_t hidden)
      : taps_(taps), rowElems_(seq * hidden), seq_(seq), hidden_(hidden),
        data_(taps) {}
  // Keeps the first `rows` rows of each tap output of one eval_step run.
  absl::Status add(const Outputs &out, int64_t rows);
  // Atomically (rank 0's job).
  absl::Status write(const std::string &path) const;

private:
  int64_t taps_, rowElems_, seq_, hidden_, rows_ = 0;
  std::vector<std::vector<float>> data_;
};

// A taps file opened for the "tap.*" inputs of a side-only plan.
class TapsFile {
public:
  // Checks that every input has its tensor, F32 [rows, seq, hidden].
  static absl::StatusOr<TapsFile> open(const std::string &path,
                                       const std::vector<std::string> &inputs,
                                       int64_t rows, int64_t seq,
                                       int64_t hidden);
  // Each input's global batch `step`: row i is data row
  // data.rowIndex(step, batch, i), as the data's own batches (shuffle
  // included).
  std::map<std::string, std::vector<float>>
  batch(const io::Dataset &data, int64_t step, int64_t batch) const;

private:
  io::SafetensorsFile file_;
  std::map<std::string, const io::TensorEntry *> entries_; // input -> tensor
  int64_t rowElems_ = 0;
};

// The "tap.*" inputs of a plan's programs, in order of first appearance.
std::vector<std::string> tapInputs(const plan::Plan &plan);

// How many taps a side-tuning plan's eval_step returns after loss and logits;
// 0 for any other plan.
int64_t evalStepTapCount(const plan::Plan &plan);

// galaxy-run --dump-taps: the taps of every row of `data`, in file order, from
// eval_step runs in eval mode (no dropout). Needs evalStepTapCount > 0.
absl::StatusOr<TapsRecorder> recordTaps(Executor &ex, const io::Dataset &data,
                                        uint64_t seed);

} // namespace galaxy::rt
