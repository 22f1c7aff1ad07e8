// Kernels indexed by token ids or labels: embedding(+grad), take_token(+grad),
// cross_entropy(+grad).
#include <cmath>
#include <cstring>
#include <vector>

#include "absl/strings/str_format.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cpu/parallel.h"

namespace galaxy::rt::cpu {
namespace {

// Labels index logits rows; an out-of-range one would read outside the
// buffer. A label equal to ignore_index marks a position that is not counted.
absl::Status checkLabels(const KernelCall &c, const int32_t *labels,
                         int64_t rows, int64_t classes, int64_t ignore) {
  for (int64_t r = 0; r < rows; ++r)
    if (labels[r] != ignore && (labels[r] < 0 || labels[r] >= classes))
      return kernelError(c, absl::StrFormat("labels[%d]=%d outside [0,%d)", r,
                                            labels[r], classes));
  return absl::OkStatus();
}

// logits [..., C] and labels [...]: one label per leading position (a row).
absl::Status checkCrossEntropyShapes(const KernelCall &c, int64_t ignore) {
  const Tensor &logits = c.in[0], &labels = c.in[1];
  GALAXY_CPU_RETURN_IF_ERROR(checkDtype(c, logits, plan::F32, "logits"));
  GALAXY_CPU_RETURN_IF_ERROR(checkDtype(c, labels, plan::I32, "labels"));
  if (logits.shape.empty() || labels.numel() != rowCount(logits))
    return kernelError(c, "logits must be [...,C] and labels [...]");
  return checkLabels(c, labels.i32(), rowCount(logits), logits.shape.back(),
                     ignore);
}

// The optional `count` input at `at` (cross_entropy's divisor beyond the
// denominator: the global number of counted targets); 1 when absent.
absl::StatusOr<double> countInput(const KernelCall &c, size_t at) {
  if (c.in.size() <= at)
    return 1.0;
  const Tensor &count = c.in[at];
  GALAXY_CPU_RETURN_IF_ERROR(checkDtype(c, count, plan::F32, "count"));
  if (count.numel() != 1)
    return kernelError(c, "count must have one element");
  return static_cast<double>(count.f32()[0]);
}

// take_token(_grad)'s position of each of the b rows: `index`, or the
// optional indices input [B] at `at`; a position outside [0, s) is an error
// (it would read or write outside the row).
absl::StatusOr<std::vector<int64_t>>
takeTokenPositions(const KernelCall &c, size_t at, int64_t b, int64_t s) {
  GALAXY_CPU_ASSIGN_OR_RETURN(int64_t index, intAttr(c, "index"));
  if (c.in.size() <= at) {
    if (index < 0 || index >= s)
      return kernelError(
          c, absl::StrFormat("attribute index=%d outside [0,%d)", index, s));
    return std::vector<int64_t>(b, index);
  }
  const Tensor &indices = c.in[at];
  GALAXY_CPU_RETURN_IF_ERROR(checkDtype(c, indices, plan::I32, "indices"));
  if (indices.numel() != b)
    return kernelError(c, absl::StrFormat("indices must be [B] = [%d]", b));
  if (index != 0)
    return kernelError(c, "attribute index must be 0 with per-row indices");
  std::vector<int64_t> pos(b);
  for (int64_t i = 0; i < b; ++i) {
    pos[i] = indices.i32()[i];
    if (pos[i] < 0 || pos[i] >= s)
      return kernelError(
          c, absl::StrFormat("indices[%d]=%d outside [0,%d)", i, pos[i], s));
  }
  return pos;
}

// log Σ exp(row) in double: the loss is summed over the batch and compared
// across plans.
double logSumExp(const float *row, int64_t n) {
  float mx = row[0];
  for (int64_t j = 1; j < n; ++j)
    mx = row[j] > mx ? row[j] : mx;
  double s = 0.0;
  for (int64_t j = 0; j < n; ++j)
    s += std::exp(static_cast<double>(row[j] - mx));
  return mx + std::log(s);
}

} // namespace

absl::Status embeddingKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkArity(c, 2, 2, 1));
  GALAXY_CPU_ASSIGN_OR_RETURN(int64_t vocab_offset, intAttr(c, "vocab_offset"));
  // padding_idx only changes the gradient; read it so a mistyped one fails.
  GALAXY_CPU_RETURN_IF_ERROR(intAttr(c, "padding_idx").status());
  const Tensor &table = c.in[0], &ids = c.in[1], &y = c.out[0];
  GALAXY_CPU_RETURN_IF_ERROR(checkDtype(c, table, plan::F32, "table"));
  GALAXY_CPU_RETURN_IF_ERROR(checkDtype(c, ids, plan::I32, "ids"));
  GALAXY_CPU_RETURN_IF_ERROR(checkDtype(c, y, plan::F32, "y"));
  if (table.shape.size() != 2 || y.shape.empty() ||
      y.shape.back() != table.shape[1] || rowCount(y) != ids.numel())
    return kernelError(c, "needs table [V,H], ids [...] and y [...,H]");
  const int64_t v = table.shape[0], h = table.shape[1];
  const int32_t *id = ids.i32();
  const float *t = table.f32();
  float *yp = y.f32();
  parallelChunks(ids.numel(), h, c.env.threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t row = static_cast<int64_t>(id[r]) - vocab_offset;
      if (row >= 0 && row < v)
        std::memcpy(yp + r * h, t + row * h, h * sizeof(float));
      else
        std::memset(yp + r * h, 0, h * sizeof(float));
    }
  });
  return absl::OkStatus();
}

