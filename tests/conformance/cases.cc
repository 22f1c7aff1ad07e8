// One conformance case per backend-run kernel: inputs, the kernel on the
// backend under test, and a naive double-precision reference written here
// (never the backends' code). Gradient kernels are checked against central
// finite differences of their forward op's reference. Small shapes with odd
// sizes, so that blocking and tails in the backends are exercised.
#include <cmath>
#include <limits>
#include <numeric>

#include "absl/strings/match.h"
#include "tests/conformance/conformance.h"
#include "gtest/gtest.h"

namespace galaxy::rt::conformance {
namespace {

using testing::expectClose;
using Vec = std::vector<double>;
using Shape = std::vector<int64_t>;

constexpr double kRtol = 1e-4, kAtol = 1e-5;

Vec toD(const Buf &b) { return {b.f.begin(), b.f.end()}; }
int64_t numel(const Shape &s) {
  return std::accumulate(s.begin(), s.end(), int64_t{1}, std::multiplies<>());
}
void close(const Buf &got, const Vec &want, const std::string &what,
           double rtol = kRtol, double atol = kAtol) {
  expectClose(got.f, want, rtol, atol, harness().name + ": " + what);
}
Buf fromD(const Shape &shape, const Vec &v) {
  return Buf::values(shape, std::vector<float>(v.begin(), v.end()));
}

// d(Σ dy·f(x))/dx by central differences, in double.
Vec fdGrad(const std::function<Vec(const Vec &)> &f, Vec x, const Vec &dy,
           double h = 1e-5) {
  Vec g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double x0 = x[i];
    x[i] = x0 + h;
    Vec up = f(x);
    x[i] = x0 - h;
    Vec down = f(x);
    x[i] = x0;
    double s = 0;
    for (size_t j = 0; j < dy.size(); ++j)
      s += dy[j] * (up[j] - down[j]);
    g[i] = s / (2 * h);
  }
  return g;
}

// --- references of unary maps ---------------------------------------------
double gelu(double x, bool approx) {
  if (approx)
    return 0.5 * x *
           (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
  return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
}
double relu(double x) { return x > 0 ? x : 0; }
double silu(double x) { return x / (1 + std::exp(-x)); }

Vec mapD(const Vec &x, const std::function<double(double)> &f) {
  Vec y(x.size());
  for (size_t i = 0; i < x.size(); ++i)
    y[i] = f(x[i]);
  return y;
}

// A unary map and its gradient kernel: forward against the reference,
// gradient against finite differences of it. `gradTakesOutput`: the grad
// kernel reads y (tanh) rather than x.
void unaryCase(
    CaseContext &c, const std::string &kernel, bool grad,
    const std::function<double(double)> &f,
    const std::function<Op(Op)> &attrs = [](Op o) { return o; },
    bool gradTakesOutput = false) {
  const Shape shape = {3, 37};
  Buf x = c.rnd(shape, -3.f, 3.f);
  for (float &v : x.f) // keep finite differences off relu's kink
    if (std::fabs(v) < 0.05f)
      v += 0.1f;
  const Vec xd = toD(x);
  if (!grad) {
    std::vector<Buf> in = {x}, out = {Buf::zeros(shape)};
    if (c.exec(attrs(Op(kernel)), in, out))
      close(out[0], mapD(xd, f), kernel);
    return;
  }
  Buf dy = c.rnd(shape);
  Vec want = fdGrad([&](const Vec &v) { return mapD(v, f); }, xd, toD(dy));
  Buf first = gradTakesOutput ? fromD(shape, mapD(xd, f)) : x;
  std::vector<Buf> in = {first, dy}, out = {Buf::zeros(shape)};
  if (c.exec(attrs(Op(kernel + "_grad")), in, out))
    close(out[0], want, kernel + "_grad (finite differences)", 1e-3, 1e-4);
}

// --- dense algebra references ------------------------------------------------
// y[M,N] = alpha·op(a)·op(b) with a, b row-major.
Vec matmulD(const Vec &a, const Vec &b, int64_t m, int64_t n, int64_t k,
            bool ta, bool tb, double alpha = 1) {
  Vec y(m * n, 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t p = 0; p < k; ++p)
        s += (ta ? a[p * m + i] : a[i * k + p]) *
             (tb ? b[j * k + p] : b[p * n + j]);
      y[i * n + j] = alpha * s;
    }
  return y;
}

// linear: x[R,K], w [N,K] (transpose_w) or [K,N], bias [N] or empty.
Vec linearD(const Vec &x, const Vec &w, const Vec &bias, int64_t r, int64_t k,
            int64_t n, bool tw) {
  Vec y = matmulD(x, w, r, n, k, false, tw);
  if (!bias.empty())
    for (int64_t i = 0; i < r; ++i)
      for (int64_t j = 0; j < n; ++j)
        y[i * n + j] += bias[j];
  return y;
}

Vec layerNormD(const Vec &x, const Vec &g, const Vec &b, int64_t h,
               double eps) {
  Vec y(x.size());
  for (size_t r = 0; r < x.size() / h; ++r) {
    double mean = 0, var = 0;
    for (int64_t j = 0; j < h; ++j)
      mean += x[r * h + j];
    mean /= h;
    for (int64_t j = 0; j < h; ++j)
      var += (x[r * h + j] - mean) * (x[r * h + j] - mean);
    var /= h;
    for (int64_t j = 0; j < h; ++j)
      y[r * h + j] = (x[r * h + j] - mean) / std::sqrt(var + eps) * g[j] + b[j];
  }
  return y;
}

// Hugging Face's LlamaRMSNorm: w·(x / sqrt(mean(x²) + eps)).
Vec rmsNormD(const Vec &x, const Vec &w, int64_t h, double eps) {
  Vec y(x.size());
  for (size_t r = 0; r < x.size() / h; ++r) {
    double ms = 0;
    for (int64_t j = 0; j < h; ++j)
      ms += x[r * h + j] * x[r * h + j];
    ms /= h;
    for (int64_t j = 0; j < h; ++j)
      y[r * h + j] = w[j] * (x[r * h + j] / std::sqrt(ms + eps));
  }
  return y;
}

Vec softmaxRowsD(const Vec &x, int64_t n) {
  Vec y(x.size());
  for (size_t r = 0; r < x.size() / n; ++r) {
    double m = -std::numeric_limits<double>::infinity(), s = 0;
    for (int64_t j = 0; j < n; ++j)
      m = std::max(m, x[r * n + j]);
    for (int64_t j = 0; j < n; ++j)
      s += std::exp(x[r * n + j] - m);
    for (int64_t j = 0; j < n; ++j)
      y[r * n + j] = std::exp(x[r * n + j] - m) / s;
  }
  return y;
}

// masked_softmax on [B,n,Sq,Sk]: mask [B,Sk] of 0/1 (empty: none).
Vec maskedSoftmaxD(const Vec &x, const Vec &mask, const Shape &s, bool causal,
                   int64_t qOffset) {
  const int64_t b = s[0], heads = s[1], sq = s[2], sk = s[3];
  Vec z = x;
  for (int64_t i = 0; i < b; ++i)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t q = 0; q < sq; ++q)
        for (int64_t k = 0; k < sk; ++k) {
          double &v = z[((i * heads + h) * sq + q) * sk + k];
          if (!mask.empty())
            v += (1 - mask[i * sk + k]) * -10000.0;
          if (causal && k > q + qOffset)
            v = -std::numeric_limits<double>::infinity();
        }
  return softmaxRowsD(z, sk);
}

