// Test helper: a tiny data-parallel training plan (a linear classifier over
// the attention mask) written the way galaxyc writes plans, so galaxy-run can
// be launched on it with any world size.
#pragma once

#include <string>
#include <vector>

#include "runtime/plan/plan.pb.h"

namespace galaxy::rt::testing {

constexpr int kTinyBatch = 6, kTinySeq = 4, kTinyClasses = 3, kTinyVocab = 10;

// Rank `rank`'s plan; `batchSizes` splits the batch (one entry per rank;
// {6} is the serial plan, which carries no collectives).
plan::Plan tinyDataParallelPlan(int rank,
                                const std::vector<int64_t> &batchSizes);

// Writes DIR/rank<r>.plan.pb for every rank; returns false on I/O errors.
bool writeTinyPlans(const std::string &dir,
                    const std::vector<int64_t> &batchSizes);

// `rows` JSONL rows of varied length that fit the tiny model.
bool writeTinyData(const std::string &path, int rows);

} // namespace galaxy::rt::testing
