#include "tools/galaxy-run/run_pipeline.h"

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/comm/communicator.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/lora_merge.h"
#include "runtime/exec/pipeline_driver.h"

namespace galaxy::run {

namespace {

// Options the pipeline path does not implement, refused before anyone
// waits on a rendezvous.
void refuseUnsupported(const Args &args) {
  auto refuse = [](const std::string &what, const std::string &why) {
    fail(2, absl::StrCat(what, " is not available for pipeline plans: ", why));
  };
  if (args.backend != "cpu")
    refuse("--backend " + args.backend,
           "they run on the CPU backend; drop --backend or compile the model "
           "without pipeline stages");
  if (!args.dumpTaps.empty() || !args.taps.empty() || !args.evalTaps.empty())
    refuse("--dump-taps / --taps / --eval-taps",
           "side tuning with taps needs the whole backbone in one plan; "
           "compile it without pipeline stages");
  if (!args.profileJson.empty() || !args.profileSvg.empty() ||
      !args.profileStatic.empty())
    refuse("--profile-json / --profile-svg / --profile-static",
           "use --profile, which prints each stage's busy and idle time and "
           "activation memory");
}

// --profile: every rank's busy / idle time and memory, gathered; rank 0
// prints one line per rank.
void reportProfile(const rt::PipelineDriver &driver, const rt::Executor &ex,
                   comm::Communicator *world, double measuredS,
                   int64_t measuredSteps, bool warmUpDropped, bool lead) {
  const rt::PipelineStats &st = driver.stats();
  constexpr size_t kFields = 9;
  const std::vector<float> mine = {
      float(driver.stage()), float(ex.plan().rank()),
      float(st.busySeconds), float(st.idleSeconds),
      float(measuredS),      float(measuredSteps),
      float(st.peakSlots),   float(ex.stashSlotBytes()),
      float(ex.arenaBytes())};
  const int n = world ? world->size() : 1;
  std::vector<float> all(kFields * n);
  if (world) {
    if (absl::Status s = world->allGatherV(mine.data(), kFields, all.data(),
                                           std::vector<size_t>(n, kFields));
        !s.ok())
      fail(1, absl::StrCat("gathering the profile: ", s.message()));
  } else {
    all = mine;
  }
  if (!lead)
    return;
  auto bytes = [](double b) {
    return b >= 1 << 20 ? absl::StrFormat("%.2f MiB", b / (1 << 20))
           : b >= 1024  ? absl::StrFormat("%.2f KiB", b / 1024)
                        : absl::StrFormat("%.0f B", b);
  };
  std::cerr << absl::StrFormat(
      "pipeline profile: %d measured steps%s\n"
      "  stage rank    busy s    idle s  idle  step ms  activation memory "
      "(peak slots x slot + arena)\n",
      measuredSteps, warmUpDropped ? " (step 1 dropped as warm-up)" : "");
  for (int r = 0; r < n; ++r) {
    const float *f = &all[kFields * r];
    const double busy = f[2], idle = f[3], wall = f[4], steps = f[5];
    const double slots = f[6], slot = f[7], arena = f[8];
    // Idle: blocked on a neighbour stage (the bubble), of the wall time.
    std::cerr << absl::StrFormat(
        "  %5d %4d %9.4f %9.4f %4.0f%% %8.1f  %.0f x %s + %s = %s\n", int(f[0]),
        int(f[1]), busy, idle, wall > 0 ? 100 * idle / wall : 0.0,
        steps > 0 ? 1000 * wall / steps : 0.0, slots, bytes(slot), bytes(arena),
        bytes(slots * slot + arena));
  }
}

void writeSave(rt::PipelineDriver &driver, const Args &args,
               const plan::Plan &plan, bool lead) {
  if (!args.save.empty()) {
    if (absl::Status s = driver.saveParams(args.save); !s.ok())
      fail(1, std::string(s.message()));
    if (lead)
      std::cerr << "galaxy-run: saved weights to " << args.save << "\n";
  }
  if (!args.saveMerged.empty()) {
    // Gather every stage like --save, then fold on rank 0.
    const std::string unmerged = args.saveMerged + ".unmerged.tmp";
    if (absl::Status s = driver.saveParams(unmerged); !s.ok())
      fail(1, std::string(s.message()));
    if (lead) {
      absl::Status s =
          rt::writeMergedLora(unmerged, plan.config_json(), args.saveMerged);
      std::remove(unmerged.c_str());
      if (!s.ok())
        fail(1, std::string(s.message()));
      std::cerr << "galaxy-run: saved merged weights to " << args.saveMerged
                << "\n";
    }
  }
}

} // namespace

int runPipelineRank(const Args &args, const rt::LaunchInfo &launch,
                    const std::string &planFile, plan::Plan plan) {
  const plan::Pipeline pp = plan.pipeline();
  const int stages = pp.num_stages(), group = std::max(pp.group_size(), 1);
  const int world = stages * group, rank = launch.rank;
  const int expected = pp.stage() * group + plan.rank();
  const bool lead = rank == 0;
  // Refuse a mismatched plan before anyone waits on a rendezvous.
  const std::string shape = absl::StrCat(stages, " pipeline stages of ", group,
                                         group == 1 ? " rank" : " ranks");
  if (world > 1 && launch.source == "default")
    fail(2, absl::StrCat(planFile, " is stage ", pp.stage(), " of ", shape,
                         "; run the plan with --nproc ", world,
                         ", or start each rank with --rank R --world ", world,
                         " --master HOST:PORT (or torchrun's RANK/WORLD_SIZE/"
                         "MASTER_ADDR/MASTER_PORT)"));
  if (launch.world != world)
    fail(2, absl::StrCat("plan ", planFile, " has ", shape, ", so it runs on ",
                         world, world == 1 ? " rank" : " ranks",
                         ", but this process is rank ", rank, " of ",
                         launch.world, "; run ", world, " ranks"));
  if (expected != rank)
    fail(2, absl::StrCat("plan ", planFile, " is for world rank ", expected,
                         " (stage ", pp.stage(), ", rank ", plan.rank(),
                         " of its stage) but this process is rank ", rank,
                         "; the plan directory holds plans of different "
                         "compiles: recompile it"));
  refuseUnsupported(args);
  const plan::ModelInfo model = plan.model();
  RunInputs inputs = loadInputs(args, plan, lead);

  std::unique_ptr<comm::Communicator> worldComm, groupComm;
  if (world > 1) {
    comm::CommOptions co;
    co.rank = rank;
    co.world = world;
    co.masterHost = launch.masterHost;
    co.masterPort = launch.masterPort;
    co.timeout = std::chrono::milliseconds(int64_t(args.timeoutS * 1000));
    auto c = comm::connectGloo(co);
    if (!c.ok())
      fail(1, absl::StrCat("rank ", rank, " of ", world,
                           " cannot join the group at ", launch.masterHost, ":",
                           launch.masterPort, ": ", c.status().message()));
    worldComm = std::move(*c);
  }
  // The stage's SPMD group: `group` consecutive world ranks; the executor's
  // collectives run on it.
  if (group > 1) {
    std::vector<int> members;
    for (int r = 0; r < group; ++r)
      members.push_back(pp.stage() * group + r);
    auto g = worldComm->split(members);
    if (!g.ok())
      fail(1, absl::StrCat("rank ", rank, ": joining the group of stage ",
                           pp.stage(), ": ", g.status().message()));
    groupComm = std::move(*g);
  }

  std::unique_ptr<rt::Backend> backend = rt::makeCpuBackend();
  if (lead)
    std::cerr << "galaxy-run: backend " << backend->name() << "; "
              << backend->gemmDescription() << "; " << shape << ", "
              << (pp.schedule().empty() ? "gpipe" : pp.schedule())
              << " schedule, microbatches ["
              << absl::StrJoin(pp.microbatch_sizes(), ", ") << "]\n";
  auto exOr = rt::Executor::create(std::move(plan), *backend, groupComm.get(),
                                   "plan " + planFile);
  if (!exOr.ok())
    fail(2, std::string(exOr.status().message()));
  rt::Executor &ex = **exOr;
  if (inputs.init) {
    if (absl::Status s = ex.loadParams(*inputs.init); !s.ok())
      fail(2, std::string(s.message()));
    inputs.init.reset(); // unmap the checkpoint
  } else {
    ex.initParams(args.seed);
  }
  auto driverOr = rt::PipelineDriver::create(worldComm.get(), ex);
  if (!driverOr.ok())
    fail(2, absl::StrCat("rank ", rank, ": ", driverOr.status().message()));
  rt::PipelineDriver &driver = **driverOr;

  double profiledS = 0; // wall time of the measured (post-warm-up) steps
  int64_t profiledSteps = 0;
  bool warmUpDropped = false;
  if (inputs.train) {
    const io::Dataset &train = *inputs.train;
    const int64_t B = model.batch_size();
    const int64_t steps = trainingSteps(args, B, train.size());
    const int64_t faultRank = envInt("GALAXY_TEST_FAULT_RANK", 1);
    const int64_t dieAt = envInt("GALAXY_TEST_DIE_AT_STEP", -1);
    const int64_t hangAt = envInt("GALAXY_TEST_HANG_AT_STEP", -1);
    StepLog log(args, steps, B, train.size(), lead, inputs.metrics);
    for (int64_t s = 0; s < steps; ++s) {
      if (rank == faultRank && s + 1 == dieAt)
        _exit(9); // test hook: a crash without any goodbye
      while (rank == faultRank && s + 1 == hangAt)
        pause(); // test hook: alive but silent
      const auto ts = std::chrono::steady_clock::now();
      auto loss = driver.trainStep(train.batch(s, B), args.seed, s + 1);
      if (!loss.ok())
        fail(1, std::string(loss.status().message()));
      const double stepS =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - ts)
              .count();
      if (args.profile && s == 0 && steps > 2) {
        driver.resetStats(); // step 1 warms caches and GEMM plans up
        warmUpDropped = true;
      } else {
        profiledS += stepS;
        ++profiledSteps;
      }
      log.record(s, *loss, stepS);
    }
  }
  if (args.profile)
    reportProfile(driver, ex, worldComm.get(), profiledS, profiledSteps,
                  warmUpDropped, lead);
  writeSave(driver, args, ex.plan(), lead);
  if (inputs.eval) {
    const io::Dataset &data = *inputs.eval;
    const int64_t B = model.batch_size(), C = model.num_classes();
    EvalTally tally(C);
    for (int64_t start = 0; start < data.size(); start += B) {
      // The plan's batch is fixed: the last partial batch wraps and the
      // extra rows are ignored.
      io::Batch batch = data.batch(start / B, B);
      auto out = driver.evalBatch(batch, args.seed);
      if (!out.ok())
        fail(1, std::string(out.status().message()));
      if (lead)
        for (int64_t r = 0; r < B && start + r < data.size(); ++r)
          tally.add(&out->logits[r * C], batch.ints("labels")[r]);
    }
    if (lead)
      tally.report(args);
  }
  // Leave together, so no rank tears down a connection a peer still reads.
  if (worldComm)
    if (absl::Status s = worldComm->barrier(); !s.ok())
      fail(1, absl::StrCat("rank ", rank, ": final barrier: ", s.message()));
  return 0;
}

} // namespace galaxy::run