// Σ_r (lse(logits[r]) − logits[r, label]) / denom.
double crossEntropyD(const Vec &logits, const std::vector<int32_t> &labels,
                     int64_t n, double denom) {
  double loss = 0;
  for (size_t r = 0; r < labels.size(); ++r) {
    double m = -std::numeric_limits<double>::infinity(), s = 0;
    for (int64_t j = 0; j < n; ++j)
      m = std::max(m, logits[r * n + j]);
    for (int64_t j = 0; j < n; ++j)
      s += std::exp(logits[r * n + j] - m);
    loss += m + std::log(s) - logits[r * n + labels[r]];
  }
  return loss / denom;
}

// embedding with vocab_offset: rows outside the shard are zero.
Vec embeddingD(const Vec &table, const std::vector<int32_t> &ids, int64_t v,
               int64_t h, int64_t vocabOffset) {
  Vec y(ids.size() * h, 0.0);
  for (size_t r = 0; r < ids.size(); ++r) {
    const int64_t row = ids[r] - vocabOffset;
    if (row >= 0 && row < v)
      for (int64_t j = 0; j < h; ++j)
        y[r * h + j] = table[row * h + j];
  }
  return y;
}

// --- the cases ---------------------------------------------------------------
void fillCase(CaseContext &c) {
  std::vector<Buf> in, out = {Buf::zeros({3, 5})};
  if (c.exec(Op("fill").f("value", 2.5), in, out))
    close(out[0], Vec(15, 2.5), "fill value 2.5");
}

void iotaCase(CaseContext &c) {
  for (int64_t dim : {0, 1, 2}) {
    std::vector<Buf> in, out = {Buf::ints({2, 3, 4}, {})};
    if (!c.exec(Op("iota").i("dim", dim).i("offset", 5), in, out))
      continue;
    for (int64_t i = 0; i < 24; ++i) {
      const int64_t idx[3] = {i / 12, (i / 4) % 3, i % 4};
      EXPECT_EQ(out[0].i[i], idx[dim] + 5) << "iota dim " << dim << " at " << i;
    }
  }
}

void binaryCase(CaseContext &c, const std::string &kernel,
                const std::function<double(double, double)> &f) {
  Buf a = c.rnd({5, 7}), b = c.rnd({5, 7});
  std::vector<Buf> in = {a, b}, out = {Buf::zeros({5, 7})};
  if (!c.exec(Op(kernel), in, out))
    return;
  Vec want(35);
  for (int i = 0; i < 35; ++i)
    want[i] = f(a.f[i], b.f[i]);
  close(out[0], want, kernel);
}

void scaleCase(CaseContext &c) {
  Buf x = c.rnd({4, 9});
  std::vector<Buf> in = {x}, out = {Buf::zeros({4, 9})};
  if (c.exec(Op("scale").f("alpha", -1.75), in, out))
    close(out[0], mapD(toD(x), [](double v) { return -1.75 * v; }), "scale");
}

void linearCase(CaseContext &c) {
  const int64_t r0 = 2, r1 = 3, k = 11, n = 6;
  for (bool tw : {true, false})
    for (bool bias : {true, false}) {
      Buf x = c.rnd({r0, r1, k});
      Buf w = tw ? c.rnd({n, k}) : c.rnd({k, n});
      Buf b = c.rnd({n});
      std::vector<Buf> in = {x, w}, out = {Buf::zeros({r0, r1, n})};
      if (bias)
        in.push_back(b);
      if (!c.exec(Op("linear").i("transpose_w", tw), in, out))
        continue;
      close(out[0],
            linearD(toD(x), toD(w), bias ? toD(b) : Vec{}, r0 * r1, k, n, tw),
            "linear transpose_w=" + std::to_string(tw) +
                " bias=" + std::to_string(bias));
    }
}

void linearWeightGradCase(CaseContext &c) {
  const int64_t r = 7, k = 5, n = 4;
  Buf x = c.rnd({r, k}), dy = c.rnd({r, n});
  // dW of Σ dy·linear(x, w) by finite differences of the forward reference.
  Vec want = fdGrad(
      [&](const Vec &w) { return linearD(toD(x), w, {}, r, k, n, true); },
      toD(c.rnd({n, k})), toD(dy));
  std::vector<Buf> in = {dy, x}, out = {Buf::zeros({n, k})};
  if (c.exec(Op("linear_weight_grad"), in, out))
    close(out[0], want, "linear_weight_grad (finite differences)", 1e-3, 1e-4);
  // Fused update: dw = alpha·Σ dyᵀx + beta·dw.
  Buf prev = c.rnd({n, k});
  std::vector<Buf> in2 = {dy, x}, out2 = {prev};
  if (!c.exec(Op("linear_weight_grad").f("alpha", -0.5).f("beta", 0.9), in2,
              out2))
    return;
  Vec fused(want.size());
  for (size_t i = 0; i < want.size(); ++i)
    fused[i] = -0.5 * want[i] + 0.9 * prev.f[i];
  close(out2[0], fused, "linear_weight_grad alpha=-0.5 beta=0.9", 1e-3, 1e-4);
}

