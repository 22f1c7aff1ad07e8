// Side-only ("forward free") taps: the backbone activations a side network
// reads (embedding outputs and every layer's output, [B, seq, H] each; an
// encoder-decoder's encoder taps and decoder taps have their own lengths).
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

// One tap: its program port name ("tap.<suffix>", a side-only plan's input,
// a side-tuning eval_step's output) and one row's shape [seq, hidden]. The
// taps file holds it as "taps.<suffix>", [rows, seq, hidden], rows in
// data-file order.
struct Tap {
  std::string port;
  int64_t seq = 0, hidden = 0;
  std::string fileName() const; // "taps.<suffix>"
  int64_t rowElems() const { return seq * hidden; }
};

// BERT's tap k, which its side-tuning eval_step returns unnamed: 0 is the
// embedding output ("embeddings"), k >= 1 the output of layer k-1
// ("layer.{k-1}").
std::string tapSuffix(int64_t k);

// The taps a side-tuning plan's eval_step returns after loss and logits, with
// the output bindings they come from: a binding named "tap.*" (BART) is that
// tap; an unnamed one ("out{j}", BERT's) is tapSuffix(j - 2). Shapes from the
// outputs' global shapes. Empty for any other plan.
struct TapOutput {
  Tap tap;
  std::string output;
};
std::vector<TapOutput> evalStepTaps(const plan::Plan &plan);

// The "tap.*" inputs of a plan's programs, in order of first appearance, with
// their global shapes' [seq, hidden].
std::vector<Tap> tapInputs(const plan::Plan &plan);

// Records the taps of consecutive eval batches and writes them as one
// safetensors file.
class TapsRecorder {
public:
  explicit TapsRecorder(std::vector<TapOutput> taps)
      : taps_(std::move(taps)), data_(taps_.size()) {}
  // Keeps the first `rows` rows of each tap output of one eval_step run.
  absl::Status add(const Outputs &out, int64_t rows);
  // Atomically (rank 0's job).
  absl::Status write(const std::string &path) const;
  size_t size() const { return taps_.size(); }

private:
  std::vector<TapOutput> taps_;
  int64_t rows_ = 0;
  std::vector<std::vector<float>> data_;
};

// A taps file opened for the "tap.*" inputs of a side-only plan.
class TapsFile {
public:
  // Checks that every input has its tensor, F32 [rows, seq, hidden].
  static absl::StatusOr<TapsFile>
  open(const std::string &path, const std::vector<Tap> &inputs, int64_t rows);
  // Each input's global batch `step`: row i is data row
  // data.rowIndex(step, batch, i), as the data's own batches (shuffle
  // included).
  std::map<std::string, std::vector<float>>
  batch(const io::Dataset &data, int64_t step, int64_t batch) const;

private:
  struct Entry {
    const io::TensorEntry *tensor;
    int64_t rowElems;
  };
  io::SafetensorsFile file_;
  std::map<std::string, Entry> entries_; // input -> tensor
};

// galaxy-run --dump-taps: the taps of every row of `data`, in file order, from
// eval_step runs in eval mode (no dropout). Needs evalStepTaps non-empty.
absl::StatusOr<TapsRecorder> recordTaps(Executor &ex, const io::Dataset &data,
                                        uint64_t seed);

} // namespace galaxy::rt
