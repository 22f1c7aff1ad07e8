// Plans lowered from partitioned IR: arena placement respects liveness, every
// rank owns its slice of each parameter, row-parallel biases are added once.
#include "compiler/LowerToPlan.h"
#include "compiler/Pipeline.h"
#include "compiler/config/enum_names.h"
#include "compiler/config/parse.h"
#include "compiler/config/validate.h"
#include "galaxy/Passes.h"
#include "google/protobuf/util/message_differencer.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

namespace galaxy {
namespace {

config::GalaxyConfig tinyConfig(const std::string &mode, int world) {
  auto c = config::parseConfig(R"({
    "vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
    "intermediate_size": 64, "max_position_embeddings": 16, "num_classes": 3,
    "batch_size": 3, "pad_size": 8, "optimizer": "adamw",
    "tp_num_attention_heads_list": [3, 1], "tp_intermediate_size_list": [40, 24],
    "seq_scatter_list": [5, 3], "dp_batch_list": [2, 1]})",
                               "tiny");
  EXPECT_TRUE(c.ok()) << c.status();
  config::ParallelChoice choice;
  choice.mode = *config::parseParallelMode(mode);
  choice.world = world;
  auto r = config::resolveConfig(*c, choice);
  EXPECT_TRUE(r.ok()) << r.status();
  return *r;
}

std::vector<plan::Plan> compile(const config::GalaxyConfig &cfg) {
  mlir::MLIRContext ctx;
  auto module = compileToStage(ctx, cfg, "partition");
  EXPECT_TRUE(module.ok()) << module.status();
  std::vector<plan::Plan> plans;
  int world = std::max(cfg.world_size, 1);
  for (int r = 0; r < world; ++r) {
    auto p = lowerToPlan(**module, cfg, {r, world});
    EXPECT_TRUE(p.ok()) << p.status();
    plans.push_back(*p);
  }
  return plans;
}

int64_t bytes(const plan::Buffer &b) {
  int64_t n = 4;
  for (int64_t d : b.shape())
    n *= d;
  return n;
}

// Two arena buffers whose lifetimes overlap must not overlap in memory.
void expectArenaSound(const plan::Plan &p) {
  for (const plan::Program &prog : p.programs()) {
    std::map<int32_t, std::pair<int, int>> life; // buffer -> [def, last use]
    for (int i = 0; i < prog.instrs_size(); ++i) {
      for (int32_t id : prog.instrs(i).outputs())
        life.try_emplace(id, std::make_pair(i, i));
      for (int32_t id : prog.instrs(i).inputs())
        if (life.count(id))
          life[id].second = i;
    }
    for (const auto &out : prog.outputs())
      life[out.buffer()].second = prog.instrs_size();
    std::vector<int32_t> ids;
    for (auto &[id, l] : life)
      if (p.buffers(id).kind() == plan::Buffer::ARENA)
        ids.push_back(id);
    for (size_t a = 0; a < ids.size(); ++a) {
      const plan::Buffer &A = p.buffers(ids[a]);
      EXPECT_LE(A.offset() + bytes(A), prog.arena_bytes()) << A.name();
      for (size_t b = a + 1; b < ids.size(); ++b) {
        const plan::Buffer &B = p.buffers(ids[b]);
        auto [a0, a1] = life[ids[a]];
        auto [b0, b1] = life[ids[b]];
        bool liveTogether = a0 <= b1 && b0 <= a1;
        bool memOverlap = A.offset() < B.offset() + bytes(B) &&
                          B.offset() < A.offset() + bytes(A);
        EXPECT_FALSE(liveTogether && memOverlap && bytes(A) && bytes(B))
            << prog.name() << ": " << A.name() << " and " << B.name()
            << " share memory";
      }
    }
  }
}

TEST(Lowering, SerialArenaIsSoundAndSmallerThanUnshared) {
  auto plans = compile(tinyConfig("serial", 1));
  ASSERT_EQ(plans.size(), 1u);
  expectArenaSound(plans[0]);
  EXPECT_LT(plans[0].arena_bytes(), plans[0].unshared_bytes());
  std::set<std::string> programs;
  for (const auto &p : plans[0].programs())
    programs.insert(p.name());
  EXPECT_EQ(programs, (std::set<std::string>{"train_step", "eval_step"}));
}