void biasGradCase(CaseContext &c) {
  const int64_t r = 9, k = 3, n = 5;
  Buf x = c.rnd({r, k}), w = c.rnd({n, k}), dy = c.rnd({3, 3, n});
  Vec want = fdGrad(
      [&](const Vec &b) { return linearD(toD(x), toD(w), b, r, k, n, true); },
      toD(c.rnd({n})), toD(dy));
  std::vector<Buf> in = {dy}, out = {Buf::zeros({n})};
  if (c.exec(Op("bias_grad"), in, out))
    close(out[0], want, "bias_grad (finite differences)", 1e-3, 1e-4);
}

void matmulCase(CaseContext &c) {
  const int64_t batch = 3, m = 4, k = 6, n = 5;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      Buf a = ta ? c.rnd({batch, k, m}) : c.rnd({batch, m, k});
      Buf b = tb ? c.rnd({batch, n, k}) : c.rnd({batch, k, n});
      std::vector<Buf> in = {a, b}, out = {Buf::zeros({batch, m, n})};
      if (!c.exec(Op("matmul")
                      .i("transpose_a", ta)
                      .i("transpose_b", tb)
                      .f("alpha", 0.25),
                  in, out))
        continue;
      Vec want;
      const Vec ad = toD(a), bd = toD(b);
      for (int64_t i = 0; i < batch; ++i) {
        Vec y =
            matmulD(Vec(ad.begin() + i * m * k, ad.begin() + (i + 1) * m * k),
                    Vec(bd.begin() + i * k * n, bd.begin() + (i + 1) * k * n),
                    m, n, k, ta, tb, 0.25);
        want.insert(want.end(), y.begin(), y.end());
      }
      close(out[0], want,
            "matmul ta=" + std::to_string(ta) + " tb=" + std::to_string(tb));
    }
}

void headsCase(CaseContext &c, bool split) {
  const int64_t b = 2, s = 3, heads = 4, d = 5;
  const Shape merged = {b, s, heads * d}, separate = {b, heads, s, d};
  Buf x = c.rnd(split ? merged : separate);
  std::vector<Buf> in = {x}, out = {Buf::zeros(split ? separate : merged)};
  if (!c.exec(Op(split ? "split_heads" : "merge_heads"), in, out))
    return;
  Vec want(x.numel());
  for (int64_t i = 0; i < b; ++i)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t t = 0; t < s; ++t)
        for (int64_t e = 0; e < d; ++e) {
          const int64_t m = (i * s + t) * heads * d + h * d + e,
                        p = ((i * heads + h) * s + t) * d + e;
          if (split)
            want[p] = x.f[m];
          else
            want[m] = x.f[p];
        }
  close(out[0], want, split ? "split_heads" : "merge_heads", 0, 0);
}

// repeat_kv on local shards: y[b, h] = x[b, (h + headOffset) / groups] for
// n output heads of `block` (S·d) values each.
Vec repeatKvD(const Vec &x, int64_t b, int64_t nkv, int64_t n, int64_t block,
              int64_t groups, int64_t headOffset) {
  Vec y(b * n * block);
  for (int64_t i = 0; i < b; ++i)
    for (int64_t h = 0; h < n; ++h) {
      const int64_t kv = (h + headOffset) / groups;
      EXPECT_LT(kv, nkv);
      for (int64_t j = 0; j < block; ++j)
        y[(i * n + h) * block + j] = x[(i * nkv + kv) * block + j];
    }
  return y;
}

// (nkv, n, groups, head_offset): whole tensors, GQA and MQA, and a rank's
// slice of the query heads reading a replicated KV tensor (heads 1..3 of 4).
struct RepeatKvVariant {
  int64_t nkv, n, groups, headOffset;
};
constexpr RepeatKvVariant kRepeatKvVariants[] = {
    {3, 6, 2, 0}, {1, 4, 4, 0}, {3, 3, 1, 0}, {2, 3, 2, 1}};

void repeatKvCase(CaseContext &c, bool grad) {
  const int64_t b = 2, s = 5, d = 3;
  for (const RepeatKvVariant &v : kRepeatKvVariants) {
    const std::string what =
        std::string(grad ? "repeat_kv_grad" : "repeat_kv") +
        " nkv=" + std::to_string(v.nkv) + " n=" + std::to_string(v.n) +
        " groups=" + std::to_string(v.groups) +
        " head_offset=" + std::to_string(v.headOffset);
    const Shape few = {b, v.nkv, s, d}, many = {b, v.n, s, d};
    Op op = Op(grad ? "repeat_kv_grad" : "repeat_kv")
                .i("groups", v.groups)
                .i("head_offset", v.headOffset);
    auto f = [&](const Vec &x) {
      return repeatKvD(x, b, v.nkv, v.n, s * d, v.groups, v.headOffset);
    };
    if (!grad) {
      Buf x = c.rnd(few);
      std::vector<Buf> in = {x}, out = {Buf::zeros(many)};
      if (c.exec(op, in, out))
        close(out[0], f(toD(x)), what, 0, 0);
      continue;
    }
    // KV heads no query head of the slice reads get 0 (a partial sum).
    Buf dy = c.rnd(many);
    Vec want = fdGrad(f, Vec(numel(few), 0.0), toD(dy));
    std::vector<Buf> in = {dy}, out = {c.rnd(few)};
    if (c.exec(op, in, out))
      close(out[0], want, what + " (finite differences)", 1e-3, 1e-4);
  }
}

// Hugging Face's rotate_half RoPE on [B,n,S,d] at positions s + offset, in
// double: a_i = p·theta^(−2i/d), negated for the inverse rotation.
Vec ropeD(const Vec &x, const Shape &shape, double theta, int64_t offset,
          bool inverse) {
  const int64_t s = shape[2], d = shape[3], half = d / 2;
  Vec y(x.size());
  for (size_t r = 0; r < x.size() / d; ++r) {
    const double p = double(int64_t(r) % s + offset);
    for (int64_t i = 0; i < half; ++i) {
      const double a = (inverse ? -p : p) * std::pow(theta, -2.0 * i / d);
      const double x1 = x[r * d + i], x2 = x[r * d + i + half];
      y[r * d + i] = x1 * std::cos(a) - x2 * std::sin(a);
      y[r * d + i + half] = x2 * std::cos(a) + x1 * std::sin(a);
    }
  }
  return y;
}

