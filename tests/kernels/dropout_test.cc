// Philox4x32-10 known answers and dropout's addressed randomness.
#include <cmath>

#include "runtime/cpu/philox.h"
#include "runtime/cpu/vector_loops.h"
#include "tests/kernels/kernel_test_util.h"
#include "gtest/gtest.h"

namespace galaxy::rt::testing {
namespace {

// Random123's kat_vectors for philox4x32 10: counter[4], key[2] -> output[4].
TEST(Philox, KnownAnswers) {
  struct Kat {
    uint32_t ctr[4], key[2], out[4];
  };
  const Kat kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Kat &k : kats) {
    Philox4x32Words w = philox4x32_10(k.ctr[0], k.ctr[1], k.ctr[2], k.ctr[3],
                                      k.key[0], k.key[1]);
    for (int i = 0; i < 4; ++i)
      EXPECT_EQ(w.w[i], k.out[i]) << "word " << i;
  }
}

// The kept bit of global element g, derived here straight from the spec and
// philox4x32_10.
bool keptBySpec(uint64_t seed, int64_t step, uint32_t op_id, uint64_t g,
                double p) {
  const uint64_t q = g >> 2;
  Philox4x32Words w =
      philox4x32_10(uint32_t(q), uint32_t(q >> 32), uint32_t(step),
                    uint32_t(seed >> 32), uint32_t(seed), op_id);
  const double u = double(w.w[g & 3] >> 8) / 16777216.0;
  return u >= p;
}

constexpr uint64_t kSeed = 0x0123456789abcdefull; // both seed halves matter

TEST(Dropout, FixedMask) {
  Buf x = Buf::zeros({2, 7}), y = Buf::zeros({2, 7});
  for (int k = 0; k < 14; ++k)
    x.f[k] = float(k + 1);
  const KernelContext ctx{.seed = kSeed, .step = 3, .training = true};
  runOk(Op("dropout").f("p", 0.5).i("op_id", 9), {&x}, {&y}, ctx);
  std::string pattern;
  for (int k = 0; k < 14; ++k) {
    const bool kept = keptBySpec(kSeed, 3, 9, k, 0.5);
    pattern += kept ? '1' : '0';
    EXPECT_EQ(y.f[k], kept ? x.f[k] / 0.5f : 0.f) << "element " << k;
  }
  // The same pattern written out: a later backend (CUDA) must reproduce it bit
  // for bit.
  EXPECT_EQ(pattern, "11101111000000");
}

TEST(Dropout, KeepsAboutOneMinusP) {
  const int64_t n = 1 << 20;
  Buf x = Buf::zeros({1024, 1024}), y = Buf::zeros({1024, 1024});
  for (float &v : x.f)
    v = 1.f;
  const KernelContext ctx{.seed = 7, .step = 1, .training = true};
  runOk(Op("dropout").f("p", 0.1).i("op_id", 1), {&x}, {&y}, ctx);
  int64_t kept = 0;
  for (float v : y.f) {
    if (v != 0.f) {
      ++kept;
      EXPECT_EQ(v, 1.f / 0.9f);
    }
  }
  // Binomial sd is ~300 elements; 0.3% is ~10 sd.
  EXPECT_NEAR(double(kept) / n, 0.9, 0.003);
  // Another step draws another mask.
  Buf y2 = Buf::zeros(x.shape);
  runOk(Op("dropout").f("p", 0.1).i("op_id", 1), {&x}, {&y2},
        {.seed = 7, .step = 2});
  EXPECT_NE(y.f, y2.f);
}

// A rank holding block [1:3, 2:5, 3:7] of a [4,6,8] tensor draws the serial
// bits.
TEST(Dropout, ShardMatchesTheSerialSlice) {
  std::mt19937 rng(50);
  Buf full = Buf::random({4, 6, 8}, rng), yfull = Buf::zeros({4, 6, 8});
  const KernelContext ctx{.seed = kSeed, .step = 5, .training = true};
  runOk(Op("dropout").f("p", 0.4).i("op_id", 3), {&full}, {&yfull}, ctx);
  const std::vector<int64_t> off = {1, 2, 3}, shape = {2, 3, 4};
  Buf part = Buf::zeros(shape), ypart = Buf::zeros(shape);
  auto at = [](int a, int b, int c) { return (a * 6 + b) * 8 + c; };
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 3; ++b)
      for (int c = 0; c < 4; ++c)
        part.f[(a * 3 + b) * 4 + c] = full.f[at(a + 1, b + 2, c + 3)];
  runOk(Op("dropout")
            .f("p", 0.4)
            .i("op_id", 3)
            .ints("global_shape", {4, 6, 8})
            .ints("offset", off),
        {&part}, {&ypart}, ctx);
  int dropped = 0;
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 3; ++b)
      for (int c = 0; c < 4; ++c) {
        const float got = ypart.f[(a * 3 + b) * 4 + c];
        EXPECT_EQ(got, yfull.f[at(a + 1, b + 2, c + 3)])
            << a << "," << b << "," << c;
        dropped += got == 0.f;
      }
  EXPECT_GT(dropped,
            0); // p = 0.4 over 24 elements: a test that cannot pass vacuously
  // Without global_shape the same block draws other bits.
  Buf ylocal = Buf::zeros(shape);
  runOk(Op("dropout").f("p", 0.4).i("op_id", 3), {&part}, {&ylocal}, ctx);
  EXPECT_NE(ylocal.f, ypart.f);
}

