// split_heads, merge_heads (and its fused merge_heads_bias_grad),
// repeat_kv(+grad), rope, masked_softmax, softmax_grad.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "absl/strings/str_format.h"
#include "runtime/cpu/fast_math.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cpu/parallel.h"
#include "runtime/cpu/rope_angles.h"
#include "runtime/cpu/vector_loops.h"

namespace galaxy::rt::cpu {
namespace {

// Copies [B,S,n,d]-ordered data x to [B,n,S,d] order y (to_heads) or back.
absl::Status copyHeads(const KernelCall &c, const Tensor &x, const Tensor &y,
                       bool to_heads) {
  const Tensor &flat = to_heads ? x : y, &heads = to_heads ? y : x;
  if (flat.shape.size() != 3 || heads.shape.size() != 4 ||
      flat.shape[0] != heads.shape[0] || flat.shape[1] != heads.shape[2] ||
      flat.shape[2] != heads.shape[1] * heads.shape[3] || x.dtype != y.dtype)
    return kernelError(c, "needs [B,S,n*d] and [B,n,S,d] of one dtype");
  const int64_t bsz = heads.shape[0], nh = heads.shape[1], s = heads.shape[2],
                d = heads.shape[3];
  const size_t bytes =
      d * (x.dtype == plan::I32 ? sizeof(int32_t) : sizeof(float));
  char *src = static_cast<char *>(x.data), *dst = static_cast<char *>(y.data);
  parallelChunks(bsz * s, nh * d, c.env.threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / s, t = r % s;
      for (int64_t h = 0; h < nh; ++h) {
        const int64_t flat_off = (r * nh + h) * bytes;
        const int64_t head_off = (((b * nh + h) * s) + t) * bytes;
        std::memcpy(dst + (to_heads ? head_off : flat_off),
                    src + (to_heads ? flat_off : head_off), bytes);
      }
    }
  });
  return absl::OkStatus();
}

absl::Status headsCopy(const KernelCall &c, bool to_heads) {
  GALAXY_CPU_RETURN_IF_ERROR(checkArity(c, 1, 1, 1));
  return copyHeads(c, c.in[0], c.out[0], to_heads);
}

// One (cos, sin) per (position, frequency), shared by every batch row and
// head (double cos and sin cost tens of operations each). Kept per thread for
// the last few shapes: a model's rope calls share one or two, and a decode
// step would otherwise rebuild s·d/2 of them per call.
const std::vector<rope::CosSin> &ropeTable(double theta, int64_t s, int64_t d,
                                           int64_t offset, bool inverse,
                                           int threads) {
  struct Entry {
    double theta;
    int64_t s, d, offset;
    bool inverse;
    std::vector<rope::CosSin> table;
  };
  constexpr size_t kKept = 4;
  thread_local std::vector<Entry> kept; // most recently used last
  for (size_t i = 0; i < kept.size(); ++i) {
    const Entry &e = kept[i];
    if (e.theta == theta && e.s == s && e.d == d && e.offset == offset &&
        e.inverse == inverse) {
      std::rotate(kept.begin() + i, kept.begin() + i + 1, kept.end());
      return kept.back().table;
    }
  }
  if (kept.size() == kKept)
    kept.erase(kept.begin());
  const int64_t half = d / 2;
  std::vector<float> freq(half);
  for (int64_t i = 0; i < half; ++i)
    freq[i] = rope::invFreq(theta, i, d);
  std::vector<rope::CosSin> table(s * half);
  parallelChunks(s, half * 64, threads, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t)
      for (int64_t i = 0; i < half; ++i)
        table[t * half + i] = rope::cosSin(t + offset, freq[i], inverse);
  });
  kept.push_back({theta, s, d, offset, inverse, std::move(table)});
  return kept.back().table;
}

} // namespace

absl::Status splitHeadsKernel(const KernelCall &c) {
  return headsCopy(c, true);
}
absl::Status mergeHeadsKernel(const KernelCall &c) {
  return headsCopy(c, false);
}

// merge_heads, then bias_grad's column sums of its result while it is in
// cache (galaxy-fuse): one kernel call instead of two.
absl::Status mergeHeadsBiasGradKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkArity(c, 1, 1, 2));
  GALAXY_CPU_RETURN_IF_ERROR(checkAllF32(c));
  const Tensor &y = c.out[0], &db = c.out[1];
  GALAXY_CPU_RETURN_IF_ERROR(copyHeads(c, c.in[0], y, false));
  if (db.numel() != y.shape[2])
    return kernelError(c, "db must be [n*d] for y[B,S,n*d]");
  columnSums(y.f32(), y.shape[0] * y.shape[1], y.shape[2], db.f32(),
             c.env.threads);
  return absl::OkStatus();
}