// Hugging Face's fp32 angles (LlamaRotaryEmbedding in torch 1.13 fp32,
// printed by tests/oracle/rope_hf_values.py) at position 4095, head_dim 128,
// theta 10000: q = [1]*64 + [0]*64 comes out as [cos a_0..a_63, sin a_0..a_63].
// Angles taken in double would differ here by up to 2.3e-4; the fp32 recipe
// matches to an ulp.
const Vec kHfRope4095 = {
    -0.0659759939, -0.742445707,  -0.0900463611, 0.139946938,     -0.99999994,
    -0.711437345,  0.515854537,   0.999949574,   0.815928221,     -0.986312568,
    -0.947527826,  0.516264319,   0.799633086,   -0.652279198,    0.847204447,
    -0.0734791011, 0.459863335,   -0.925817311,  0.70070225,      -0.441441208,
    -0.587768018,  -0.0778466538, -0.994711637,  0.308058918,     -0.771254778,
    0.5742957,     -0.96060586,   -0.744406104,  -0.845171511,    0.974089444,
    -0.361771375,  -0.986511409,  -0.994033098,  -0.618691981,    0.759821057,
    0.111129194,   -0.50903827,   0.460920185,   -0.0102886492,   -0.728900313,
    0.927488983,   0.216526106,   -0.959380746,  -0.527116477,    0.541253567,
    0.999739766,   0.68045336,    0.0164425243,  -0.578907907,    -0.919286966,
    -0.997496426,  -0.885895789,  -0.668352127,  -0.410803884,    -0.155418262,
    0.0753368512,  0.272358716,   0.434437335,   0.564410329,     0.666778624,
    0.746369958,   0.807673931,   0.854568422,   0.890258849,     -0.997821212,
    0.669906199,   -0.995937586,  0.990158975,   -0.000426715531, 0.70274955,
    -0.856676221,  -0.0100414166, 0.578153193,   0.164886326,     -0.31967333,
    -0.856429338,  -0.600488842,  0.757978797,   -0.531266987,    0.997296751,
    0.8879897,     0.377971381,   -0.713453829,  0.89729017,      -0.80902952,
    -0.996965349,  0.102706872,   -0.951367259,  -0.636526585,    -0.818647921,
    0.277914435,   0.667727172,   -0.534495175,  0.226163045,     -0.932266831,
    -0.163692653,  -0.109078795,  -0.785633683,  -0.650132298,    0.993805945,
    -0.86074388,   0.887441576,   -0.999947071,  0.684619844,     0.373850524,
    -0.976276815,  -0.282114506,  0.849793017,   0.840859413,     0.0228119921,
    -0.732791364,  -0.999864817,  -0.815392911,  -0.393587947,    0.0707168207,
    0.463884324,   0.743845046,   0.911723733,   0.987848759,     0.99715811,
    0.962195814,   0.900702059,   0.825494349,   0.745255828,     0.665531278,
    0.589629352,   0.519338846,   0.455454975,
};

void ropeHfCase(CaseContext &c) {
  const Shape shape = {1, 1, 1, 128};
  std::vector<float> q(128, 0.f);
  std::fill(q.begin(), q.begin() + 64, 1.f);
  std::vector<Buf> in = {Buf::values(shape, q)}, out = {Buf::zeros(shape)};
  if (c.exec(Op("rope").f("theta", 1e4).i("offset", 4095), in, out))
    close(out[0], kHfRope4095, "rope at position 4095 vs Hugging Face (fp32)",
          0, 2e-7);
}

void ropeCase(CaseContext &c) {
  const Shape shape = {2, 3, 5, 8};
  struct Variant {
    double theta; // LLaMA 1/2 and LLaMA 3 rope_theta
    int64_t offset;
    bool inverse;
  };
  for (Variant v : {Variant{1e4, 0, false}, Variant{1e4, 37, false},
                    Variant{5e5, 11, false}, Variant{1e4, 37, true}}) {
    const std::string what = "rope theta=" + std::to_string(v.theta) +
                             " offset=" + std::to_string(v.offset) +
                             " inverse=" + std::to_string(v.inverse);
    Op op = Op("rope")
                .f("theta", v.theta)
                .i("offset", v.offset)
                .i("inverse", v.inverse);
    Buf x = c.rnd(shape, -2.f, 2.f);
    std::vector<Buf> in = {x}, out = {Buf::zeros(shape)};
    if (c.exec(op, in, out))
      close(out[0], ropeD(toD(x), shape, v.theta, v.offset, v.inverse), what);
    // The gradient of rope is rope with the opposite `inverse` (autodiff's
    // rule): against finite differences of this variant's reference.
    Buf dy = c.rnd(shape);
    Vec want = fdGrad(
        [&](const Vec &u) {
          return ropeD(u, shape, v.theta, v.offset, v.inverse);
        },
        toD(x), toD(dy));
    std::vector<Buf> gin = {dy}, gout = {Buf::zeros(shape)};
    if (c.exec(Op("rope")
                   .f("theta", v.theta)
                   .i("offset", v.offset)
                   .i("inverse", !v.inverse),
               gin, gout))
      close(gout[0], want, what + " gradient (finite differences)", 1e-3, 1e-4);
  }
  ropeHfCase(c);
}

void maskedSoftmaxCase(CaseContext &c) {
  const Shape s = {2, 3, 4, 6};
  Buf mask = Buf::values({2, 6}, {1, 1, 1, 0, 1, 0, 1, 1, 1, 1, 1, 1});
  struct Variant {
    bool withMask, causal;
    int64_t qOffset;
  };
  for (Variant v : {Variant{true, false, 0}, Variant{false, false, 0},
                    Variant{false, true, 0}, Variant{true, true, 2}}) {
    Buf x = c.rnd(s, -4.f, 4.f);
    std::vector<Buf> in = {x}, out = {Buf::zeros(s)};
    if (v.withMask)
      in.push_back(mask);
    Op op = Op("masked_softmax");
    if (v.causal)
      op.i("causal", 1).i("q_offset", v.qOffset);
    if (!c.exec(op, in, out))
      continue;
    close(out[0],
          maskedSoftmaxD(toD(x), v.withMask ? toD(mask) : Vec{}, s, v.causal,
                         v.qOffset),
          "masked_softmax mask=" + std::to_string(v.withMask) +
              " causal=" + std::to_string(v.causal) +
              " q_offset=" + std::to_string(v.qOffset));
  }
}

