// Training checkpoints: everything a run needs to continue bit-identically.
// A checkpoint is a directory DIR/step-<N> (N zero-padded to 8 digits) of
//   model.safetensors      every parameter, global tensor, Hugging Face name
//                          (what --save writes: loadable by --init too)
//   optimizer.safetensors  AdamW's moments by parameter, global tensors
//                          (optStateName: "<param>.exp_avg", ".exp_avg_sq")
//   trainer_state.json     CheckpointState: the step (AdamW's bias
//                          correction and the dropout key are functions of
//                          it), the seed, the data cursor and shuffle
//   MANIFEST.json          written last: the files and their sizes
// built under a hidden temporary name, every file fsynced, then renamed into
// place: a directory named step-<N> with a MANIFEST that matches its files is
// complete, anything else (a temporary, a run killed mid-write) is ignored.
// Tensors are global, so a checkpoint of one parallel layout resumes under
// another (each rank reads its slice, as for --init).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/io/safetensors.h"

namespace galaxy::rt {

// What a checkpoint records besides its tensors.
struct CheckpointState {
  int64_t step = 0;  // optimizer steps taken; a resume runs step + 1 next
  uint64_t seed = 0; // galaxy-run --seed: dropout masks and shuffling
  // The data cursor: the next step reads global batch `step` of the data
  // (io::Dataset::batch), permuted per epoch when `shuffle` (seeded by seed).
  bool shuffle = false;
  std::string dataPath;
  int64_t dataRows = 0;
  int64_t batchSize = 0;
  std::string configJson; // the plan's config (Plan.config_json)
  std::string layout;     // the parallel layout, in words (reports)
};

// "step-00000012".
std::string checkpointDirName(int64_t step);

// Writes checkpoint `state.step` into `dir` (which must exist) as described
// above; an existing complete checkpoint of the same step is replaced. Then
// removes all but the newest `keep` complete checkpoints (0: keeps all) and
// any temporaries left by killed writes. `beforeManifest` (may be empty) runs
// once the tensor files are written, before the manifest: a test hook.
// Returns the checkpoint's directory.
absl::StatusOr<std::string>
writeCheckpoint(const std::string &dir, const CheckpointState &state,
                const std::vector<io::TensorToWrite> &tensors, int64_t keep,
                const std::function<void()> &beforeManifest = {});

// The complete checkpoints in `dir`, oldest first (by step).
std::vector<std::string> completeCheckpoints(const std::string &dir);

// A checkpoint opened for resuming.
struct LoadedCheckpoint {
  std::string path; // its step directory
  CheckpointState state;
  io::SafetensorsFile model, optimizer;
};

// `where` is a checkpoint directory DIR (its newest complete checkpoint is
// used) or one step directory of it. NotFound when DIR holds none.
absl::StatusOr<LoadedCheckpoint> openCheckpoint(const std::string &where);

// Compares the plan's config with a checkpoint's: a difference in a key that
// only places the model on ranks (parallel_mode, world_size, the split
// lists, pipeline stages and microbatches) is allowed and described in
// `layoutChanges`; any other (shapes, names, optimizer, learning rate,
// dropout, ...) would continue another training run and is refused naming
// the key and both values. num_epochs and seed are galaxy-run's flags' and
// are not compared.
absl::Status compareCheckpointConfig(const std::string &saved,
                                     const std::string &now,
                                     std::vector<std::string> *layoutChanges);

} // namespace galaxy::rt
