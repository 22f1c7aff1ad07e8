// Issue 19, finding 3: the embedding kernels index a table by i32 ids that
// come from data files; every i32 id, at any vocab_offset a sharded table
// uses, either selects a row of this shard or is skipped (zeros forward, no
// update backward). Never a read or write outside the table.
#include <cstdint>
#include <limits>
#include <random>

#include "tests/kernels/kernel_test_util.h"
#include "gtest/gtest.h"

namespace galaxy::rt::testing {
namespace {

constexpr int32_t kMin = std::numeric_limits<int32_t>::min(),
                  kMax = std::numeric_limits<int32_t>::max();

// Rows guard the table on both sides: a kernel that strays reads a guard
// (forward: a value no valid row holds) or writes one (backward).
struct Guarded {
  static constexpr int kGuard = 4;
  int64_t v, h;
  Buf all;
  Guarded(int64_t v, int64_t h, std::mt19937 &rng)
      : v(v), h(h), all(Buf::random({v + 2 * kGuard, h}, rng)) {
    for (int64_t r = 0; r < kGuard; ++r)
      for (int64_t j = 0; j < h; ++j) {
        all.f[r * h + j] = 1e30f;
        all.f[(v + kGuard + r) * h + j] = 1e30f;
      }
  }
  Tensor table() {
    Tensor t = all.t();
    t.shape = {v, h};
    t.data = all.f.data() + kGuard * h;
    return t;
  }
  float at(int64_t row, int64_t j) const {
    return all.f[(row + kGuard) * h + j];
  }
};

TEST(IdBounds, EmbeddingTakesEveryI32Id) {
  std::mt19937 rng(19);
  const int64_t v = 5, h = 3;
  const std::vector<int32_t> ids = {kMin, kMin + 1, -1, 0,        1,
                                    4,    5,        6,  kMax - 1, kMax};
  for (int64_t offset : {int64_t{0}, int64_t{3}, int64_t{-7}, int64_t{kMax} - 2,
                         int64_t{kMin}}) {
    Guarded g(v, h, rng);
    Buf idBuf = Buf::ints({int64_t(ids.size())}, ids);
    Buf y = Buf::zeros({int64_t(ids.size()), h});
    Tensor table = g.table(), idT = idBuf.t(), yT = y.t();
    const plan::Instr instr = Op("embedding").i("vocab_offset", offset).instr();
    std::vector<Tensor> in = {table, idT}, out = {yT};
    ASSERT_TRUE(cpuBackend().run(instr, in, out, {}).ok());
    for (size_t r = 0; r < ids.size(); ++r) {
      const int64_t row = int64_t(ids[r]) - offset;
      for (int64_t j = 0; j < h; ++j)
        EXPECT_EQ(y.f[r * h + j], row >= 0 && row < v ? g.at(row, j) : 0.f)
            << "id " << ids[r] << " offset " << offset;
    }
  }
}

TEST(IdBounds, EmbeddingGradTouchesOnlyItsRows) {
  std::mt19937 rng(20);
  const int64_t v = 5, h = 3;
  const std::vector<int32_t> ids = {kMin, -1, 0, 4, 5, kMax - 1, kMax, 2};
  for (int64_t offset :
       {int64_t{0}, int64_t{3}, int64_t{kMax} - 4, int64_t{kMin}}) {
    Guarded g(v, h, rng);
    const std::vector<float> before = g.all.f;
    Buf idBuf = Buf::ints({int64_t(ids.size())}, ids);
    Buf dy = Buf::random({int64_t(ids.size()), h}, rng);
    Tensor table = g.table(), idT = idBuf.t(), dyT = dy.t();
    const plan::Instr instr = Op("embedding_grad")
                                  .i("vocab_offset", offset)
                                  .i("padding_idx", -1)
                                  .f("alpha", 1.0)
                                  .f("beta", 1.0)
                                  .instr();
    std::vector<Tensor> in = {idT, dyT}, out = {table};
    ASSERT_TRUE(cpuBackend().run(instr, in, out, {}).ok());
    std::vector<float> want = before;
    for (size_t r = 0; r < ids.size(); ++r) {
      const int64_t row = int64_t(ids[r]) - offset;
      if (row >= 0 && row < v)
        for (int64_t j = 0; j < h; ++j)
          want[(row + Guarded::kGuard) * h + j] += dy.f[r * h + j];
    }
    for (size_t k = 0; k < want.size(); ++k)
      EXPECT_FLOAT_EQ(g.all.f[k], want[k])
          << "offset " << offset << " at " << k;
  }
}

} // namespace
} // namespace galaxy::rt::testing
