#include "tools/galaxy-run/predict.h"

#include <cmath>
#include <iostream>
#include <sstream>

#include "absl/strings/str_format.h"
#include "tools/galaxy-run/outputs.h"

namespace galaxy::run {

void predictWithReport(rt::Trainer &trainer, const Args &args,
                       const io::Dataset &data, bool lead) {
  // The labels (0 where a row has none) only feed the loss nobody reads.
  absl::StatusOr<rt::EvalResult> result = trainer.evaluate(data);
  if (!result.ok())
    fail(1, std::string(result.status().message()));
  if (!lead)
    return;
  if (int64_t(result->logits.size()) != data.size())
    fail(1, absl::StrFormat("--predict: eval_step gave logits of %d rows, the "
                            "file has %d",
                            result->logits.size(), data.size()));
  std::ostringstream o;
  for (int64_t r = 0; r < data.size(); ++r) {
    const std::vector<float> &logits = result->logits[r];
    // Softmax in double, shifted by the largest logit.
    size_t best = 0;
    for (size_t c = 1; c < logits.size(); ++c)
      if (logits[c] > logits[best])
        best = c;
    double sum = 0;
    std::vector<double> p(logits.size());
    for (size_t c = 0; c < logits.size(); ++c)
      sum += p[c] = std::exp(double(logits[c]) - double(logits[best]));
    o << "{";
    if (!data.row(r).id.empty())
      o << "\"id\": " << data.row(r).id << ", ";
    o << "\"label\": " << best << ", \"probs\": [";
    for (size_t c = 0; c < p.size(); ++c)
      o << (c ? ", " : "") << absl::StrFormat("%.9g", p[c] / sum);
    o << "]}\n";
  }
  if (absl::Status s = writeTextAtomically(args.output, o.str()); !s.ok())
    fail(1, std::string(s.message()));
  std::cerr << absl::StrFormat("predict: %d rows of %s -> %s\n", data.size(),
                               data.path(), args.output);
}

} // namespace galaxy::run