// lowerAllRanks shares arena placements between ranks whose buffers and
// lifetimes are the same (PlacementMemo): every rank's plan must still equal
// the one lowerToPlan makes for that rank alone — with uneven splits (ranks
// differ), even ones (ranks alike, so later ranks copy the placement) and
// rank 0's row-parallel biases — and every arena stay sound.
TEST(Lowering, AllRanksAtOnceEqualEachRankAlone) {
  auto even = config::parseConfig(R"({
    "vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
    "intermediate_size": 64, "max_position_embeddings": 16, "num_classes": 3,
    "batch_size": 4, "pad_size": 8, "optimizer": "sgd"})",
                                  "even");
  ASSERT_TRUE(even.ok()) << even.status();
  std::vector<config::GalaxyConfig> cfgs = {
      tinyConfig("galaxy", 2), tinyConfig("tp", 2), tinyConfig("dp", 2)};
  for (const char *mode : {"galaxy", "tp", "sp", "dp"}) {
    config::ParallelChoice choice;
    choice.mode = *config::parseParallelMode(mode);
    choice.world = 4;
    auto r = config::resolveConfig(*even, choice);
    ASSERT_TRUE(r.ok()) << r.status();
    cfgs.push_back(*r);
  }
  for (const config::GalaxyConfig &cfg : cfgs) {
    mlir::MLIRContext ctx;
    auto module = compileToStage(ctx, cfg, "partition");
    ASSERT_TRUE(module.ok()) << module.status();
    auto all = lowerAllRanks(**module, cfg, cfg.world_size);
    ASSERT_TRUE(all.ok()) << all.status();
    ASSERT_EQ(all->size(), static_cast<size_t>(cfg.world_size));
    for (int r = 0; r < cfg.world_size; ++r) {
      auto alone = lowerToPlan(**module, cfg, {r, cfg.world_size});
      ASSERT_TRUE(alone.ok()) << alone.status();
      std::string diff;
      google::protobuf::util::MessageDifferencer differ;
      differ.ReportDifferencesToString(&diff);
      EXPECT_TRUE(differ.Compare((*all)[r], *alone))
          << config::toString(cfg.parallel_mode) << " world " << cfg.world_size
          << " rank " << r << ": " << diff.substr(0, 2000);
      expectArenaSound((*all)[r]);
    }
  }
}

class ModeTest : public testing::TestWithParam<std::pair<const char *, int>> {};

TEST_P(ModeTest, RanksOwnDisjointSlicesThatCoverEveryParameter) {
  auto [mode, world] = GetParam();
  auto plans = compile(tinyConfig(mode, world));
  ASSERT_EQ(int(plans.size()), world);
  for (const plan::Plan &p : plans)
    expectArenaSound(p);
  for (int i = 0; i < plans[0].params_size(); ++i) {
    const plan::Param &p0 = plans[0].params(i);
    int64_t global = 1, covered = 0;
    for (int64_t d : p0.global_shape())
      global *= d;
    for (const plan::Plan &p : plans) {
      ASSERT_EQ(p.params(i).name(), p0.name());
      int64_t n = 1;
      for (int64_t d : p.params(i).slice_shape())
        n *= d;
      covered += n;
    }
    // Either replicated (every rank holds all) or sharded (the slices tile it).
    EXPECT_TRUE(covered == global || covered == global * world)
        << mode << " " << p0.name() << ": slices cover " << covered << " of "
        << global;
  }
}

TEST_P(ModeTest, RowParallelBiasIsAddedOnRankZeroOnly) {
  auto [mode, world] = GetParam();
  auto plans = compile(tinyConfig(mode, world));
  // A linear writing a partial result carries its bias operand on rank 0 only.
  int rowParallel = 0;
  for (const plan::Plan &p : plans)
    for (const plan::Program &prog : p.programs())
      for (const plan::Instr &in : prog.instrs())
        if (in.kernel() == "linear" && !in.backward() &&
            p.buffers(in.outputs(0)).layout() == "P") {
          EXPECT_EQ(in.inputs_size(), p.rank() == 0 ? 3 : 2)
              << mode << " rank " << p.rank();
          ++rowParallel;
        }
  // TP and Galaxy shard ATT and MLP by columns: both output denses are
  // row-parallel.
  if (std::string(mode) == "tp" || std::string(mode) == "galaxy")
    EXPECT_GT(rowParallel, 0) << mode;
}

