#include "runtime/exec/taps.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace galaxy::rt {
namespace {

constexpr char kPortPrefix[] = "tap.";

const plan::Program *evalStep(const plan::Plan &plan) {
  const plan::Program *eval = nullptr;
  for (const plan::Program &p : plan.programs())
    if (p.name() == "eval_step")
      eval = &p;
  return eval;
}

// [seq, hidden] of a [B, seq, hidden] buffer's global shape (its local shape
// in plans that leave global_shape empty).
void rowShape(const plan::Buffer &b, Tap &t) {
  const auto &shape = b.global_shape_size() ? b.global_shape() : b.shape();
  if (shape.size() == 3) {
    t.seq = shape[1];
    t.hidden = shape[2];
  }
}

} // namespace

std::string Tap::fileName() const {
  return "taps." + port.substr(strlen(kPortPrefix));
}

std::string tapSuffix(int64_t k) {
  return k == 0 ? "embeddings" : absl::StrCat("layer.", k - 1);
}

std::vector<TapOutput> evalStepTaps(const plan::Plan &plan) {
  std::vector<TapOutput> taps;
  const plan::Program *eval = evalStep(plan);
  if (!eval)
    return taps;
  // Outputs 0 and 1 are loss and logits.
  for (int j = 2; j < eval->outputs_size(); ++j) {
    const plan::Binding &out = eval->outputs(j);
    TapOutput t;
    t.output = out.name();
    t.tap.port = out.name().rfind(kPortPrefix, 0) == 0
                     ? out.name()
                     : kPortPrefix + tapSuffix(j - 2);
    rowShape(plan.buffers(out.buffer()), t.tap);
    taps.push_back(std::move(t));
  }
  return taps;
}

std::vector<Tap> tapInputs(const plan::Plan &plan) {
  std::vector<Tap> taps;
  for (const plan::Program &p : plan.programs())
    for (const plan::Binding &in : p.inputs())
      if (in.name().rfind(kPortPrefix, 0) == 0 &&
          std::none_of(taps.begin(), taps.end(),
                       [&](const Tap &t) { return t.port == in.name(); })) {
        Tap t;
        t.port = in.name();
        rowShape(plan.buffers(in.buffer()), t);
        taps.push_back(std::move(t));
      }
  return taps;
}

absl::Status TapsRecorder::add(const Outputs &out, int64_t rows) {
  for (size_t k = 0; k < taps_.size(); ++k) {
    const TapOutput &t = taps_[k];
    auto it = out.find(t.output);
    if (it == out.end())
      return absl::FailedPreconditionError(absl::StrCat(
          "eval_step does not return tap ", t.tap.port, " (output ", t.output,
          "): --dump-taps needs a plan compiled with use_side (side-tuning)"));
    const int64_t n = rows * t.tap.rowElems();
    if (int64_t(it->second.size()) < n)
      return absl::InternalError(absl::StrCat(
          "tap ", t.tap.port, " has ", it->second.size(),
          " elements, fewer than ", rows, " rows of ", t.tap.rowElems()));
    data_[k].insert(data_[k].end(), it->second.begin(), it->second.begin() + n);
  }
  rows_ += rows;
  return absl::OkStatus();
}

absl::Status TapsRecorder::write(const std::string &path) const {
  std::vector<io::TensorToWrite> tensors;
  for (size_t k = 0; k < taps_.size(); ++k) {
    const Tap &t = taps_[k].tap;
    tensors.push_back({t.fileName(),
                       io::StDType::F32,
                       {rows_, t.seq, t.hidden},
                       data_[k].data()});
  }
  return io::writeSafetensors(
      path, tensors,
      {{"format", "pt"}, {"producer", "galaxy-run --dump-taps"}});
}

absl::StatusOr<TapsFile> TapsFile::open(const std::string &path,
                                        const std::vector<Tap> &inputs,
                                        int64_t rows) {
  auto f = io::readSafetensors(path);
  if (!f.ok())
    return f.status();
  TapsFile t;
  t.file_ = std::move(*f);
  for (const Tap &in : inputs) {
    const std::string name = in.fileName();
    const io::TensorEntry *e = t.file_.find(name);
    if (!e)
      return absl::NotFoundError(absl::StrCat(
          "taps file '", path, "' has no tensor '", name, "' for input '",
          in.port,
          "'; write it with galaxy-run SIDE_PLAN --dump-taps FILE over the "
          "same data"));
    const std::vector<int64_t> want = {rows, in.seq, in.hidden};
    if (e->dtype != io::StDType::F32 || e->shape != want)
      return absl::InvalidArgumentError(absl::StrCat(
          "taps file '", path, "': tensor '", name, "' is ",
          std::string(io::stDTypeName(e->dtype)), " [",
          absl::StrJoin(e->shape, ", "), "] but this data and plan need F32 [",
          absl::StrJoin(want, ", "),
          "] (one row per data row, in file order); dump the taps from the "
          "same data file"));
    t.entries_[in.port] = {e, in.rowElems()};
  }
  return t;
}

std::map<std::string, std::vector<float>>
TapsFile::batch(const io::Dataset &data, int64_t step, int64_t batch) const {
  std::map<std::string, std::vector<float>> out;
  for (const auto &[in, e] : entries_) {
    std::vector<float> &dst = out[in];
    const int64_t n = e.rowElems;
    dst.resize(batch * n);
    const uint8_t *src = e.tensor->data; // may be unaligned for float
    for (int64_t i = 0; i < batch; ++i)
      std::memcpy(dst.data() + i * n,
                  src + data.rowIndex(step, batch, i) * n * sizeof(float),
                  sizeof(float) * n);
  }
  return out;
}

absl::StatusOr<TapsRecorder> recordTaps(Executor &ex, const io::Dataset &data,
                                        uint64_t seed) {
  const plan::Plan &plan = ex.plan();
  TapsRecorder rec(evalStepTaps(plan));
  if (rec.size() == 0)
    return absl::FailedPreconditionError("eval_step returns no taps");
  const int64_t B = plan.model().batch_size(), N = data.size();
  KernelContext ctx{seed, 0, /*training=*/false};
  for (int64_t start = 0; start < N; start += B) {
    auto res = ex.run("eval_step", data.batch(start / B, B), ctx);
    if (!res.ok())
      return res.status();
    if (absl::Status s = rec.add(*res, std::min(B, N - start)); !s.ok())
      return s;
  }
  return rec;
}

} // namespace galaxy::rt