absl::Status embeddingGradKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkArity(c, 2, 2, 1));
  GALAXY_CPU_ASSIGN_OR_RETURN(int64_t vocab_offset, intAttr(c, "vocab_offset"));
  // A global id (compared before vocab_offset), as torch.nn.Embedding's.
  GALAXY_CPU_ASSIGN_OR_RETURN(int64_t padding_idx, intAttr(c, "padding_idx"));
  const Tensor &ids = c.in[0], &dy = c.in[1], &dt = c.out[0];
  GALAXY_CPU_RETURN_IF_ERROR(checkDtype(c, ids, plan::I32, "ids"));
  GALAXY_CPU_RETURN_IF_ERROR(checkDtype(c, dy, plan::F32, "dy"));
  GALAXY_CPU_RETURN_IF_ERROR(checkDtype(c, dt, plan::F32, "dtable"));
  if (dt.shape.size() != 2 || dy.shape.empty() ||
      dy.shape.back() != dt.shape[1] || rowCount(dy) != ids.numel())
    return kernelError(c, "needs ids [...], dy [...,H] and dtable [V,H]");
  // dtable = beta·dtable + alpha·scatter(dy). With dtable the parameter,
  // alpha = -lr and beta = 1 this is SGD touching only the rows in the batch
  // (the lowering fuses embedding_grad + sgd_update without weight decay).
  GALAXY_CPU_ASSIGN_OR_RETURN(double alpha_d, floatAttr(c, "alpha"));
  GALAXY_CPU_ASSIGN_OR_RETURN(double beta_d, floatAttr(c, "beta"));
  const float alpha = static_cast<float>(alpha_d),
              beta = static_cast<float>(beta_d);
  const int64_t v = dt.shape[0], h = dt.shape[1], rows = ids.numel();
  const int32_t *id = ids.i32();
  const float *g = dy.f32();
  float *out = dt.f32();
  if (beta != 1.f)
    parallelChunks(v, h, c.env.threads, [&](int64_t r0, int64_t r1) {
      if (beta == 0.f) {
        std::memset(out + r0 * h, 0, (r1 - r0) * h * sizeof(float));
        return;
      }
      for (int64_t i = r0 * h; i < r1 * h; ++i)
        out[i] *= beta;
    });
  // Threads own column ranges and add rows in order: deterministic for any
  // thread count.
  parallelChunks(h, rows, c.env.threads, [&](int64_t j0, int64_t j1) {
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t row = static_cast<int64_t>(id[r]) - vocab_offset;
      if (row < 0 || row >= v || id[r] == padding_idx)
        continue;
      float *o = out + row * h;
      const float *gr = g + r * h;
      if (alpha == 1.f)
        for (int64_t j = j0; j < j1; ++j)
          o[j] += gr[j];
      else
        for (int64_t j = j0; j < j1; ++j)
          o[j] += alpha * gr[j];
    }
  });
  return absl::OkStatus();
}

absl::Status takeTokenKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkArity(c, 1, 2, 1));
  const Tensor &x = c.in[0], &y = c.out[0];
  GALAXY_CPU_RETURN_IF_ERROR(checkDtype(c, x, plan::F32, "x"));
  GALAXY_CPU_RETURN_IF_ERROR(checkDtype(c, y, plan::F32, "y"));
  if (x.shape.size() != 3 || y.shape.size() != 2 || y.shape[0] != x.shape[0] ||
      y.shape[1] != x.shape[2])
    return kernelError(c, "needs x [B,S,H] and y [B,H]");
  const int64_t b = x.shape[0], s = x.shape[1], h = x.shape[2];
  GALAXY_CPU_ASSIGN_OR_RETURN(std::vector<int64_t> pos,
                              takeTokenPositions(c, 1, b, s));
  for (int64_t i = 0; i < b; ++i)
    std::memcpy(y.f32() + i * h, x.f32() + (i * s + pos[i]) * h,
                h * sizeof(float));
  return absl::OkStatus();
}