INSTANTIATE_TEST_SUITE_P(Modes, ModeTest,
                         testing::Values(std::make_pair("tp", 2),
                                         std::make_pair("sp", 2),
                                         std::make_pair("dp", 2),
                                         std::make_pair("galaxy", 2)));

TEST(Lowering, TpHalvesNothingButShardsHeadsUnevenly) {
  auto plans = compile(tinyConfig("tp", 2));
  auto find = [](const plan::Plan &p, const std::string &name) {
    for (const auto &q : p.params())
      if (q.name() == name)
        return q;
    ADD_FAILURE() << name;
    return plan::Param();
  };
  // 3 of 4 heads (d = 8) on rank 0, 1 on rank 1; intermediate 40 / 24.
  auto q0 = find(plans[0], "bert.encoder.layer.0.attention.self.query.weight");
  auto q1 = find(plans[1], "bert.encoder.layer.0.attention.self.query.weight");
  EXPECT_EQ(q0.slice_shape(0), 24);
  EXPECT_EQ(q1.slice_shape(0), 8);
  EXPECT_EQ(q1.slice_offset(0), 24);
  auto o1 =
      find(plans[1], "bert.encoder.layer.0.attention.output.dense.weight");
  EXPECT_EQ(o1.slice_shape(1), 8);
  EXPECT_EQ(o1.slice_offset(1), 24);
  auto i1 = find(plans[1], "bert.encoder.layer.1.intermediate.dense.weight");
  EXPECT_EQ(i1.slice_shape(0), 24);
  auto ln = find(plans[1], "bert.encoder.layer.1.output.LayerNorm.weight");
  EXPECT_EQ(ln.slice_shape(0), 32);
}

TEST(Lowering, DropoutIsAddressedByGlobalIndex) {
  auto c = tinyConfig("sp", 2);
  auto plans = compile(c);
  for (const plan::Plan &p : plans)
    for (const plan::Instr &in : p.programs(0).instrs())
      // dropout and galaxy-fuse's dropout_add / dropout_bias_grad.
      if (in.kernel().starts_with("dropout") &&
          p.buffers(in.outputs(0)).layout() != "R") {
        const auto &off = in.attrs().at("offset").ints();
        const auto &global = in.attrs().at("global_shape").ints();
        const auto &local = p.buffers(in.outputs(0)).shape();
        ASSERT_EQ(off.v_size(), local.size());
        for (int d = 0; d < off.v_size(); ++d)
          EXPECT_LE(off.v(d) + local[d], global.v(d));
      }
}

// What the lowering writes must be in the kernel schema (from the ODS): an
// attribute the schema does not declare for the op's kernel is an internal
// error naming both, not a plan galaxy-run would half understand.
TEST(Lowering, AttributesOutsideTheKernelSchemaAreRefused) {
  config::GalaxyConfig cfg = tinyConfig("serial", 1);
  mlir::MLIRContext ctx;
  auto module = compileToStage(ctx, cfg, "partition");
  ASSERT_TRUE(module.ok()) << module.status();
  ASSERT_TRUE(lowerToPlan(**module, cfg, {0, 1}).ok());
  mlir::Operation *gelu = nullptr;
  (**module).walk([&](mlir::Operation *op) {
    if (!gelu && op->getName().getStringRef() == "galaxy.gelu")
      gelu = op;
  });
  ASSERT_NE(gelu, nullptr);
  gelu->setAttr("window",
                mlir::IntegerAttr::get(mlir::IntegerType::get(&ctx, 64), 3));
  auto p = lowerToPlan(**module, cfg, {0, 1});
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInternal);
  const std::string msg(p.status().message());
  for (const char *f : {"galaxy.gelu", "'window'", "kernel 'gelu'"})
    EXPECT_NE(msg.find(f), std::string::npos) << f << " missing in: " << msg;
}

// Hand-written IR (as in tests/lit) through annotate, autodiff and
// partition, lowered for every rank.
std::vector<plan::Plan> lowerIR(const char *ir, const PartitionOptions &o) {
  mlir::MLIRContext ctx;
  registerGalaxyDialects(ctx);
  auto module = mlir::parseSourceString<mlir::ModuleOp>(ir, &ctx);
  EXPECT_TRUE(module);
  if (!module)
    return {};
  mlir::PassManager pm(&ctx);
  pm.addPass(createAnnotate());
  pm.addPass(createAutodiff());
  pm.addPass(createPartition(o));
  EXPECT_TRUE(mlir::succeeded(pm.run(*module)));
  config::GalaxyConfig cfg = tinyConfig("serial", 1);
  std::vector<plan::Plan> plans;
  for (int r = 0; r < o.world; ++r) {
    auto p = lowerToPlan(*module, cfg, {r, o.world});
    EXPECT_TRUE(p.ok()) << p.status();
    if (p.ok())
      plans.push_back(*p);
  }
  return plans;
}

