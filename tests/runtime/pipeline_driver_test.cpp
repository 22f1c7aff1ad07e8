// The pipeline runtime: schedules (runtime/plan/schedule.h), the executor's
// stash slots, and PipelineDriver on real forked ranks over Gloo — gpipe and
// 1f1b train to the serial run's losses, weights and eval logits (with
// dropout, uneven microbatches, 2 and 3 stages, 2 ranks per stage), reuse
// their slots, and fail by name when a stage dies or the plans disagree.
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/comm/communicator.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/pipeline_driver.h"
#include "runtime/exec/pipeline_internal.h"
#include "runtime/io/safetensors.h"
#include "runtime/plan/schedule.h"
#include "tests/comm/multiprocess.h"
#include "tests/runtime/pipeline_plans.h"
#include "tests/runtime/plan_builder.h"
#include "gtest/gtest.h"

namespace galaxy::rt::testing {
namespace {

namespace fs = std::filesystem;
using comm::testing::describe;
using comm::testing::freePort;
using comm::testing::runRanks;

constexpr uint64_t kSeed = 11;

// ---------------------------------------------------------------- schedules

std::string render(const std::vector<plan::PipeOp> &ops) {
  std::vector<std::string> out;
  for (const plan::PipeOp &op : ops)
    out.push_back(absl::StrCat(op.forward ? "F" : "B", op.microbatch));
  return absl::StrJoin(out, " ");
}

TEST(Schedule, GpipeRunsEveryForwardThenEveryBackward) {
  for (int s = 0; s < 3; ++s)
    EXPECT_EQ(render(plan::stageSchedule("gpipe", s, 3, 4)),
              "F0 F1 F2 F3 B0 B1 B2 B3");
}

TEST(Schedule, OneFOneBWarmsUpThenAlternates) {
  EXPECT_EQ(render(plan::stageSchedule("1f1b", 0, 3, 4)),
            "F0 F1 F2 B0 F3 B1 B2 B3");
  EXPECT_EQ(render(plan::stageSchedule("1f1b", 1, 3, 4)),
            "F0 F1 B0 F2 B1 F3 B2 B3");
  EXPECT_EQ(render(plan::stageSchedule("1f1b", 2, 3, 4)),
            "F0 B0 F1 B1 F2 B2 F3 B3");
  // Fewer microbatches than stages: the warm-up is cut short.
  EXPECT_EQ(render(plan::stageSchedule("1f1b", 0, 4, 2)), "F0 F1 B0 B1");
}

TEST(Schedule, StashSlotsAreTheMostMicrobatchesInFlight) {
  for (const char *kind : {"gpipe", "1f1b"})
    for (int p : {1, 2, 3, 4})
      for (int m : {1, 2, 3, 5, 8})
        for (int s = 0; s < p; ++s) {
          int inFlight = 0, peak = 0;
          int nextF = 0, nextB = 0;
          for (const plan::PipeOp &op : plan::stageSchedule(kind, s, p, m)) {
            // Forwards and backwards each in ascending order (FIFO slots).
            EXPECT_EQ(op.microbatch, op.forward ? nextF++ : nextB++);
            inFlight += op.forward ? 1 : -1;
            peak = std::max(peak, inFlight);
          }
          EXPECT_EQ(nextF, m);
          EXPECT_EQ(nextB, m);
          EXPECT_EQ(peak, plan::stashSlots(kind, s, p, m))
              << kind << " p=" << p << " m=" << m << " s=" << s;
        }
  EXPECT_EQ(plan::stashSlots("1f1b", 0, 4, 8), 4);
  EXPECT_EQ(plan::stashSlots("1f1b", 3, 4, 8), 1);
  EXPECT_EQ(plan::stashSlots("gpipe", 3, 4, 8), 8);
}

TEST(Schedule, BubbleOfEqualStagesIsPMinusOneOverMPlusPMinusOne) {
  for (const char *kind : {"gpipe", "1f1b"})
    for (int p : {2, 3, 4})
      for (int m : {1, 2, 4, 8}) {
        const plan::Timeline t = plan::simulate(kind, p, m, 1, 2);
        EXPECT_DOUBLE_EQ(t.makespan, 3.0 * (m + p - 1))
            << kind << " p=" << p << " m=" << m;
        EXPECT_NEAR(t.bubbleFraction, double(p - 1) / (m + p - 1), 1e-12)
            << kind << " p=" << p << " m=" << m;
        EXPECT_NEAR(t.bubbleOverBusy, double(p - 1) / m, 1e-12);
      }
  const std::string text =
      plan::renderTimeline(plan::simulate("1f1b", 2, 2, 1, 2));
  // Stage 0 waits for each gradient; stage 1 for F1 and then for nothing.
  EXPECT_EQ(text, "stage 0 | F0 F1 .. .. B0 B0 .. B1 B1\n"
                  "stage 1 | .. F0 B0 B0 F1 B1 B1 .. ..\n")
      << text;
}

// ------------------------------------------------------ executor stash slots

TEST(StashSlots, OffsetsOutsideTheSlotAreRefusedByName) {
  ChainSpec spec;
  plan::Plan p = chainStagePlan(spec, 0, 0);
  plan::Buffer *victim = nullptr;
  for (plan::Buffer &b : *p.mutable_buffers())
    if (b.stash())
      victim = &b;
  ASSERT_NE(victim, nullptr);
  victim->set_offset(p.pipeline().stash_slot_bytes() - 4);
  auto backend = makeCpuBackend();
  auto ex = Executor::create(p, *backend);
  ASSERT_FALSE(ex.ok());
  EXPECT_TRUE(
      absl::StrContains(ex.status().message(),
                        absl::StrCat("stash buffer ", victim->name(), " (")))
      << ex.status();
  EXPECT_TRUE(
      absl::StrContains(ex.status().message(),
                        absl::StrCat(") lies outside the stash slot of ",
                                     p.pipeline().stash_slot_bytes(),
                                     " bytes (Pipeline.stash_slot_bytes)")))
      << ex.status();

  plan::Plan serial = chainSerialPlan(spec);
  serial.mutable_buffers(3)->set_stash(true);
  ex = Executor::create(serial, *backend);
  ASSERT_FALSE(ex.ok());
  EXPECT_TRUE(absl::StrContains(ex.status().message(),
                                "is marked stash but the plan has no pipeline"))
      << ex.status();
}

TEST(StashSlots, SlotsAreAllocatedAndChecked) {
  ChainSpec spec; // 1f1b over 2 stages, 3 microbatches: stage 0 needs 2
  plan::Plan p = chainStagePlan(spec, 0, 0);
  auto backend = makeCpuBackend();
  auto ex = Executor::create(p, *backend);
  ASSERT_TRUE(ex.ok()) << ex.status();
  EXPECT_EQ((*ex)->stashSlots(), 2);
  EXPECT_EQ((*ex)->stashSlotBytes(), p.pipeline().stash_slot_bytes());
  EXPECT_GT((*ex)->stashSlotBytes(), 0);
  EXPECT_EQ((*ex)->arenaBytes(), p.arena_bytes());
  auto out = (*ex)->run("train_fwd.b3", io::Batch(), KernelContext{}, 2);
  ASSERT_FALSE(out.ok());
  EXPECT_TRUE(absl::StrContains(out.status().message(),
                                "train_fwd.b3: stash slot 2 is out of range; "
                                "the plan has 2 slots (Pipeline.slots)"))
      << out.status();

  // Too few slots for the schedule: the driver says how many it needs.
  spec.slots = 1;
  auto ex1 = Executor::create(chainStagePlan(spec, 0, 0), *backend);
  ASSERT_TRUE(ex1.ok()) << ex1.status();
  auto d = PipelineDriver::create(nullptr, **ex1);
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(absl::StrContains(
      d.status().message(),
      "the plan has 1 stash slots (Pipeline.slots) but the 1f1b schedule of "
      "stage 0 with 3 microbatches holds 2 at once"))
      << d.status();
}

// ---------------------------------------------------- driver on real ranks

std::string tempDir(const std::string &tag) {
  fs::path d =
      fs::temp_directory_path() /
      absl::StrCat("galaxy-pipeline-", tag, "-", getpid(), "-", rand());
  fs::create_directories(d);
  return d.string();
}

// Global batch `step`: features in [-1, 1] and labels, the same on every
// rank.
io::Batch chainBatch(const ChainSpec &spec, int step) {
  io::Batch b;
  b.size = spec.batch;
  b.seqLen = spec.dims[0];
  for (int64_t i = 0; i < spec.batch * spec.dims[0]; ++i)
    b.floats("attention_mask")
        .push_back(float(std::sin(0.37 * double(i + 1) + 1.3 * step)));
  for (int64_t r = 0; r < spec.batch; ++r)
    b.ints("labels").push_back(int32_t((r * 7 + step * 3) % spec.dims.back()));
  return b;
}

void writeFloats(const std::string &path, const std::vector<float> &v) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char *>(v.data()), 4 * v.size());
}