absl::Status takeTokenGradKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkArity(c, 1, 2, 1));
  const Tensor &dy = c.in[0], &dx = c.out[0];
  GALAXY_CPU_RETURN_IF_ERROR(checkDtype(c, dy, plan::F32, "dy"));
  GALAXY_CPU_RETURN_IF_ERROR(checkDtype(c, dx, plan::F32, "dx"));
  if (dx.shape.size() != 3 || dy.shape.size() != 2 ||
      dy.shape[0] != dx.shape[0] || dy.shape[1] != dx.shape[2])
    return kernelError(c, "needs dy [B,H] and dx [B,S,H]");
  const int64_t b = dx.shape[0], s = dx.shape[1], h = dx.shape[2];
  GALAXY_CPU_ASSIGN_OR_RETURN(std::vector<int64_t> pos,
                              takeTokenPositions(c, 1, b, s));
  std::memset(dx.data, 0, dx.numel() * sizeof(float));
  for (int64_t i = 0; i < b; ++i)
    std::memcpy(dx.f32() + (i * s + pos[i]) * h, dy.f32() + i * h,
                h * sizeof(float));
  return absl::OkStatus();
}

absl::Status crossEntropyKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkArity(c, 2, 3, 1));
  GALAXY_CPU_ASSIGN_OR_RETURN(double denom, floatAttr(c, "denominator"));
  GALAXY_CPU_ASSIGN_OR_RETURN(int64_t ignore, intAttr(c, "ignore_index"));
  GALAXY_CPU_RETURN_IF_ERROR(checkCrossEntropyShapes(c, ignore));
  GALAXY_CPU_ASSIGN_OR_RETURN(double count, countInput(c, 2));
  const Tensor &logits = c.in[0], &loss = c.out[0];
  GALAXY_CPU_RETURN_IF_ERROR(checkDtype(c, loss, plan::F32, "loss"));
  if (loss.numel() != 1)
    return kernelError(c, "loss must have one element");
  const int64_t n = logits.shape.back(), rows = rowCount(logits);
  const int32_t *labels = c.in[1].i32();
  double total = 0.0; // serial over rows: the same sum on every run
  for (int64_t r = 0; r < rows; ++r) {
    if (labels[r] == ignore)
      continue;
    const float *row = logits.f32() + r * n;
    total += logSumExp(row, n) - row[labels[r]];
  }
  // No counted target in the (global) batch: nothing to learn from, not NaN.
  loss.f32()[0] =
      count <= 0 ? 0.f : static_cast<float>(total / (denom * count));
  return absl::OkStatus();
}

absl::Status crossEntropyGradKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkArity(c, 3, 4, 1));
  GALAXY_CPU_ASSIGN_OR_RETURN(double denom, floatAttr(c, "denominator"));
  GALAXY_CPU_ASSIGN_OR_RETURN(int64_t ignore, intAttr(c, "ignore_index"));
  GALAXY_CPU_RETURN_IF_ERROR(checkCrossEntropyShapes(c, ignore));
  GALAXY_CPU_ASSIGN_OR_RETURN(double count, countInput(c, 3));
  const Tensor &logits = c.in[0], &dloss = c.in[2], &dlogits = c.out[0];
  GALAXY_CPU_RETURN_IF_ERROR(checkDtype(c, dloss, plan::F32, "dloss"));
  GALAXY_CPU_RETURN_IF_ERROR(checkDtype(c, dlogits, plan::F32, "dlogits"));
  if (dloss.numel() != 1 || dlogits.shape != logits.shape)
    return kernelError(
        c, "dloss must have one element and dlogits the shape of logits");
  const int64_t n = logits.shape.back(), rows = rowCount(logits);
  const int32_t *labels = c.in[1].i32();
  if (count <= 0) { // the loss is 0 whatever the logits (see the forward)
    std::memset(dlogits.data, 0, dlogits.numel() * sizeof(float));
    return absl::OkStatus();
  }
  const double scale = static_cast<double>(dloss.f32()[0]) / (denom * count);
  parallelChunks(rows, n * 20, c.env.threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float *row = logits.f32() + r * n;
      float *o = dlogits.f32() + r * n;
      if (labels[r] == ignore) { // not counted: no gradient
        std::memset(o, 0, n * sizeof(float));
        continue;
      }
      const double lse = logSumExp(row, n);
      for (int64_t j = 0; j < n; ++j)
        o[j] = static_cast<float>(std::exp(static_cast<double>(row[j]) - lse) *
                                  scale);
      const int32_t l = labels[r];
      o[l] = static_cast<float>(
          (std::exp(static_cast<double>(row[l]) - lse) - 1.0) * scale);
    }
  });
  return absl::OkStatus();
}

} // namespace galaxy::rt::cpu