// Every instruction of `kernel` in the train step, with its output buffer.
std::vector<std::pair<const plan::Instr *, const plan::Buffer *>>
instrsOf(const plan::Plan &p, const std::string &kernel) {
  std::vector<std::pair<const plan::Instr *, const plan::Buffer *>> out;
  for (const plan::Program &prog : p.programs())
    if (prog.name() == "train_step")
      for (const plan::Instr &in : prog.instrs())
        if (in.kernel() == kernel)
          out.push_back({&in, &p.buffers(in.outputs(0))});
  return out;
}

// Query positions sharded 2 + 2 (tests/lit/rope.mlir): each rank's rope,
// forward and backward, starts its angles at its slice's first position.
TEST(Lowering, RopeOffsetsPositionsBySequenceSlice) {
  const char *ir = R"(
func.func @forward(%x: tensor<2x4x8xf32> {galaxy.input = "x", galaxy.dims = [#galaxy.dims<B, S, H>]}) -> tensor<f32> {
  %loss = galaxy.block "att" layer 0 -> tensor<f32> {
    %w = galaxy.param "q_proj.weight" {init = "normal", std = 0.02 : f64, trainable = true, galaxy.dims = [#galaxy.dims<A, H>]} : tensor<8x8xf32>
    %q = galaxy.linear %x, %w {galaxy.dims = [#galaxy.dims<B, S, A>]} : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
    %h = galaxy.split_heads %q {galaxy.dims = [#galaxy.dims<B, N, S, D>]} : (tensor<2x4x8xf32>) -> tensor<2x2x4x4xf32>
    %r = galaxy.rope %h {theta = 1.0e+04 : f64, galaxy.dims = [#galaxy.dims<B, N, S, D>]} : tensor<2x2x4x4xf32>
    %m = galaxy.merge_heads %r {galaxy.dims = [#galaxy.dims<B, S, A>]} : (tensor<2x2x4x4xf32>) -> tensor<2x4x8xf32>
    %ids = galaxy.iota {dim = 1 : i64, galaxy.dims = [#galaxy.dims<B, S>]} : tensor<2x4xi32>
    %l = galaxy.cross_entropy %m, %ids {denominator = 8.0 : f64} : (tensor<2x4x8xf32>, tensor<2x4xi32>) -> tensor<f32>
    galaxy.yield %l : tensor<f32>
  }
  return %loss : tensor<f32>
})";
  const std::vector<int64_t> seqSizes = {2, 2}; // o holds an ArrayRef to it
  PartitionOptions o;
  o.world = 2;
  o.att = "sp";
  o.seqSizes = seqSizes;
  auto plans = lowerIR(ir, o);
  ASSERT_EQ(plans.size(), 2u);
  for (const plan::Plan &p : plans) {
    auto ropes = instrsOf(p, "rope");
    ASSERT_EQ(ropes.size(), 2u) << "forward and backward, rank " << p.rank();
    for (auto [in, out] : ropes) {
      ASSERT_EQ(out->shape(2), 2) << "S(2, [2, 2]): half the positions";
      EXPECT_EQ(in->attrs().at("offset").i(), 2 * p.rank())
          << (in->backward() ? "backward" : "forward") << " rope, rank "
          << p.rank();
      EXPECT_EQ(in->attrs().at("offset").i(), out->slice_offset(2));
    }
    EXPECT_TRUE(ropes[1].first->backward());
    EXPECT_EQ(ropes[1].first->attrs().at("inverse").i(), 1);
  }
}

// 4 query heads over 2 KV heads, query heads split 3 + 1: the KV heads stay
// whole (tests/lit/repeat-kv.mlir) and rank 1's one query head (global head
// 3) reads KV head 1; its gradient goes to KV head 1 of a partial result.
TEST(Lowering, RepeatKvMapsAnUnevenHeadSliceToItsKvHeads) {
  const char *ir = R"(
func.func @forward(%x: tensor<2x4x16xf32> {galaxy.input = "x", galaxy.dims = [#galaxy.dims<B, S, H>]}) -> tensor<f32> {
  %loss = galaxy.block "att" layer 0 -> tensor<f32> {
    %wq = galaxy.param "q_proj.weight" {init = "normal", std = 0.02 : f64, trainable = true, galaxy.dims = [#galaxy.dims<A, H>]} : tensor<16x16xf32>
    %wk = galaxy.param "k_proj.weight" {init = "normal", std = 0.02 : f64, trainable = true, galaxy.dims = [#galaxy.dims<AK, H>]} : tensor<8x16xf32>
    %q = galaxy.linear %x, %wq {galaxy.dims = [#galaxy.dims<B, S, A>]} : (tensor<2x4x16xf32>, tensor<16x16xf32>) -> tensor<2x4x16xf32>
    %k = galaxy.linear %x, %wk {galaxy.dims = [#galaxy.dims<B, S, AK>]} : (tensor<2x4x16xf32>, tensor<8x16xf32>) -> tensor<2x4x8xf32>
    %qh = galaxy.split_heads %q {galaxy.dims = [#galaxy.dims<B, N, S, D>]} : (tensor<2x4x16xf32>) -> tensor<2x4x4x4xf32>
    %kh = galaxy.split_heads %k {galaxy.dims = [#galaxy.dims<B, NK, K, D>]} : (tensor<2x4x8xf32>) -> tensor<2x2x4x4xf32>
    %kr = galaxy.repeat_kv %kh {groups = 2 : i64, galaxy.dims = [#galaxy.dims<B, N, K, D>]} : (tensor<2x2x4x4xf32>) -> tensor<2x4x4x4xf32>
    %s = galaxy.matmul %qh, %kr {transpose_b = true, galaxy.dims = [#galaxy.dims<B, N, S, K>]} : (tensor<2x4x4x4xf32>, tensor<2x4x4x4xf32>) -> tensor<2x4x4x4xf32>
    %c = galaxy.matmul %s, %kr {galaxy.dims = [#galaxy.dims<B, N, S, D>]} : (tensor<2x4x4x4xf32>, tensor<2x4x4x4xf32>) -> tensor<2x4x4x4xf32>
    %m = galaxy.merge_heads %c {galaxy.dims = [#galaxy.dims<B, S, A>]} : (tensor<2x4x4x4xf32>) -> tensor<2x4x16xf32>
    %ids = galaxy.iota {dim = 1 : i64, galaxy.dims = [#galaxy.dims<B, S>]} : tensor<2x4xi32>
    %l = galaxy.cross_entropy %m, %ids {denominator = 8.0 : f64} : (tensor<2x4x16xf32>, tensor<2x4xi32>) -> tensor<f32>
    galaxy.yield %l : tensor<f32>
  }
  return %loss : tensor<f32>
})";
  const std::vector<int64_t> headSizes = {3, 1}; // o holds an ArrayRef to it
  PartitionOptions o;
  o.world = 2;
  o.att = "tp";
  o.headSizes = headSizes;
  auto plans = lowerIR(ir, o);
  ASSERT_EQ(plans.size(), 2u);
  for (const plan::Plan &p : plans) {
    auto fwd = instrsOf(p, "repeat_kv"), bwd = instrsOf(p, "repeat_kv_grad");
    ASSERT_EQ(fwd.size(), 1u);
    ASSERT_EQ(bwd.size(), 1u);
    const int64_t first = p.rank() == 0 ? 0 : 3; // first global query head
    EXPECT_EQ(fwd[0].second->shape(1), p.rank() == 0 ? 3 : 1);
    EXPECT_EQ(fwd[0].first->attrs().at("head_offset").i(), first);
    EXPECT_EQ(bwd[0].second->layout(), "P");
    EXPECT_EQ(bwd[0].second->shape(1), 2) << "every KV head, partial";
    EXPECT_EQ(bwd[0].first->attrs().at("head_offset").i(), first);
  }
}

} // namespace
// The optional operands are plain instruction inputs. Data parallel over 2
// ranks: cross_entropy(_grad) reads the 0-d num_targets input whole on every
// rank (not sliced by rows), and take_token's per-row indices arrive split by
// rows like its input.
TEST(Lowering, OptionalCountAndIndicesAreInstructionInputs) {
  const char *ir = R"(
func.func @forward(%x: tensor<2x4x8xf32> {galaxy.input = "x", galaxy.dims = [#galaxy.dims<B, S, H>]},
                   %last: tensor<2xi32> {galaxy.input = "last_token", galaxy.dims = [#galaxy.dims<B>]},
                   %ids: tensor<2x4xi32> {galaxy.input = "labels", galaxy.dims = [#galaxy.dims<B, S>]},
                   %n: tensor<f32> {galaxy.input = "num_targets", galaxy.dims = [#galaxy.dims<>]}) -> tensor<f32> {
  %loss = galaxy.block "con" layer 0 -> tensor<f32> {
    %w = galaxy.param "lm_head.weight" {init = "normal", std = 0.02 : f64, trainable = true, galaxy.dims = [#galaxy.dims<V, H>]} : tensor<8x8xf32>
    %l = galaxy.linear %x, %w {galaxy.dims = [#galaxy.dims<B, S, V>]} : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
    %t = galaxy.take_token %l, %last {galaxy.dims = [#galaxy.dims<B, V>]} : (tensor<2x4x8xf32>, tensor<2xi32>) -> tensor<2x8xf32>
    %a = galaxy.cross_entropy %l, %ids, %n {denominator = 1.0 : f64} : (tensor<2x4x8xf32>, tensor<2x4xi32>, tensor<f32>) -> tensor<f32>
    %y = galaxy.iota {dim = 0 : i64, galaxy.dims = [#galaxy.dims<B>]} : tensor<2xi32>
    %b = galaxy.cross_entropy %t, %y {denominator = 2.0 : f64} : (tensor<2x8xf32>, tensor<2xi32>) -> tensor<f32>
    %c = galaxy.add %a, %b : tensor<f32>
    galaxy.yield %c : tensor<f32>
  }
  return %loss : tensor<f32>
})";
  const std::vector<int64_t> batchSizes = {1, 1}; // o holds an ArrayRef to it
  PartitionOptions o;
  o.world = 2;
  o.con = "dp";
  o.batchSizes = batchSizes;
  auto plans = lowerIR(ir, o);
  ASSERT_EQ(plans.size(), 2u);
  for (const plan::Plan &p : plans) {
    auto ce = instrsOf(p, "cross_entropy"),
         ceGrad = instrsOf(p, "cross_entropy_grad");
    ASSERT_EQ(ce.size(), 2u);
    ASSERT_EQ(ceGrad.size(), 2u);
    // One loss with the count (token-level), one without (as before).
    auto byInputs = [](const auto &instrs, int n) -> const plan::Instr * {
      for (auto [in, out] : instrs)
        if (in->inputs_size() == n)
          return in;
      return nullptr;
    };
    const plan::Instr *withCount = byInputs(ce, 3),
                      *gradWithCount = byInputs(ceGrad, 4);
    ASSERT_NE(withCount, nullptr);
    ASSERT_NE(gradWithCount, nullptr);
    EXPECT_NE(byInputs(ce, 2), nullptr);
    EXPECT_NE(byInputs(ceGrad, 3), nullptr);
    const int32_t count = withCount->inputs(2);
    EXPECT_EQ(gradWithCount->inputs(3), count);
    const plan::Buffer &nb = p.buffers(count);
    EXPECT_EQ(nb.kind(), plan::Buffer::INPUT);
    EXPECT_EQ(nb.input(), "num_targets");
    EXPECT_EQ(nb.shape_size(), 0) << "0-d";
    EXPECT_EQ(nb.global_shape_size(), 0) << "whole, not sliced";
    EXPECT_EQ(nb.layout(), "R");

    auto take = instrsOf(p, "take_token"),
         takeGrad = instrsOf(p, "take_token_grad");
    ASSERT_EQ(take.size(), 1u);
    ASSERT_EQ(takeGrad.size(), 1u);
    ASSERT_EQ(take[0].first->inputs_size(), 2);
    ASSERT_EQ(takeGrad[0].first->inputs_size(), 2);
    const plan::Buffer &ib = p.buffers(take[0].first->inputs(1));
    EXPECT_EQ(p.buffers(takeGrad[0].first->inputs(1)).id(), ib.id());
    ASSERT_EQ(ib.shape_size(), 1);
    EXPECT_EQ(ib.shape(0), 1) << "this rank's row";
    EXPECT_EQ(ib.global_shape(0), 2);
    EXPECT_EQ(ib.slice_offset(0), p.rank());
  }
}

} // namespace galaxy