std::vector<float> readFloats(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), {});
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), 4 * v.size());
  return v;
}

// The whole model in one process (a forked child: the kernels start OpenMP,
// which must not happen in the test process that forks later): DIR/serial.*
void runSerial(const ChainSpec &spec, int steps, const std::string &dir) {
  auto results = runRanks(1, [&](int) -> absl::Status {
    auto backend = makeCpuBackend();
    auto ex = Executor::create(chainSerialPlan(spec), *backend);
    if (!ex.ok())
      return ex.status();
    (*ex)->initParams(kSeed);
    std::vector<float> losses;
    for (int s = 0; s < steps; ++s) {
      auto out = (*ex)->run("train_step", chainBatch(spec, s),
                            KernelContext{kSeed, s + 1, true});
      if (!out.ok())
        return out.status();
      losses.push_back((*out)["loss"][0]);
    }
    writeFloats(dir + "/serial.losses", losses);
    auto eval = (*ex)->run("eval_step", chainBatch(spec, 99),
                           KernelContext{kSeed, 0, false});
    if (!eval.ok())
      return eval.status();
    writeFloats(dir + "/serial.logits", (*eval)["logits"]);
    return (*ex)->saveParams(dir + "/serial.safetensors");
  });
  ASSERT_EQ(results[0].exitCode, 0) << describe(results);
}