void softmaxGradCase(CaseContext &c) {
  const Shape s = {3, 2, 9};
  Buf x = c.rnd(s, -2.f, 2.f), dy = c.rnd(s);
  const Vec y = softmaxRowsD(toD(x), 9);
  Vec want =
      fdGrad([](const Vec &v) { return softmaxRowsD(v, 9); }, toD(x), toD(dy));
  std::vector<Buf> in = {fromD(s, y), dy}, out = {Buf::zeros(s)};
  if (c.exec(Op("softmax_grad"), in, out))
    close(out[0], want, "softmax_grad (finite differences)", 1e-3, 1e-4);
}

void layerNormCase(CaseContext &c) {
  const int64_t h = 13;
  Buf x = c.rnd({4, h}, -2.f, 2.f), g = c.rnd({h}), b = c.rnd({h});
  std::vector<Buf> in = {x, g, b}, out = {Buf::zeros({4, h})};
  if (c.exec(Op("layer_norm").f("eps", 1e-5), in, out))
    close(out[0], layerNormD(toD(x), toD(g), toD(b), h, 1e-5), "layer_norm");
}

void layerNormGradCase(CaseContext &c) {
  const int64_t h = 11, rows = 5;
  const double eps = 1e-5;
  Buf x = c.rnd({rows, h}, -2.f, 2.f), g = c.rnd({h}), b = c.rnd({h}),
      dy = c.rnd({rows, h});
  const Vec xd = toD(x), gd = toD(g), bd = toD(b), dyd = toD(dy);
  const Vec dx = fdGrad(
      [&](const Vec &v) { return layerNormD(v, gd, bd, h, eps); }, xd, dyd);
  const Vec dg = fdGrad(
      [&](const Vec &v) { return layerNormD(xd, v, bd, h, eps); }, gd, dyd);
  const Vec db = fdGrad(
      [&](const Vec &v) { return layerNormD(xd, gd, v, h, eps); }, bd, dyd);
  for (bool params : {true, false}) {
    std::vector<Buf> in = {x, g, dy}, out = {Buf::zeros({rows, h}),
                                             Buf::zeros({h}), Buf::zeros({h})};
    if (!c.exec(Op("layer_norm_grad").f("eps", eps).i("param_grads", params),
                in, out))
      continue;
    const std::string what =
        params ? "layer_norm_grad" : "layer_norm_grad param_grads=0";
    close(out[0], dx, what + " dx (finite differences)", 1e-3, 1e-4);
    if (params) {
      close(out[1], dg, what + " dgamma (finite differences)", 1e-3, 1e-4);
      close(out[2], db, what + " dbeta (finite differences)", 1e-3, 1e-4);
    }
  }
}

void rmsNormCase(CaseContext &c) {
  const int64_t h = 13;
  const double eps = 1e-6; // LLaMA's rms_norm_eps
  Buf x = c.rnd({2, 3, h}, -2.f, 2.f), w = c.rnd({h});
  std::vector<Buf> in = {x, w}, out = {Buf::zeros({2, 3, h})};
  if (c.exec(Op("rms_norm").f("eps", eps), in, out))
    close(out[0], rmsNormD(toD(x), toD(w), h, eps), "rms_norm");
}

void rmsNormGradCase(CaseContext &c) {
  const int64_t h = 11, rows = 5;
  const double eps = 1e-5;
  Buf x = c.rnd({rows, h}, -2.f, 2.f), w = c.rnd({h}), dy = c.rnd({rows, h});
  const Vec xd = toD(x), wd = toD(w), dyd = toD(dy);
  const Vec dx =
      fdGrad([&](const Vec &v) { return rmsNormD(v, wd, h, eps); }, xd, dyd);
  const Vec dw =
      fdGrad([&](const Vec &v) { return rmsNormD(xd, v, h, eps); }, wd, dyd);
  for (bool params : {true, false}) {
    std::vector<Buf> in = {x, w, dy},
                     out = {Buf::zeros({rows, h}), Buf::zeros({h})};
    if (!c.exec(Op("rms_norm_grad").f("eps", eps).i("param_grads", params), in,
                out))
      continue;
    const std::string what =
        params ? "rms_norm_grad" : "rms_norm_grad param_grads=0";
    close(out[0], dx, what + " dx (finite differences)", 1e-3, 1e-4);
    if (params)
      close(out[1], dw, what + " dweight (finite differences)", 1e-3, 1e-4);
  }
}

void dropoutCase(CaseContext &c) {
  const Shape s = {8, 16, 32};
  const double p = 0.25;
  Buf x = c.rnd(s, 0.5f, 1.5f); // never 0, so a dropped element shows
  const KernelContext ctx{.seed = 99, .step = 4};
  Op op = Op("dropout").f("p", p).i("op_id", 17);
  std::vector<Buf> in = {x}, out = {Buf::zeros(s)};
  if (!c.exec(op, in, out, ctx))
    return;
  // Every element is dropped or scaled by 1/(1−p); the dropped fraction is p
  // within five standard deviations.
  int64_t dropped = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (out[0].f[i] == 0.f) {
      ++dropped;
      continue;
    }
    EXPECT_NEAR(out[0].f[i], x.f[i] / (1 - p), 1e-6 * x.f[i])
        << harness().name << ": dropout element " << i;
  }
  const double n = x.numel(), sd = std::sqrt(n * p * (1 - p));
  EXPECT_NEAR(dropped, n * p, 5 * sd) << harness().name << ": dropped count";
  // Addressed: a block computed with global_shape and offset draws the same
  // bits as those elements of the whole tensor.
  const Shape block = {3, 16, 32};
  Buf xb = Buf::values(block, std::vector<float>(x.f.begin() + 2 * 16 * 32,
                                                 x.f.begin() + 5 * 16 * 32));
  std::vector<Buf> inb = {xb}, outb = {Buf::zeros(block)};
  Op blockOp = Op("dropout")
                   .f("p", p)
                   .i("op_id", 17)
                   .ints("global_shape", s)
                   .ints("offset", {2, 0, 0});
  if (c.exec(blockOp, inb, outb, ctx))
    close(outb[0],
          Vec(out[0].f.begin() + 2 * 16 * 32, out[0].f.begin() + 5 * 16 * 32),
          "dropout block at offset [2,0,0] vs the whole tensor", 0, 0);
  // Evaluation: the identity.
  std::vector<Buf> ine = {x}, oute = {Buf::zeros(s)};
  KernelContext eval = ctx;
  eval.training = false;
  if (c.exec(op, ine, oute, eval))
    close(oute[0], toD(x), "dropout with training=false", 0, 0);
}