// Long rows go through the lane-parallel (vectorised) Philox path; every
// element must still equal the one-block-at-a-time definition, including the
// unaligned head and tail of each row and a 64-bit global index.
TEST(Dropout, WideRowsMatchPerElementPhilox) {
  std::mt19937 rng(51);
  const std::vector<int64_t> global = {3, 5, 1000}, off = {1, 1, 37},
                             shape = {2, 3, 517};
  Buf x = Buf::random(shape, rng), y = Buf::zeros(shape);
  const uint64_t seed = 0x123456789abcdefull;
  const KernelContext ctx{.seed = seed, .step = 9, .training = true};
  const double p = 0.3;
  runOk(Op("dropout")
            .f("p", p)
            .i("op_id", 11)
            .ints("global_shape", global)
            .ints("offset", off),
        {&x}, {&y}, ctx);
  int mismatches = 0, dropped = 0;
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 3; ++b)
      for (int c = 0; c < 517; ++c) {
        const uint64_t g = ((a + 1) * 5 + (b + 1)) * 1000 + (c + 37);
        const int64_t k = (a * 3 + b) * 517 + c;
        const float u = dropoutUniform(seed, 9, 11, g);
        const float want = u >= float(p) ? x.f[k] / float(1.0 - p) : 0.f;
        mismatches += y.f[k] != want;
        dropped += want == 0.f;
      }
  EXPECT_EQ(mismatches, 0);
  EXPECT_GT(dropped, 500); // ~30% of 3102
}