struct RankOptions {
  int steps = 3;
  int dieRank = -1, dieAtStep = -1; // that rank _exits(9) before that step
  int timeoutS = 10;
  // Builds rank r's plan (default: chainStagePlan).
  std::function<plan::Plan(int stage, int groupRank)> planOf;
};

// One world rank: joins, splits its stage group, trains, evaluates, saves;
// writes DIR/pipe.losses, DIR/pipe.logits (world rank 0) and
// DIR/peak<r> (the peak slots it saw).
absl::Status pipelineRank(const ChainSpec &spec, const RankOptions &o,
                          const std::string &dir, int port, int rank) {
  const int G = spec.groupSize, world = chainStages(spec) * G;
  const int stage = rank / G, groupRank = rank % G;
  auto w = comm::testing::connectLoopback(rank, world, port,
                                          std::chrono::seconds(o.timeoutS));
  if (!w.ok())
    return w.status();
  std::unique_ptr<comm::Communicator> group;
  if (G > 1) {
    std::vector<int> members;
    for (int r = 0; r < G; ++r)
      members.push_back(stage * G + r);
    auto g = (*w)->split(members);
    if (!g.ok())
      return g.status();
    group = std::move(*g);
  }
  auto backend = makeCpuBackend();
  auto ex = Executor::create(o.planOf ? o.planOf(stage, groupRank)
                                      : chainStagePlan(spec, stage, groupRank),
                             *backend, group.get());
  if (!ex.ok())
    return ex.status();
  (*ex)->initParams(kSeed);
  auto driver = PipelineDriver::create(w->get(), **ex);
  if (!driver.ok())
    return driver.status();
  std::vector<float> losses;
  for (int s = 0; s < o.steps; ++s) {
    if (rank == o.dieRank && s + 1 == o.dieAtStep)
      _exit(9);
    auto loss = (*driver)->trainStep(chainBatch(spec, s), kSeed, s + 1);
    if (!loss.ok())
      return loss.status();
    losses.push_back(float(*loss));
  }
  std::ofstream(absl::StrCat(dir, "/peak", rank))
      << (*driver)->stats().peakSlots << " " << (*ex)->stashSlots() << " "
      << ((*driver)->stats().busySeconds > 0) << " "
      << ((*driver)->stats().idleSeconds >= 0);
  if (rank == world - 1) // every rank gets the step's loss
    writeFloats(dir + "/last.losses", losses);
  auto eval = (*driver)->evalBatch(chainBatch(spec, 99), kSeed);
  if (!eval.ok())
    return eval.status();
  if (rank == 0) {
    writeFloats(dir + "/pipe.losses", losses);
    writeFloats(dir + "/pipe.logits", eval->logits);
  } else if (!eval->logits.empty()) {
    return absl::InternalError("evalBatch returned logits off rank 0");
  }
  return (*driver)->saveParams(dir + "/pipe.safetensors");
}