absl::Status checkRepeatKv(const KernelCall &c, const Tensor &few,
                           const Tensor &many, int64_t groups,
                           int64_t headOffset) {
  if (few.shape.size() != 4 || many.shape.size() != 4 ||
      few.shape[0] != many.shape[0] || few.shape[2] != many.shape[2] ||
      few.shape[3] != many.shape[3])
    return kernelError(c, "needs [B,nkv,S,d] and [B,n,S,d]");
  if (groups < 1 || headOffset < 0 ||
      (many.shape[1] > 0 &&
       (many.shape[1] - 1 + headOffset) / groups >= few.shape[1]))
    return kernelError(
        c, absl::StrFormat("heads [%d, %d) in groups of %d do not map into "
                           "%d KV heads",
                           headOffset, headOffset + many.shape[1], groups,
                           few.shape[1]));
  return absl::OkStatus();
}

absl::Status repeatKvKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkArity(c, 1, 1, 1));
  GALAXY_CPU_RETURN_IF_ERROR(checkAllF32(c));
  GALAXY_CPU_ASSIGN_OR_RETURN(int64_t groups, intAttr(c, "groups"));
  GALAXY_CPU_ASSIGN_OR_RETURN(int64_t offset, intAttr(c, "head_offset"));
  const Tensor &x = c.in[0], &y = c.out[0];
  GALAXY_CPU_RETURN_IF_ERROR(checkRepeatKv(c, x, y, groups, offset));
  const int64_t nkv = x.shape[1], n = y.shape[1],
                block = y.shape[2] * y.shape[3]; // one head's S·d
  const float *xp = x.f32();
  float *yp = y.f32();
  parallelChunks(y.shape[0] * n, block, c.env.threads,
                 [&](int64_t r0, int64_t r1) {
                   for (int64_t r = r0; r < r1; ++r) {
                     const int64_t b = r / n, h = r % n;
                     std::memcpy(yp + r * block,
                                 xp + (b * nkv + (h + offset) / groups) * block,
                                 block * sizeof(float));
                   }
                 });
  return absl::OkStatus();
}

absl::Status repeatKvGradKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkArity(c, 1, 1, 1));
  GALAXY_CPU_RETURN_IF_ERROR(checkAllF32(c));
  GALAXY_CPU_ASSIGN_OR_RETURN(int64_t groups, intAttr(c, "groups"));
  GALAXY_CPU_ASSIGN_OR_RETURN(int64_t offset, intAttr(c, "head_offset"));
  const Tensor &dy = c.in[0], &dx = c.out[0];
  GALAXY_CPU_RETURN_IF_ERROR(checkRepeatKv(c, dx, dy, groups, offset));
  const int64_t nkv = dx.shape[1], n = dy.shape[1],
                block = dy.shape[2] * dy.shape[3];
  const float *gp = dy.f32();
  float *out = dx.f32();
  // KV head o sums the heads h in [o·groups − offset, (o+1)·groups − offset)
  // this rank holds, in head order; none: 0 (a partial result's zeros).
  parallelChunks(
      dx.shape[0] * nkv, block * groups, c.env.threads,
      [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t b = r / nkv, o = r % nkv;
          const int64_t h0 = std::max<int64_t>(o * groups - offset, 0),
                        h1 = std::min<int64_t>((o + 1) * groups - offset, n);
          float *dst = out + r * block;
          std::fill(dst, dst + block, 0.f);
          for (int64_t h = h0; h < h1; ++h) {
            const float *src = gp + (b * n + h) * block;
            for (int64_t j = 0; j < block; ++j)
              dst[j] += src[j];
          }
        }
      });
  return absl::OkStatus();
}

