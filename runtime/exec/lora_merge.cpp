#include "runtime/exec/lora_merge.h"

#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "runtime/io/safetensors.h"

namespace galaxy::rt {

namespace {
constexpr std::string_view kA = ".lora_A.weight", kB = ".lora_B.weight";

bool endsWith(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

std::string shapeStr(const std::vector<int64_t> &s) {
  return absl::StrCat("[", absl::StrJoin(s, ", "), "]");
}
} // namespace

absl::Status writeMergedLora(const std::string &savedPath,
                             const std::string &configJson,
                             const std::string &outPath) {
  nlohmann::json cfg = nlohmann::json::parse(configJson, nullptr, false);
  if (cfg.is_discarded() || !cfg.value("use_lora", false))
    return absl::FailedPreconditionError(
        "--save-merged needs a LoRA plan (compiled with use_lora: true); this "
        "plan's config has no LoRA");
  const double alpha = cfg.value("lora_alpha", 0.0);
  const int64_t rank = cfg.value("lora_dim", int64_t(0));
  const bool fanInFanOut = cfg.value("fan_in_fan_out", false);
  if (rank <= 0)
    return absl::FailedPreconditionError(absl::StrCat(
        "the plan's config has lora_dim ", rank, "; it must be positive"));
  const double scale = alpha / double(rank);

  auto file = io::readSafetensors(savedPath);
  if (!file.ok())
    return file.status();
  // Base weight name -> its merged values.
  std::map<std::string, std::vector<float>> merged;
  for (const io::TensorEntry &a : file->tensors()) {
    if (!endsWith(a.name, kA))
      continue;
    std::string module = a.name.substr(0, a.name.size() - kA.size());
    const io::TensorEntry *b = file->find(module + std::string(kB));
    const io::TensorEntry *w = file->find(module + ".weight");
    if (!b || !w)
      return absl::InvalidArgumentError(absl::StrCat(
          savedPath, ": ", a.name, " has no ", !b ? "lora_B" : "base",
          " weight ", module, !b ? std::string(kB) : ".weight"));
    if (a.shape.size() != 2 || b->shape.size() != 2 || w->shape.size() != 2 ||
        a.shape[0] != rank || b->shape[1] != rank)
      return absl::InvalidArgumentError(absl::StrCat(
          savedPath, ": LoRA of ", module, " has A ", shapeStr(a.shape), ", B ",
          shapeStr(b->shape), ", W ", shapeStr(w->shape), "; expected A [",
          rank, ", in], B [out, ", rank, "] (lora_dim ", rank, ")"));
    const int64_t out = b->shape[0], in = a.shape[1];
    const std::vector<int64_t> wantW = fanInFanOut
                                           ? std::vector<int64_t>{in, out}
                                           : std::vector<int64_t>{out, in};
    if (w->shape != wantW)
      return absl::InvalidArgumentError(absl::StrCat(
          savedPath, ": ", module, ".weight is ", shapeStr(w->shape),
          " but its LoRA factors need ", shapeStr(wantW),
          fanInFanOut ? " (fan_in_fan_out: [in, out])" : " ([out, in])"));
    auto av = file->readF32(a.name, a.shape);
    auto bv = file->readF32(b->name, b->shape);
    auto wv = file->readF32(w->name, w->shape);
    for (auto *s : {&av, &bv, &wv})
      if (!s->ok())
        return s->status();
    std::vector<float> &m = merged[w->name] = std::move(*wv);
    for (int64_t o = 0; o < out; ++o)
      for (int64_t i = 0; i < in; ++i) {
        double d = 0;
        for (int64_t k = 0; k < rank; ++k)
          d += double((*bv)[o * rank + k]) * double((*av)[k * in + i]);
        float &dst = fanInFanOut ? m[i * out + o] : m[o * in + i];
        dst = float(double(dst) + scale * d);
      }
  }
  std::vector<io::TensorToWrite> tensors;
  for (const io::TensorEntry &t : file->tensors()) {
    if (endsWith(t.name, kA) || endsWith(t.name, kB))
      continue;
    auto it = merged.find(t.name);
    const void *data = t.data;
    io::StDType dtype = t.dtype;
    if (it != merged.end()) {
      data = it->second.data();
      dtype = io::StDType::F32;
    }
    tensors.push_back({t.name, dtype, t.shape, data});
  }
  return io::writeSafetensors(
      outPath, tensors,
      {{"format", "pt"}, {"producer", "galaxy-run --save-merged"}});
}

} // namespace galaxy::rt
