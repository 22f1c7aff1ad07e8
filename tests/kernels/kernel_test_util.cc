#include "tests/kernels/kernel_test_util.h"

#include <cmath>
#include <map>
#include <memory>
#include <utility>

#include "runtime/cpu/vector_loops.h"
#include "gtest/gtest.h"

namespace galaxy::rt::testing {

Buf Buf::zeros(std::vector<int64_t> shape) {
  Buf b;
  b.shape = std::move(shape);
  b.f.assign(b.numel(), 0.f);
  return b;
}

Buf Buf::values(std::vector<int64_t> shape, std::vector<float> v) {
  Buf b;
  b.shape = std::move(shape);
  b.f = std::move(v);
  EXPECT_EQ(static_cast<int64_t>(b.f.size()), b.numel());
  return b;
}

Buf Buf::ints(std::vector<int64_t> shape, std::vector<int32_t> v) {
  Buf b;
  b.dtype = plan::I32;
  b.shape = std::move(shape);
  b.i = std::move(v);
  if (b.i.empty())
    b.i.assign(b.numel(), 0);
  EXPECT_EQ(static_cast<int64_t>(b.i.size()), b.numel());
  return b;
}

std::vector<float> roundedToBf16(const std::vector<float> &v) {
  std::vector<float> r(v.size());
  cpu::roundToBf16(v.data(), r.data(), static_cast<int64_t>(v.size()));
  return r;
}

std::vector<double> xwt(const std::vector<float> &x,
                        const std::vector<float> &w, int64_t m, int64_t n,
                        int64_t k) {
  std::vector<double> y(m * n);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t p = 0; p < k; ++p)
        s += double(x[i * k + p]) * w[j * k + p];
      y[i * n + j] = s;
    }
  return y;
}

std::vector<float> transposed(const std::vector<float> &v, int64_t rows,
                              int64_t cols) {
  std::vector<float> t(v.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      t[c * rows + r] = v[r * cols + c];
  return t;
}

Buf Buf::random(std::vector<int64_t> shape, std::mt19937 &rng, float lo,
                float hi) {
  Buf b = zeros(std::move(shape));
  std::uniform_real_distribution<float> dist(lo, hi);
  for (float &x : b.f)
    x = dist(rng);
  return b;
}

int64_t Buf::numel() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

Tensor Buf::t() {
  Tensor t;
  t.dtype = dtype;
  t.shape = shape;
  t.param = param;
  t.data = dtype == plan::F32 ? static_cast<void *>(f.data())
                              : static_cast<void *>(i.data());
  return t;
}

Op::Op(const std::string &kernel) {
  instr_.set_kernel(kernel);
  instr_.set_block("test");
}
Op &Op::i(const std::string &key, int64_t v) {
  (*instr_.mutable_attrs())[key].set_i(v);
  return *this;
}
Op &Op::f(const std::string &key, double v) {
  (*instr_.mutable_attrs())[key].set_f(v);
  return *this;
}
Op &Op::s(const std::string &key, const std::string &v) {
  (*instr_.mutable_attrs())[key].set_s(v);
  return *this;
}
Op &Op::ints(const std::string &key, const std::vector<int64_t> &v) {
  auto *list = (*instr_.mutable_attrs())[key].mutable_ints();
  for (int64_t x : v)
    list->add_v(x);
  return *this;
}

Backend &cpuBackend() {
  static std::unique_ptr<Backend> backend = makeCpuBackend();
  return *backend;
}

Backend &cpuBackend(cpu::GemmKind gemm, int threads) {
  static std::map<std::pair<int, int>, std::unique_ptr<Backend>> cache;
  auto &slot = cache[{static_cast<int>(gemm), threads}];
  if (!slot)
    slot = cpu::makeCpuBackend({.gemm = gemm, .threads = threads});
  return *slot;
}

absl::Status run(const Op &op, std::vector<Buf *> in, std::vector<Buf *> out,
                 const KernelContext &ctx, Backend *backend) {
  std::vector<Tensor> ins, outs;
  for (Buf *b : in)
    ins.push_back(b->t());
  for (Buf *b : out)
    outs.push_back(b->t());
  return (backend ? *backend : cpuBackend()).run(op.instr(), ins, outs, ctx);
}

std::vector<float> runOk(const Op &op, std::vector<Buf *> in,
                         std::vector<Buf *> out, const KernelContext &ctx,
                         Backend *backend) {
  absl::Status st = run(op, in, out, ctx, backend);
  EXPECT_TRUE(st.ok()) << st;
  return out.empty() ? std::vector<float>{} : out[0]->f;
}

void expectClose(const std::vector<float> &got, const std::vector<double> &want,
                 double rtol, double atol, const std::string &what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int bad = 0;
  for (size_t k = 0; k < got.size(); ++k) {
    const double err = std::fabs(static_cast<double>(got[k]) - want[k]);
    if (!(err <= atol + rtol * std::fabs(want[k]))) {
      ADD_FAILURE() << what << "[" << k << "]: got " << got[k] << ", want "
                    << want[k];
      if (++bad == 5)
        return;
    }
  }
}

} // namespace galaxy::rt::testing
