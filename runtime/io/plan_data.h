// What a plan asks of its data: the DatasetOptions of a compiled plan.
#pragma once

#include "absl/status/statusor.h"
#include "runtime/io/dataset.h"
#include "runtime/plan/plan.pb.h"

namespace galaxy::io {

// The task (ModelInfo.task: "causal_lm", or "classification" / empty as in
// plans written before the field), sequence length, classes, vocabulary and
// pad id of `plan`, and whether its programs read last_index. Fails when the
// plan's inputs contradict its task (labels [B, S] for causal LM, [B] for
// classification; num_targets only for causal LM). Tokenizer paths are the
// caller's.
absl::StatusOr<DatasetOptions> datasetOptionsFor(const plan::Plan &plan);

} // namespace galaxy::io