struct Case {
  std::string name;
  ChainSpec spec;
};
void PrintTo(const Case &c, std::ostream *os) { *os << c.name; }

class PipelineEquivalence : public ::testing::TestWithParam<Case> {};

TEST_P(PipelineEquivalence, TrainsLikeTheSerialRun) {
  const ChainSpec &spec = GetParam().spec;
  const int steps = 3, G = spec.groupSize, p = chainStages(spec);
  const int world = p * G, port = freePort();
  const std::string dir = tempDir("eq");
  runSerial(spec, steps, dir);
  RankOptions o;
  o.steps = steps;
  auto results = runRanks(
      world, [&](int r) { return pipelineRank(spec, o, dir, port, r); });
  for (int r = 0; r < world; ++r)
    ASSERT_EQ(results[r].exitCode, 0) << describe(results);

  const std::vector<float> want = readFloats(dir + "/serial.losses"),
                           got = readFloats(dir + "/pipe.losses"),
                           last = readFloats(dir + "/last.losses");
  ASSERT_EQ(got.size(), size_t(steps));
  ASSERT_EQ(want.size(), size_t(steps));
  EXPECT_EQ(got, last) << "every rank returns the same loss";
  for (int s = 0; s < steps; ++s)
    EXPECT_NEAR(got[s], want[s], 1e-5 * std::fabs(want[s])) << "step " << s;
  EXPECT_GT(std::fabs(want.front() - want.back()), 1e-3) << "did not train";

  auto a = io::readSafetensors(dir + "/serial.safetensors");
  auto b = io::readSafetensors(dir + "/pipe.safetensors");
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(a->tensors().size(), b->tensors().size());
  for (const io::TensorEntry &t : a->tensors()) {
    auto x = a->readF32(t.name, t.shape);
    auto y = b->readF32(t.name, t.shape);
    ASSERT_TRUE(x.ok() && y.ok()) << t.name;
    for (size_t i = 0; i < x->size(); ++i)
      EXPECT_NEAR((*x)[i], (*y)[i], 1e-5) << t.name << "[" << i << "]";
  }
  const std::vector<float> e1 = readFloats(dir + "/serial.logits"),
                           e2 = readFloats(dir + "/pipe.logits");
  ASSERT_EQ(e1.size(), size_t(spec.batch * spec.dims.back()));
  ASSERT_EQ(e2.size(), e1.size());
  for (size_t i = 0; i < e1.size(); ++i)
    EXPECT_NEAR(e1[i], e2[i], 1e-5) << "logit " << i;

  // Each stage held at most the schedule's slots, and all of them: with
  // more microbatches than slots, slots were reused.
  const int m = int(spec.microbatches.size());
  for (int r = 0; r < world; ++r) {
    std::ifstream in(absl::StrCat(dir, "/peak", r));
    int peak = -1, slots = -1, busy = 0, idle = 0;
    in >> peak >> slots >> busy >> idle;
    const int want = plan::stashSlots(spec.schedule, r / G, p, m);
    EXPECT_EQ(slots, want) << "rank " << r;
    EXPECT_EQ(peak, want) << "rank " << r;
    EXPECT_TRUE(busy && idle) << "rank " << r;
  }
  fs::remove_all(dir);
}

ChainSpec spec(std::vector<int64_t> dims, std::vector<int> starts,
               std::vector<int64_t> micro, std::string schedule,
               int group = 1) {
  ChainSpec s;
  s.dims = std::move(dims);
  s.stageStart = std::move(starts);
  s.microbatches = std::move(micro);
  s.schedule = std::move(schedule);
  s.groupSize = group;
  return s;
}

