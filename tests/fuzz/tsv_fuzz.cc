// The text<TAB>label reader (runtime/io/dataset.cpp loadTsv with WordPiece,
// line_reader.cpp) on any bytes, with the demo vocab.txt. Properties: no
// crash or UB; what loads keeps the dataset's promises (dataset_checks.h).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "runtime/io/wordpiece.h"
#include "tests/fuzz/dataset_checks.h"

using namespace galaxy;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const io::WordPieceTokenizer *tok = [] {
    auto t = io::WordPieceTokenizer::fromFile(GALAXY_FUZZ_VOCAB);
    if (!t.ok())
      fuzz::violated(std::string(t.status().message()));
    return new io::WordPieceTokenizer(std::move(*t));
  }();
  fuzz::MemFile file(data, size);
  io::DatasetOptions o;
  o.padSize = 12;
  o.numClasses = 10;
  io::DatasetOptions last = o;
  last.lastIndex = true;
  last.vocabSize = 100; // smaller than the vocab: some tokens are refused
  for (const io::DatasetOptions &opts : {o, last}) {
    absl::StatusOr<io::Dataset> ds =
        io::Dataset::loadTsv(file.path(), *tok, opts);
    if (ds.ok())
      fuzz::checkDataset(
          *ds, opts, opts.vocabSize > 0 ? opts.vocabSize : tok->vocabSize());
  }
  return 0;
}