// galaxy-fuse's kernels: each against the pair it replaces on the same
// backend (the pair's kernels have cases of their own). Same values: the
// mask, quotients and sums are the pair's; column sums within bias_grad's
// rounding (a backend may add its chunks in another order).
void expectPairOutputs(CaseContext &c, const Op &fused, std::vector<Buf> in,
                       std::vector<Buf> out, const std::vector<Vec> &pair,
                       const KernelContext &ctx) {
  if (!c.exec(fused, in, out, ctx))
    return;
  for (size_t i = 0; i < pair.size(); ++i)
    close(out[i], pair[i],
          fused.instr().kernel() + " output " + std::to_string(i) +
              " vs the pair it fuses",
          i == 0 ? 0 : 1e-5, i == 0 ? 0 : 1e-6);
}

void dropoutAddCase(CaseContext &c) {
  const Shape s = {4, 6, 40};
  const KernelContext ctx{.seed = 99, .step = 4};
  Buf x = c.rnd(s, 0.5f, 1.5f), r = c.rnd(s);
  std::vector<Buf> in = {x}, d = {Buf::zeros(s)};
  if (!c.exec(Op("dropout").f("p", 0.25).i("op_id", 17), in, d, ctx))
    return;
  std::vector<Buf> addIn = {d[0], r}, sum = {Buf::zeros(s)};
  if (!c.exec(Op("add"), addIn, sum, ctx))
    return;
  expectPairOutputs(c, Op("dropout_add").f("p", 0.25).i("op_id", 17), {x, r},
                    {Buf::zeros(s)}, {toD(sum[0])}, ctx);
}

void dropoutBiasGradCase(CaseContext &c) {
  const Shape s = {4, 6, 40};
  const KernelContext ctx{.seed = 5, .step = 2};
  Buf dy = c.rnd(s);
  std::vector<Buf> in = {dy}, d = {Buf::zeros(s)};
  if (!c.exec(Op("dropout").f("p", 0.1).i("op_id", 3), in, d, ctx))
    return;
  std::vector<Buf> db = {Buf::zeros({40})};
  if (!c.exec(Op("bias_grad"), d, db, ctx))
    return;
  expectPairOutputs(c, Op("dropout_bias_grad").f("p", 0.1).i("op_id", 3), {dy},
                    {Buf::zeros(s), Buf::zeros({40})}, {toD(d[0]), toD(db[0])},
                    ctx);
}

void geluGradBiasGradCase(CaseContext &c) {
  const Shape s = {5, 7, 24};
  for (const char *a : {"none", "tanh"}) {
    Buf x = c.rnd(s, -3.f, 3.f), dy = c.rnd(s);
    std::vector<Buf> in = {x, dy}, dx = {Buf::zeros(s)};
    if (!c.exec(Op("gelu_grad").s("approximate", a), in, dx))
      return;
    std::vector<Buf> db = {Buf::zeros({24})};
    if (!c.exec(Op("bias_grad"), dx, db))
      return;
    expectPairOutputs(c, Op("gelu_grad_bias_grad").s("approximate", a), {x, dy},
                      {Buf::zeros(s), Buf::zeros({24})},
                      {toD(dx[0]), toD(db[0])}, {});
  }
}

void mergeHeadsBiasGradCase(CaseContext &c) {
  Buf dh = c.rnd({2, 3, 5, 4});
  std::vector<Buf> in = {dh}, m = {Buf::zeros({2, 5, 12})};
  if (!c.exec(Op("merge_heads"), in, m))
    return;
  std::vector<Buf> db = {Buf::zeros({12})};
  if (!c.exec(Op("bias_grad"), m, db))
    return;
  expectPairOutputs(c, Op("merge_heads_bias_grad"), {dh},
                    {Buf::zeros({2, 5, 12}), Buf::zeros({12})},
                    {toD(m[0]), toD(db[0])}, {});
}

void embeddingCase(CaseContext &c) {
  const int64_t v = 7, h = 5;
  Buf table = c.rnd({v, h});
  for (int64_t vocabOffset : {0, 3}) {
    Buf ids = c.ids({2, 6}, 0, v + vocabOffset + 2); // some outside the shard
    std::vector<Buf> in = {table, ids}, out = {Buf::zeros({2, 6, h})};
    if (c.exec(
            Op("embedding").i("vocab_offset", vocabOffset).i("padding_idx", 1),
            in, out))
      close(out[0], embeddingD(toD(table), ids.i, v, h, vocabOffset),
            "embedding vocab_offset=" + std::to_string(vocabOffset), 0, 0);
  }
}

void embeddingGradCase(CaseContext &c) {
  const int64_t v = 6, h = 4;
  Buf ids = c.ids({3, 5}, 0, v + 4), dy = c.rnd({3, 5, h});
  ids.i[0] = ids.i[1] = 4; // a repeated id accumulates
  for (int64_t vocabOffset : {0, 2})
    for (int64_t padding : {-1, 4}) {
      Vec want = fdGrad(
          [&](const Vec &t) { return embeddingD(t, ids.i, v, h, vocabOffset); },
          Vec(v * h, 0.0), toD(dy));
      const int64_t padRow = padding - vocabOffset;
      if (padding >= 0 && padRow >= 0 && padRow < v)
        for (int64_t j = 0; j < h; ++j)
          want[padRow * h + j] = 0;
      const std::string what =
          "embedding_grad vocab_offset=" + std::to_string(vocabOffset) +
          " padding_idx=" + std::to_string(padding);
      std::vector<Buf> in = {ids, dy}, out = {c.rnd({v, h})};
      if (c.exec(Op("embedding_grad")
                     .i("vocab_offset", vocabOffset)
                     .i("padding_idx", padding),
                 in, out))
        close(out[0], want, what + " (finite differences)", 1e-3, 1e-4);
      // Fused update: table = beta·table + alpha·grad.
      Buf prev = c.rnd({v, h});
      std::vector<Buf> in2 = {ids, dy}, out2 = {prev};
      if (!c.exec(Op("embedding_grad")
                      .i("vocab_offset", vocabOffset)
                      .i("padding_idx", padding)
                      .f("alpha", -0.1)
                      .f("beta", 1.0),
                  in2, out2))
        continue;
      Vec fused(want.size());
      for (size_t i = 0; i < want.size(); ++i)
        fused[i] = prev.f[i] - 0.1 * want[i];
      close(out2[0], fused, what + " alpha=-0.1 beta=1", 1e-3, 1e-4);
    }
}