INSTANTIATE_TEST_SUITE_P(
    Plans, PipelineEquivalence,
    ::testing::Values(Case{"TwoStagesGpipeUneven",
                           spec({4, 5, 3}, {0, 1}, {3, 2, 1}, "gpipe")},
                      Case{"TwoStages1f1bUneven",
                           spec({4, 5, 3}, {0, 1}, {3, 2, 1}, "1f1b")},
                      Case{"ThreeStages1f1b",
                           spec({4, 5, 6, 3}, {0, 1, 2}, {2, 2, 1, 1}, "1f1b")},
                      Case{"ThreeStagesGpipeTwoLayers",
                           spec({4, 5, 6, 7, 3}, {0, 2, 3}, {2, 4}, "gpipe")},
                      Case{"TwoStagesOfTwoRanks1f1b",
                           spec({4, 5, 6, 3}, {0, 2}, {2, 4}, "1f1b", 2)}),
    [](const auto &info) { return info.param.name; });

// A stage that dies mid-step makes every other rank fail, naming it, well
// within the communicator's timeout.
void expectDeathNamed(int dieRank) {
  const ChainSpec s = spec({4, 5, 6, 3}, {0, 1, 2}, {2, 2, 2}, "1f1b");
  const std::string dir = tempDir("die");
  RankOptions o;
  o.steps = 4;
  o.dieRank = dieRank;
  o.dieAtStep = 2;
  o.timeoutS = 20;
  const int port = freePort();
  auto results = runRanks(
      3, [&](int r) { return pipelineRank(s, o, dir, port, r); },
      std::chrono::seconds(40));
  EXPECT_EQ(results[dieRank].exitCode, 9) << describe(results);
  // Rank 0 hosts the rendezvous store: its loss is reported as the master's.
  const std::string named =
      dieRank == 0 ? std::string("rank 0 (master 127.0.0.1:")
                   : absl::StrCat("rank ", dieRank, " (127.0.0.1, pid ");
  for (int r = 0; r < 3; ++r) {
    if (r == dieRank)
      continue;
    EXPECT_EQ(results[r].exitCode, 1) << describe(results);
    EXPECT_LT(results[r].seconds, 15) << describe(results);
    EXPECT_TRUE(absl::StrContains(results[r].message, named))
        << "rank " << r << " does not name the dead rank:\n"
        << describe(results);
    EXPECT_TRUE(absl::StrContains(
        results[r].message,
        absl::StrCat("stage ", r, " (world rank ", r, "): step 2")))
        << describe(results);
  }
  fs::remove_all(dir);
}

TEST(PipelineFaults, LastStageDiesAndEveryRankNamesIt) { expectDeathNamed(2); }

TEST(PipelineFaults, MiddleStageDiesAndEveryRankNamesIt) {
  expectDeathNamed(1);
}

TEST(PipelineFaults, FirstStageDiesAndEveryRankNamesIt) { expectDeathNamed(0); }

TEST(PipelineFaults, StagesFromDifferentCompilesAreRefusedOnBothSides) {
  const ChainSpec s = spec({4, 5, 3}, {0, 1}, {3, 2, 1}, "1f1b");
  ChainSpec other = s;
  other.microbatches = {2, 2, 2};
  RankOptions o;
  o.planOf = [&](int stage, int groupRank) {
    return chainStagePlan(stage == 0 ? s : other, stage, groupRank);
  };
  const std::string dir = tempDir("mismatch");
  const int port = freePort();
  auto results = runRanks(2, [&](int r) {
    // Stage 1's plan has a different batch split: its own checks pass.
    return pipelineRank(r == 0 ? s : other, o, dir, port, r);
  });
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(results[r].exitCode, 1) << describe(results);
    EXPECT_TRUE(absl::StrContains(
        results[r].message,
        "stage 0 sends {1f1b schedule, 2 stages of 1, microbatches [3,2,1]"))
        << describe(results);
    EXPECT_TRUE(absl::StrContains(
        results[r].message,
        "but stage 1 expects {1f1b schedule, 2 stages of 1, microbatches "
        "[2,2,2]"))
        << describe(results);
    EXPECT_TRUE(absl::StrContains(
        results[r].message, "compile every stage's plan in one galaxyc run"))
        << describe(results);
  }
  fs::remove_all(dir);
}

