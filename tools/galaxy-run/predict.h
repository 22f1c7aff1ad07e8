// galaxy-run --predict: a classification plan's labels and probabilities
// for rows that need no label, from the plan's forward-only eval_step.
#pragma once

#include "runtime/exec/trainer.h"
#include "runtime/io/dataset.h"
#include "tools/galaxy-run/common.h"

namespace galaxy::run {

// Runs eval_step over every row of `data` (collective: every rank, every
// parallel mode and pipeline stage takes part) and writes, on the lead rank,
// --output: one {"id": ..., "label": k, "probs": [...]} a row in file order
// ("id" only for a row that has one; probs = softmax of the logits, label
// their argmax, the first on ties). Fails (exit 1) when a batch does.
void predictWithReport(rt::Trainer &trainer, const Args &args,
                       const io::Dataset &data, bool lead);

} // namespace galaxy::run