absl::Status ropeKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkArity(c, 1, 1, 1));
  GALAXY_CPU_RETURN_IF_ERROR(checkAllF32(c));
  GALAXY_CPU_ASSIGN_OR_RETURN(double theta, floatAttr(c, "theta"));
  GALAXY_CPU_ASSIGN_OR_RETURN(int64_t inverse, intAttr(c, "inverse"));
  GALAXY_CPU_ASSIGN_OR_RETURN(int64_t offset, intAttr(c, "offset"));
  const Tensor &x = c.in[0], &y = c.out[0];
  if (x.shape.size() != 4 || x.shape != y.shape || x.shape[3] % 2 != 0)
    return kernelError(c, "x and y must be one shape [B,n,S,d] with d even");
  const int64_t s = x.shape[2], d = x.shape[3], half = d / 2,
                heads = x.shape[0] * x.shape[1];
  const std::vector<rope::CosSin> &table =
      ropeTable(theta, s, d, offset, inverse != 0, c.env.threads);
  const float *xp = x.f32();
  float *yp = y.f32();
  parallelChunks(heads * s, d * 3, c.env.threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const rope::CosSin *cs = table.data() + (r % s) * half;
      const float *xr = xp + r * d;
      float *yr = yp + r * d;
      for (int64_t i = 0; i < half; ++i)
        rope::rotate(xr[i], xr[i + half], cs[i], yr[i], yr[i + half]);
    }
  });
  return absl::OkStatus();
}

absl::Status maskedSoftmaxKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkArity(c, 1, 2, 1));
  GALAXY_CPU_ASSIGN_OR_RETURN(int64_t causal, intAttr(c, "causal"));
  GALAXY_CPU_ASSIGN_OR_RETURN(int64_t q_offset, intAttr(c, "q_offset"));
  const Tensor &x = c.in[0], &y = c.out[0];
  const Tensor *mask = c.in.size() == 2 ? &c.in[1] : nullptr;
  if (x.shape.size() < 2 || x.shape != y.shape || x.dtype != plan::F32 ||
      y.dtype != plan::F32)
    return kernelError(c, "x and y must be f32 of one shape [...,Sq,Sk]");
  const size_t rank = x.shape.size();
  const int64_t sk = x.shape[rank - 1], sq = x.shape[rank - 2],
                rows = rowCount(x);
  int64_t rows_per_batch = rows; // rows sharing one mask row: n·Sq
  if (mask) {
    if (rank != 4 || mask->numel() != x.shape[0] * sk)
      return kernelError(c,
                         "with a mask, x must be [B,n,Sq,Sk] and mask [B,Sk]");
    rows_per_batch = x.shape[1] * sq;
  }
  const float *xp = x.f32();
  float *yp = y.f32();
  parallelChunks(rows, sk * 8, c.env.threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float *in = xp + r * sk;
      float *out = yp + r * sk;
      // Keys [0, limit) take part; causal masks k > q + q_offset with −inf.
      int64_t limit = sk;
      if (causal) {
        const int64_t q = r % sq;
        limit = q + q_offset + 1;
        limit = limit < 0 ? 0 : (limit > sk ? sk : limit);
      }
      const int64_t b = r / rows_per_batch;
      for (int64_t k = 0; k < limit; ++k)
        out[k] = in[k];
      if (mask) {
        if (mask->dtype == plan::I32) {
          const int32_t *mrow = mask->i32() + b * sk;
          for (int64_t k = 0; k < limit; ++k)
            out[k] += (1.f - float(mrow[k])) * -10000.f;
        } else {
          const float *mrow = mask->f32() + b * sk;
          for (int64_t k = 0; k < limit; ++k)
            out[k] += (1.f - mrow[k]) * -10000.f;
        }
      }
      softmaxInPlace(out, limit);
      for (int64_t k = limit; k < sk; ++k)
        out[k] = 0.f;
    }
  });
  return absl::OkStatus();
}

absl::Status softmaxGradKernel(const KernelCall &c) {
  GALAXY_CPU_RETURN_IF_ERROR(checkArity(c, 2, 2, 1));
  GALAXY_CPU_RETURN_IF_ERROR(checkAllF32(c));
  const Tensor &y = c.in[0], &dy = c.in[1], &dx = c.out[0];
  if (y.shape.empty() || y.shape != dy.shape || y.shape != dx.shape)
    return kernelError(c, "y, dy and dx must have one shape");
  const int64_t n = y.shape.back(), rows = rowCount(y);
  const float *yp = y.f32(), *gp = dy.f32();
  float *out = dx.f32();
  parallelChunks(rows, n * 4, c.env.threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float *yr = yp + r * n, *gr = gp + r * n;
      float *o = out + r * n;
      float dot = 0.f;
      for (int64_t k = 0; k < n; ++k)
        dot += yr[k] * gr[k];
      for (int64_t k = 0; k < n; ++k)
        o[k] = yr[k] * (gr[k] - dot);
    }
  });
  return absl::OkStatus();
}

} // namespace galaxy::rt::cpu