// Rows shorter than the vector loop's 64 elements (attention probabilities'
// rows are seq long) are joined into one span while their global ranges follow
// one another: a block whole in every dim but the first is one span, a block
// cut in a middle dim is one span per leading index. Every element must still
// draw its own global index's bit, on one thread and on two.
TEST(Dropout, ShortRowsJoinedIntoSpansDrawTheirOwnBits) {
  std::mt19937 rng(52);
  struct Case {
    std::vector<int64_t> global, off, shape;
  };
  const Case cases[] = {{{5, 8, 16}, {1, 0, 0}, {3, 8, 16}},
                        {{3, 10, 16}, {0, 3, 0}, {3, 6, 16}},
                        {{2, 12, 32, 32}, {0, 0, 0, 0}, {2, 12, 32, 32}},
                        {{4, 9, 6}, {1, 2, 1}, {2, 7, 5}}};
  const uint64_t seed = 0x0fedcba987654321ull;
  const KernelContext ctx{.seed = seed, .step = 4, .training = true};
  const double p = 0.25;
  for (const Case &cs : cases)
    for (int threads : {1, 2}) {
      Buf x = Buf::random(cs.shape, rng), y = Buf::zeros(cs.shape);
      runOk(Op("dropout")
                .f("p", p)
                .i("op_id", 12)
                .ints("global_shape", cs.global)
                .ints("offset", cs.off),
            {&x}, {&y}, ctx, &cpuBackend(cpu::GemmKind::kPerShape, threads));
      const size_t rank = cs.shape.size();
      int mismatches = 0, dropped = 0;
      std::vector<int64_t> idx(rank, 0);
      for (int64_t k = 0; k < x.numel(); ++k) {
        uint64_t g = 0;
        for (size_t d = 0; d < rank; ++d)
          g = g * cs.global[d] + idx[d] + cs.off[d];
        const float u = dropoutUniform(seed, 4, 12, g);
        const float want = u >= float(p) ? x.f[k] / float(1.0 - p) : 0.f;
        mismatches += y.f[k] != want;
        dropped += want == 0.f;
        for (size_t d = rank; d-- > 0;) // next local index, row-major
          if (++idx[d] < cs.shape[d])
            break;
          else
            idx[d] = 0;
      }
      EXPECT_EQ(mismatches, 0) << "shape " << cs.shape.size() << "-d case, "
                               << threads << " threads";
      EXPECT_GT(dropped, 0);
    }
}

// The block loop on its own, each ISA copy this CPU can run, against the
// one-block definition: many whole 16-block groups plus a tail, starting just
// below 2^32 blocks so the counter's low word wraps inside a group.
TEST(Dropout, BlockLoopMatchesPhiloxAcrossTheLowWordWrap) {
  std::mt19937 rng(52);
  const int64_t blocks = 16 * 5 + 7, n = 4 * blocks;
  std::vector<float> x(n), y(n, -1.f);
  for (float &v : x)
    v = std::uniform_real_distribution<float>(-2, 2)(rng);
  const uint64_t seed = 0xfedcba9876543210ull, step = 77;
  const uint32_t op = 4, threshold = 5033165; // ceil(0.3 * 2^24)
  const float keep = 0.7f;
  int copies = 0;
  for (auto isa : {cpu::DropoutIsa::kAvx512, cpu::DropoutIsa::kAvx2,
                   cpu::DropoutIsa::kPortable})
    for (uint64_t q0 :
         {uint64_t{0}, (uint64_t{1} << 32) - 37, (uint64_t{5} << 32) - 3}) {
      if (!cpu::dropoutIsaSupported(isa))
        continue;
      copies += q0 == 0;
      std::fill(y.begin(), y.end(), -1.f);
      cpu::dropoutBlocksWith(isa, x.data(), y.data(), blocks, q0, seed, step,
                             op, threshold, keep);
      int mismatches = 0;
      for (int64_t i = 0; i < n; ++i) {
        const uint32_t w = dropoutBlock(seed, step, op, q0 + i / 4).w[i % 4];
        const float want = (w >> 8) >= threshold ? x[i] / keep : 0.f;
        mismatches += y[i] != want;
      }
      EXPECT_EQ(mismatches, 0) << "copy " << int(isa) << " q0 " << q0;
    }
  EXPECT_GE(copies, 1);
  std::cout << copies << " of 3 ISA copies ran on this CPU\n";
}

TEST(Dropout, IdentityWhenNotTrainingOrPZero) {
  std::mt19937 rng(51);
  Buf x = Buf::random({3, 5, 7}, rng), y = Buf::zeros(x.shape);
  runOk(Op("dropout").f("p", 0.5).i("op_id", 1), {&x}, {&y},
        {.seed = 1, .step = 1, .training = false});
  EXPECT_EQ(y.f, x.f);
  y = Buf::zeros(x.shape);
  runOk(Op("dropout").f("p", 0.0).i("op_id", 1), {&x}, {&y},
        {.seed = 1, .step = 1});
  EXPECT_EQ(y.f, x.f);
}

} // namespace
} // namespace galaxy::rt::testing
