// The parameterized conformance test: one instance per backend-run kernel of
// the schema. A kernel with no case, or one the backend lacks, fails.

#include "runtime/plan/kernel_schema.h"
#include "tests/conformance/conformance.h"
#include "gtest/gtest.h"

namespace galaxy::rt::conformance {

Buf CaseContext::ids(std::vector<int64_t> shape, int32_t lo, int32_t hi) {
  Buf b = Buf::ints(std::move(shape), {});
  std::uniform_int_distribution<int32_t> d(lo, hi - 1);
  for (int32_t &x : b.i)
    x = d(rng);
  return b;
}

// A case calls a kernel with the operands the schema gives it (optional
// ones may be left out), so the schema's operand lists are checked too.
static void expectSchemaArity(const plan::Instr &instr, size_t nIn,
                              size_t nOut) {
  const schema::KernelSchema *k = schema::findKernel(instr.kernel());
  ASSERT_NE(k, nullptr) << instr.kernel();
  size_t required = 0;
  for (const schema::OperandSchema &o : k->inputs)
    required += !o.optional;
  EXPECT_TRUE(nIn >= required && nIn <= k->inputs.size())
      << instr.kernel() << " called with " << nIn << " inputs; the schema has "
      << required << " required of " << k->inputs.size();
  EXPECT_EQ(nOut, k->outputs.size())
      << instr.kernel() << " outputs vs the schema's";
}

bool CaseContext::exec(const Op &op, std::vector<Buf> &in,
                       std::vector<Buf> &out, const KernelContext &ctx) {
  expectSchemaArity(op.instr(), in.size(), out.size());
  absl::Status s = harness().run(op, in, out, ctx);
  EXPECT_TRUE(s.ok()) << harness().name << ": " << s;
  return s.ok();
}

std::vector<std::string> backendKernels() {
  std::vector<std::string> names;
  for (const schema::KernelSchema &k : schema::allKernels())
    if (k.runner == schema::Runner::kBackend)
      names.emplace_back(k.name);
  return names;
}

void Conformance::SetUp() {
  if (auto why = harness().unavailable())
    GTEST_SKIP() << harness().name << " backend unavailable: " << *why;
}

std::string Conformance::name(const ::testing::TestParamInfo<std::string> &i) {
  return i.param;
}

namespace {

TEST_P(Conformance, Kernel) {
  const std::string &kernel = GetParam();
  ASSERT_TRUE(harness().backend().implements(kernel))
      << "the " << harness().name << " backend lacks kernel '" << kernel
      << "', which the kernel schema lists (fill the gap in its kernel table)";
  auto it = cases().find(kernel);
  ASSERT_NE(it, cases().end()) << "no conformance case for kernel " << kernel
                               << " (add one to tests/conformance/cases.cc)";
  CaseContext ctx;
  it->second(ctx);
}

} // namespace

} // namespace galaxy::rt::conformance