// Row i's token at position pos[i].
Vec takeTokenD(const Vec &x, int64_t b, int64_t s, int64_t h,
               const std::vector<int32_t> &pos) {
  Vec y(b * h);
  for (int64_t i = 0; i < b; ++i)
    for (int64_t j = 0; j < h; ++j)
      y[i * h + j] = x[(i * s + pos[i]) * h + j];
  return y;
}

// A kernel call that must fail, naming the kernel and `why`.
void expectError(const Op &op, std::vector<Buf> in, std::vector<Buf> out,
                 const std::string &why) {
  absl::Status s = harness().run(op, in, out, {});
  EXPECT_FALSE(s.ok()) << harness().name << ": " << op.instr().kernel()
                       << " accepted " << why;
  EXPECT_TRUE(absl::StrContains(s.message(), "'" + op.instr().kernel() + "'"))
      << s;
  EXPECT_TRUE(absl::StrContains(s.message(), why)) << s;
}

// One position for every row (the index attribute) and per-row positions
// (the indices input [B], LLaMA's last non-padding token), whose range is
// checked: an index outside [0, S) is an error, never a read past the row.
void takeTokenCase(CaseContext &c, bool grad) {
  const int64_t b = 3, s = 5, h = 4;
  const std::string kernel = grad ? "take_token_grad" : "take_token";
  struct Variant {
    int64_t index;
    std::vector<int32_t> indices; // empty: none
  };
  for (const Variant &v : {Variant{0, {}}, Variant{3, {}},
                           Variant{0, {4, 0, 2}}, Variant{0, {1, 1, 4}}}) {
    std::vector<int32_t> pos = v.indices;
    std::string what = kernel;
    if (pos.empty()) {
      pos.assign(b, int32_t(v.index));
      what += " index=" + std::to_string(v.index);
    } else {
      what += " indices=" + std::to_string(pos[0]) + "," +
              std::to_string(pos[1]) + "," + std::to_string(pos[2]);
    }
    const Op op = Op(kernel).i("index", v.index);
    std::vector<Buf> extra;
    if (!v.indices.empty())
      extra.push_back(Buf::ints({b}, v.indices));
    if (!grad) {
      Buf x = c.rnd({b, s, h});
      std::vector<Buf> in = {x}, out = {Buf::zeros({b, h})};
      in.insert(in.end(), extra.begin(), extra.end());
      if (c.exec(op, in, out))
        close(out[0], takeTokenD(toD(x), b, s, h, pos), what, 0, 0);
      continue;
    }
    Buf dy = c.rnd({b, h});
    Vec want = fdGrad([&](const Vec &x) { return takeTokenD(x, b, s, h, pos); },
                      Vec(b * s * h, 0.0), toD(dy));
    std::vector<Buf> in = {dy}, out = {c.rnd({b, s, h})};
    in.insert(in.end(), extra.begin(), extra.end());
    if (c.exec(op, in, out))
      close(out[0], want, what + " (finite differences)", 1e-3, 1e-4);
  }
  for (const std::vector<int32_t> &bad :
       {std::vector<int32_t>{1, 5, 0}, std::vector<int32_t>{0, 2, -1}}) {
    const int64_t row = bad[1] == 5 ? 1 : 2;
    const std::string why = "indices[" + std::to_string(row) +
                            "]=" + std::to_string(bad[row]) + " outside [0,5)";
    if (grad)
      expectError(Op(kernel), {c.rnd({b, h}), Buf::ints({b}, bad)},
                  {Buf::zeros({b, s, h})}, why);
    else
      expectError(Op(kernel), {c.rnd({b, s, h}), Buf::ints({b}, bad)},
                  {Buf::zeros({b, h})}, why);
  }
  // Per-row indices with a nonzero index: refused, not one silently ignored.
  expectError(
      Op(kernel).i("index", 2),
      grad ? std::vector<Buf>{c.rnd({b, h}), Buf::ints({b}, {0, 1, 2})}
           : std::vector<Buf>{c.rnd({b, s, h}), Buf::ints({b}, {0, 1, 2})},
      {grad ? Buf::zeros({b, s, h}) : Buf::zeros({b, h})}, "index must be 0");
}

// Without count (BERT's batch mean), and with the optional count input: the
// global number of counted targets a causal LM's loss divides by, positive,
// or <= 0 (no target in the batch: a loss of 0 and a zero gradient). Some
// rows carry ignore_index.
void crossEntropyCase(CaseContext &c, bool grad) {
  const int64_t rows = 6, n = 9;
  const double denom = 4.0;
  Buf logits = c.rnd({rows, n}, -3.f, 3.f), labels = c.ids({rows}, 0, n);
  Buf ignoring = labels;
  ignoring.i[1] = ignoring.i[4] = -100;
  struct Variant {
    const Buf *labels;
    std::optional<float> count;
  };
  for (const Variant &v : {Variant{&labels, std::nullopt},
                           Variant{&ignoring, 3.5f}, Variant{&labels, 1.f},
                           Variant{&ignoring, 0.f}, Variant{&ignoring, -2.f}}) {
    const std::vector<int32_t> &y = v.labels->i;
    std::string what = grad ? "cross_entropy_grad" : "cross_entropy";
    if (v.count)
      what += " count=" + std::to_string(*v.count);
    if (v.labels == &ignoring)
      what += " (rows 1, 4 ignored)";
    const double count = v.count.value_or(1.f);
    // Σ over counted rows / (denom·count); 0 when count <= 0.
    auto loss = [&](const Vec &l) {
      if (count <= 0)
        return 0.0;
      std::vector<int32_t> kept;
      Vec keptLogits;
      for (int64_t r = 0; r < rows; ++r)
        if (y[r] != -100) {
          kept.push_back(y[r]);
          keptLogits.insert(keptLogits.end(), l.begin() + r * n,
                            l.begin() + (r + 1) * n);
        }
      return crossEntropyD(keptLogits, kept, n, denom * count);
    };
    std::vector<Buf> extra;
    if (v.count)
      extra.push_back(Buf::values({}, {*v.count}));
    const Op op = Op(grad ? "cross_entropy_grad" : "cross_entropy")
                      .f("denominator", denom);
    if (!grad) {
      std::vector<Buf> in = {logits, *v.labels},
                       out = {Buf::values({}, {123.f})};
      in.insert(in.end(), extra.begin(), extra.end());
      if (c.exec(op, in, out))
        close(out[0], {loss(toD(logits))}, what);
      continue;
    }
    const double dloss = 1.5;
    Vec want = fdGrad([&](const Vec &l) { return Vec{loss(l)}; }, toD(logits),
                      {dloss});
    std::vector<Buf> in = {logits, *v.labels, Buf::values({}, {float(dloss)})},
                     out = {c.rnd({rows, n})};
    in.insert(in.end(), extra.begin(), extra.end());
    if (c.exec(op, in, out))
      close(out[0], want, what + " (finite differences)", 1e-3, 1e-4);
  }
}

