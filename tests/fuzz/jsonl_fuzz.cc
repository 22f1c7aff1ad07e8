// The JSONL data reader (runtime/io/dataset.cpp loadJsonl, line_reader.cpp)
// on any bytes, under the options a classification, a causal-LM and a
// seq2seq plan give it. Properties: no crash or UB; what loads keeps the
// dataset's promises (dataset_checks.h).
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/dataset_checks.h"

using namespace galaxy;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz::MemFile file(data, size);
  io::DatasetOptions cls;
  cls.padSize = 8;
  cls.numClasses = 10;
  cls.vocabSize = 300;
  cls.lastIndex = true;
  io::DatasetOptions bartCls = cls;
  bartCls.encoderDecoder = true;
  bartCls.lastIndex = false;
  io::DatasetOptions lm;
  lm.task = io::Task::kCausalLm;
  lm.padSize = 8;
  lm.vocabSize = 300;
  lm.padId = 2;
  io::DatasetOptions s2s;
  s2s.task = io::Task::kSeq2Seq;
  s2s.padSize = 8;
  s2s.targetPadSize = 5;
  s2s.vocabSize = 300;
  s2s.padId = 1;
  for (const io::DatasetOptions &o : {cls, bartCls, lm, s2s}) {
    absl::StatusOr<io::Dataset> ds = io::Dataset::loadJsonl(file.path(), o);
    if (ds.ok())
      fuzz::checkDataset(*ds, o, o.vocabSize);
  }
  return 0;
}