TEST(SliceBatch, TakesRows) {
  io::Batch b;
  b.size = 3;
  b.seqLen = 2;
  b.ints("input_ids") = {1, 2, 3, 4, 5, 6};
  b.floats("attention_mask") = {1, 1, 1, 0, 0, 0};
  b.ints("labels") = {7, 8, 9};
  io::Batch s = sliceBatch(b, 1, 2);
  EXPECT_EQ(s.size, 2);
  EXPECT_EQ(s.seqLen, 2);
  EXPECT_EQ(s.ints("input_ids"), (std::vector<int32_t>{3, 4, 5, 6}));
  EXPECT_EQ(s.floats("attention_mask"), (std::vector<float>{1, 0, 0, 0}));
  EXPECT_TRUE(s.ints("token_type_ids").empty());
  EXPECT_EQ(s.ints("labels"), (std::vector<int32_t>{8, 9}));
}

// A batch is fields by name: any field slices, whatever the model calls it.
TEST(SliceBatch, TakesFieldsOfAnyName) {
  io::Batch b;
  b.size = 2;
  b.ints("decoder_input_ids") = {1, 2, 3, 4};
  io::Batch s = sliceBatch(b, 1, 1);
  EXPECT_EQ(s.ints("decoder_input_ids"), (std::vector<int32_t>{3, 4}));
}

// A value of the whole batch (a causal LM's num_targets, which every
// microbatch's loss divides by) goes whole to every microbatch; sliced by
// rows it would be empty.
TEST(SliceBatch, PassesWholeFieldsWhole) {
  io::Batch b;
  b.size = 3;
  b.ints("labels") = {7, 8, 9};
  b.floats("num_targets") = {11};
  io::Batch s = sliceBatch(b, 1, 2, {"num_targets"});
  EXPECT_EQ(s.ints("labels"), (std::vector<int32_t>{8, 9}));
  EXPECT_EQ(s.floats("num_targets"), (std::vector<float>{11}));
  EXPECT_FALSE(s.find("num_targets")->isInt);
  EXPECT_TRUE(sliceBatch(b, 1, 2).floats("num_targets").empty());
}

// The driver passes whole the batch fields the plan reads as 0-d inputs.
TEST(SliceBatch, WholeFieldsAreThePlansZeroDimInputs) {
  plan::Plan p;
  auto input = [&](const char *name, std::vector<int64_t> shape,
                   std::vector<int64_t> global) {
    plan::Buffer *buf = p.add_buffers();
    buf->set_id(p.buffers_size() - 1);
    for (int64_t d : shape)
      buf->add_shape(d);
    for (int64_t d : global)
      buf->add_global_shape(d);
    plan::Binding *bind = p.mutable_programs(0)->add_inputs();
    bind->set_name(name);
    bind->set_buffer(buf->id());
  };
  p.add_programs()->set_name("train_fwd.b2");
  input("num_targets", {}, {});
  input("labels", {2}, {});
  input("last_token", {1}, {2}); // a DP slice of [B]
  EXPECT_EQ(pipeline_detail::wholeBatchFields(p),
            (std::set<std::string>{"num_targets"}));
}

// Plan inputs are checked by name at load: one the data cannot provide is
// refused, naming it; pp.* and tap.* have their own checks.
TEST(PlanInputs, RefusesAnInputTheDataLacks) {
  plan::Plan p;
  plan::Program *prog = p.add_programs();
  prog->set_name("train_step");
  for (const char *n : {"input_ids", "labels", "pp.in.0", "tap.layer.0"})
    prog->add_inputs()->set_name(n);
  EXPECT_TRUE(checkPlanInputs(p, io::textFields()).ok());
  prog->add_inputs()->set_name("decoder_input_ids");
  absl::Status st = checkPlanInputs(p, io::textFields());
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(st.message(), "'train_step' reads input "
                                              "'decoder_input_ids'"))
      << st.message();
}

} // namespace
} // namespace galaxy::rt::testing