void sgdCase(CaseContext &c) {
  Buf param = c.rnd({5, 7}), grad = c.rnd({5, 7});
  const double lr = 0.1, wd = 0.01;
  Vec want(35);
  for (int i = 0; i < 35; ++i)
    want[i] = param.f[i] - lr * (grad.f[i] + wd * param.f[i]);
  std::vector<Buf> in = {param, grad}, out;
  if (c.exec(Op("sgd_update").f("lr", lr).f("weight_decay", wd), in, out))
    close(in[0], want, "sgd_update (param in place)");
}

void adamwCase(CaseContext &c) {
  const Shape s = {4, 9};
  Buf param = c.rnd(s), grad = c.rnd(s), m = c.rnd(s, -0.1f, 0.1f),
      v = c.rnd(s, 0.f, 0.01f);
  const double lr = 1e-2, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.05;
  const int64_t step = 3;
  Vec wantP(param.numel()), wantM(param.numel()), wantV(param.numel());
  for (int64_t i = 0; i < param.numel(); ++i) {
    double p = param.f[i] * (1 - lr * wd), g = grad.f[i];
    wantM[i] = b1 * m.f[i] + (1 - b1) * g;
    wantV[i] = b2 * v.f[i] + (1 - b2) * g * g;
    const double mh = wantM[i] / (1 - std::pow(b1, step)),
                 vh = wantV[i] / (1 - std::pow(b2, step));
    wantP[i] = p - lr * mh / (std::sqrt(vh) + eps);
  }
  std::vector<Buf> in = {param, grad, m, v}, out;
  KernelContext ctx;
  ctx.step = step;
  if (!c.exec(Op("adamw_update")
                  .f("lr", lr)
                  .f("beta1", b1)
                  .f("beta2", b2)
                  .f("eps", eps)
                  .f("weight_decay", wd),
              in, out, ctx))
    return;
  close(in[0], wantP, "adamw_update param");
  close(in[2], wantM, "adamw_update exp_avg");
  close(in[3], wantV, "adamw_update exp_avg_sq");
}

Op withApprox(Op o, const char *a) { return o.s("approximate", a); }

} // namespace

const std::map<std::string, CaseFn> &cases() {
  static const auto *table = new std::map<std::string, CaseFn>{
      {"fill", fillCase},
      {"iota", iotaCase},
      {"add",
       [](CaseContext &c) {
         binaryCase(c, "add", [](double a, double b) { return a + b; });
       }},
      {"mul",
       [](CaseContext &c) {
         binaryCase(c, "mul", [](double a, double b) { return a * b; });
       }},
      {"scale", scaleCase},
      {"linear", linearCase},
      {"linear_weight_grad", linearWeightGradCase},
      {"bias_grad", biasGradCase},
      {"matmul", matmulCase},
      {"split_heads", [](CaseContext &c) { headsCase(c, true); }},
      {"merge_heads", [](CaseContext &c) { headsCase(c, false); }},
      {"repeat_kv", [](CaseContext &c) { repeatKvCase(c, false); }},
      {"repeat_kv_grad", [](CaseContext &c) { repeatKvCase(c, true); }},
      {"rope", ropeCase},
      {"masked_softmax", maskedSoftmaxCase},
      {"softmax_grad", softmaxGradCase},
      {"layer_norm", layerNormCase},
      {"layer_norm_grad", layerNormGradCase},
      {"rms_norm", rmsNormCase},
      {"rms_norm_grad", rmsNormGradCase},
      {"gelu",
       [](CaseContext &c) {
         for (const char *a : {"none", "tanh"})
           unaryCase(
               c, "gelu", false,
               [a](double x) { return gelu(x, std::string(a) == "tanh"); },
               [a](Op o) { return withApprox(o, a); });
       }},
      {"gelu_grad",
       [](CaseContext &c) {
         for (const char *a : {"none", "tanh"})
           unaryCase(
               c, "gelu", true,
               [a](double x) { return gelu(x, std::string(a) == "tanh"); },
               [a](Op o) { return withApprox(o, a); });
       }},
      {"relu", [](CaseContext &c) { unaryCase(c, "relu", false, relu); }},
      {"relu_grad", [](CaseContext &c) { unaryCase(c, "relu", true, relu); }},
      {"silu", [](CaseContext &c) { unaryCase(c, "silu", false, silu); }},
      {"silu_grad", [](CaseContext &c) { unaryCase(c, "silu", true, silu); }},
      {"tanh",
       [](CaseContext &c) {
         unaryCase(c, "tanh", false, [](double x) { return std::tanh(x); });
       }},
      {"tanh_grad",
       [](CaseContext &c) {
         unaryCase(
             c, "tanh", true, [](double x) { return std::tanh(x); },
             [](Op o) { return o; }, /*gradTakesOutput=*/true);
       }},
      {"dropout", dropoutCase},
      {"dropout_add", dropoutAddCase},
      {"dropout_bias_grad", dropoutBiasGradCase},
      {"gelu_grad_bias_grad", geluGradBiasGradCase},
      {"merge_heads_bias_grad", mergeHeadsBiasGradCase},
      {"embedding", embeddingCase},
      {"embedding_grad", embeddingGradCase},
      {"take_token", [](CaseContext &c) { takeTokenCase(c, false); }},
      {"take_token_grad", [](CaseContext &c) { takeTokenCase(c, true); }},
      {"cross_entropy", [](CaseContext &c) { crossEntropyCase(c, false); }},
      {"cross_entropy_grad", [](CaseContext &c) { crossEntropyCase(c, true); }},
      {"sgd_update", sgdCase},
      {"adamw_update", adamwCase},
  };
  return *table;
}

} // namespace galaxy::rt::conformance
