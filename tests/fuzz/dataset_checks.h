// What every loaded dataset promises, whatever file it came from: rows of
// padSize entries, ids inside the vocabulary, labels inside their range, and
// batches (with and without shuffling, whole or one rank's rows) of the
// fields fieldNames() lists. Shared by the JSONL and TSV targets.
#pragma once

#include <string>

#include "runtime/io/dataset.h"
#include "tests/fuzz/fuzz_file.h"

namespace galaxy::fuzz {

inline void checkDataset(io::Dataset &ds, const io::DatasetOptions &o,
                         int64_t vocab) {
  const size_t S = size_t(o.padSize);
  for (int64_t i = 0; i < ds.size(); ++i) {
    const io::Row &r = ds.row(i);
    if (r.input_ids.size() != S || r.attention_mask.size() != S)
      violated("row " + std::to_string(i) + " is not padSize long");
    for (int32_t id : r.input_ids)
      if (id < 0 || id >= vocab)
        violated("row " + std::to_string(i) + " holds id " +
                 std::to_string(id) + " outside the vocabulary");
    if (o.task == io::Task::kClassification &&
        (r.label < 0 || r.label >= o.numClasses))
      violated("row " + std::to_string(i) + " has label " +
               std::to_string(r.label));
    for (int32_t l : r.labels)
      if (l != io::kIgnoreIndex && (l < 0 || l >= vocab))
        violated("row " + std::to_string(i) + " has a target " +
                 std::to_string(l) + " outside the vocabulary");
  }
  if (ds.size() == 0)
    return;
  for (bool shuffle : {false, true}) {
    if (shuffle)
      ds.setShuffle(7);
    for (int64_t step : {int64_t(0), int64_t(3)}) {
      io::Batch b = ds.batch(step, 3);
      for (const std::string &f : ds.fieldNames())
        if (!b.find(f))
          violated("batch lacks field " + f);
      io::Batch part = ds.rows(step, 4, 1, 2);
      if (part.size != 2)
        violated("rows() gave " + std::to_string(part.size) + " rows");
    }
  }
}

} // namespace galaxy::fuzz
