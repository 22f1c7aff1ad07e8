// A plan is refused when it is loaded, never mid-step, if it names a kernel
// the kernel schema does not know or the backend does not implement.
#include <memory>
#include <set>

#include "runtime/exec/collectives.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/plan_kernels.h"
#include "runtime/plan/kernel_schema.h"
#include "tests/runtime/plan_builder.h"
#include "gtest/gtest.h"

namespace galaxy::rt::testing {
namespace {

// The CPU backend with some kernels taken out of its table.
class CpuWithout final : public Backend {
public:
  explicit CpuWithout(std::set<std::string> missing)
      : cpu_(makeCpuBackend()), missing_(std::move(missing)) {}
  std::string name() const override { return "cpu-without"; }
  std::string gemmDescription() const override {
    return cpu_->gemmDescription();
  }
  bool implements(std::string_view k) const override {
    return !missing_.count(std::string(k)) && cpu_->implements(k);
  }
  absl::Status run(const plan::Instr &instr, const std::vector<Tensor> &in,
                   const std::vector<Tensor> &out,
                   const KernelContext &ctx) override {
    ++calls;
    return cpu_->run(instr, in, out, ctx);
  }
  int calls = 0;

private:
  std::unique_ptr<Backend> cpu_;
  std::set<std::string> missing_;
};

// y = relu(x + x), then a slice (run by the executor, not the backend).
plan::Plan smallPlan(const std::string &firstKernel) {
  PlanBuilder b(0, 1);
  int x = b.input("x", {2, 4}, plan::F32);
  int s = b.arena("s", {2, 4});
  int y = b.arena("y", {2, 4});
  int z = b.arena("z", {2, 4});
  b.add("train_step", firstKernel, {x, x}, {s}).set_block("mlp.1");
  b.add("train_step", "relu", {s}, {y}).set_block("mlp.1");
  addMove(b, "train_step", "slice", y, z, 0, {2});
  b.bindInput("train_step", "x", x);
  b.bindOutput("train_step", "z", z);
  return b.finish();
}

TEST(PlanKernels, AcceptsAPlanTheBackendRuns) {
  CpuWithout backend({});
  EXPECT_TRUE(checkPlanKernels(smallPlan("add"), backend, "p").ok());
  auto ex = Executor::create(smallPlan("add"), backend);
  EXPECT_TRUE(ex.ok()) << ex.status();
}

TEST(PlanKernels, RefusesAKernelTheSchemaDoesNotKnow) {
  CpuWithout backend({});
  auto ex =
      Executor::create(smallPlan("convolution"), backend, nullptr, "plan.pb");
  ASSERT_FALSE(ex.ok());
  EXPECT_EQ(ex.status().code(), absl::StatusCode::kFailedPrecondition);
  const std::string msg(ex.status().message());
  for (const char *f :
       {"plan.pb",
        "plan names kernel 'convolution' that this galaxy-run does "
        "not know",
        "recompile with the matching galaxyc"})
    EXPECT_NE(msg.find(f), std::string::npos) << f << " missing in: " << msg;
  EXPECT_EQ(backend.calls, 0);
}

TEST(PlanKernels, RefusesAKernelTheBackendLacks) {
  CpuWithout backend({"relu"});
  auto ex = Executor::create(smallPlan("add"), backend, nullptr, "plan.pb");
  ASSERT_FALSE(ex.ok());
  EXPECT_EQ(ex.status().code(), absl::StatusCode::kUnimplemented);
  const std::string msg(ex.status().message());
  for (const char *f : {"kernel 'relu'", "block 'mlp.1'", "cpu-without"})
    EXPECT_NE(msg.find(f), std::string::npos) << f << " missing in: " << msg;
  EXPECT_EQ(backend.calls, 0);
}

// Data movement is the executor's: a backend need not implement it.
TEST(PlanKernels, DataMovementIsNotAskedOfTheBackend) {
  CpuWithout backend({"slice"});
  EXPECT_TRUE(checkPlanKernels(smallPlan("add"), backend, "p").ok());
}

// The schema's attribute check the lowering relies on: known name, same type.
TEST(KernelSchema, ChecksAttributeNamesAndTypes) {
  const schema::KernelSchema *gelu = schema::findKernel("gelu");
  ASSERT_NE(gelu, nullptr);
  plan::Attr s, i;
  s.set_s("tanh");
  i.set_i(1);
  EXPECT_TRUE(schema::checkAttr(*gelu, "approximate", s).ok());
  absl::Status wrongType = schema::checkAttr(*gelu, "approximate", i);
  EXPECT_NE(wrongType.message().find("is int; the schema wants string"),
            std::string::npos)
      << wrongType;
  absl::Status unknown = schema::checkAttr(*gelu, "window", i);
  EXPECT_NE(unknown.message().find("has no attribute 'window'"),
            std::string::npos)
      << unknown;
  EXPECT_EQ(schema::findKernel("convolution"), nullptr);
}

// The schema's executor-run kernels are exactly those the executor moves.
TEST(KernelSchema, ExecutorKernelsAreTheDataMovements) {
  for (const schema::KernelSchema &k : schema::allKernels())
    EXPECT_EQ(isDataMovement(k.name), k.runner == schema::Runner::kExecutor)
        << k.name;
}

// Ops map to kernels as the lowering writes them.
TEST(KernelSchema, OpsMapToTheirKernels) {
  ASSERT_NE(schema::kernelOfOp("grad_accumulate"), nullptr);
  EXPECT_EQ(schema::kernelOfOp("grad_accumulate")->kernel, "add");
  EXPECT_EQ(schema::kernelOfOp("zero_grad")->kernel, "fill");
  EXPECT_EQ(schema::kernelOfOp("to_partial")->kernel, "");
  EXPECT_EQ(schema::kernelOfOp("linear")->kernel, "linear");
  EXPECT_EQ(schema::kernelOfOp("no_such_op"), nullptr);
  // q_offset is declared, defaulted 0, though the ODS op has no such attribute.
  const schema::AttrSchema *q =
      schema::findKernel("masked_softmax")->findAttr("q_offset");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->type, schema::AttrType::kInt);
  EXPECT_FALSE(q->required);
  EXPECT_EQ(q->intDefault, 0);
  EXPECT_FALSE(q->fromOp);
}

} // namespace
} // namespace galaxy::rt::testing
