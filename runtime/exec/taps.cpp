#include "runtime/exec/taps.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace galaxy::rt {

std::string tapSuffix(int64_t k) {
  return k == 0 ? "embeddings" : absl::StrCat("layer.", k - 1);
}

std::string tapOutputName(int64_t k) { return absl::StrCat("out", k + 2); }

absl::Status TapsRecorder::add(const Outputs &out, int64_t rows) {
  for (int64_t k = 0; k < taps_; ++k) {
    auto it = out.find(tapOutputName(k));
    if (it == out.end())
      return absl::FailedPreconditionError(absl::StrCat(
          "eval_step does not return tap ", tapSuffix(k), " (output ",
          tapOutputName(k),
          "): --dump-taps needs a plan compiled with use_side (side-tuning)"));
    if (int64_t(it->second.size()) < rows * rowElems_)
      return absl::InternalError(
          absl::StrCat("tap ", tapSuffix(k), " has ", it->second.size(),
                       " elements, fewer than ", rows, " rows of ", rowElems_));
    data_[k].insert(data_[k].end(), it->second.begin(),
                    it->second.begin() + rows * rowElems_);
  }
  rows_ += rows;
  return absl::OkStatus();
}

absl::Status TapsRecorder::write(const std::string &path) const {
  std::vector<io::TensorToWrite> tensors;
  for (int64_t k = 0; k < taps_; ++k)
    tensors.push_back({"taps." + tapSuffix(k),
                       io::StDType::F32,
                       {rows_, seq_, hidden_},
                       data_[k].data()});
  return io::writeSafetensors(
      path, tensors,
      {{"format", "pt"}, {"producer", "galaxy-run --dump-taps"}});
}

absl::StatusOr<TapsFile> TapsFile::open(const std::string &path,
                                        const std::vector<std::string> &inputs,
                                        int64_t rows, int64_t seq,
                                        int64_t hidden) {
  auto f = io::readSafetensors(path);
  if (!f.ok())
    return f.status();
  TapsFile t;
  t.file_ = std::move(*f);
  t.rowElems_ = seq * hidden;
  const std::vector<int64_t> want = {rows, seq, hidden};
  for (const std::string &in : inputs) {
    std::string name = "taps." + in.substr(strlen("tap."));
    const io::TensorEntry *e = t.file_.find(name);
    if (!e)
      return absl::NotFoundError(absl::StrCat(
          "taps file '", path, "' has no tensor '", name, "' for input '", in,
          "'; write it with galaxy-run SIDE_PLAN --dump-taps FILE over the "
          "same data"));
    if (e->dtype != io::StDType::F32 || e->shape != want)
      return absl::InvalidArgumentError(absl::StrCat(
          "taps file '", path, "': tensor '", name, "' is ",
          std::string(io::stDTypeName(e->dtype)), " [",
          absl::StrJoin(e->shape, ", "), "] but this data and plan need F32 [",
          rows, ", ", seq, ", ", hidden,
          "] (one row per data row, in file order); dump the taps from the "
          "same data file"));
    t.entries_[in] = e;
  }
  return t;
}

std::map<std::string, std::vector<float>>
TapsFile::batch(const io::Dataset &data, int64_t step, int64_t batch) const {
  std::map<std::string, std::vector<float>> out;
  for (const auto &[in, e] : entries_) {
    std::vector<float> &dst = out[in];
    dst.resize(batch * rowElems_);
    const uint8_t *src = e->data; // may be unaligned for float
    for (int64_t i = 0; i < batch; ++i)
      std::memcpy(dst.data() + i * rowElems_,
                  src + data.rowIndex(step, batch, i) * rowElems_ * 4,
                  sizeof(float) * rowElems_);
  }
  return out;
}

std::vector<std::string> tapInputs(const plan::Plan &plan) {
  std::vector<std::string> names;
  for (const plan::Program &p : plan.programs())
    for (const plan::Binding &in : p.inputs())
      if (in.name().rfind("tap.", 0) == 0 &&
          std::find(names.begin(), names.end(), in.name()) == names.end())
        names.push_back(in.name());
  return names;
}

namespace {
const plan::Program *evalStep(const plan::Plan &plan) {
  const plan::Program *eval = nullptr;
  for (const plan::Program &p : plan.programs())
    if (p.name() == "eval_step")
      eval = &p;
  return eval;
}
} // namespace

int64_t evalStepTapCount(const plan::Plan &plan) {
  const plan::Program *eval = evalStep(plan);
  return eval ? std::max(eval->outputs_size() - 2, 0) : 0;
}

absl::StatusOr<TapsRecorder> recordTaps(Executor &ex, const io::Dataset &data,
                                        uint64_t seed) {
  const plan::Plan &plan = ex.plan();
  const int64_t taps = evalStepTapCount(plan);
  if (taps <= 0)
    return absl::FailedPreconditionError("eval_step returns no taps");
  const plan::Buffer &out =
      plan.buffers(evalStep(plan)->outputs(2).buffer()); // [B, S, H]
  const int64_t B = plan.model().batch_size(), N = data.size();
  TapsRecorder rec(taps, plan.model().seq_len(),
                   out.shape(out.shape_size() - 1));
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
