#include "tools/galaxy-run/run_pipeline.h"

#include <chrono>
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/comm/communicator.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/pipeline_driver.h"
#include "runtime/exec/trainer.h"
#include "tools/galaxy-run/checkpoints.h"
#include "tools/galaxy-run/job_agreement.h"
#include "tools/galaxy-run/predict.h"
#include "tools/galaxy-run/profile_report.h"

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

} // namespace

int runPipelineRank(Args args, const rt::LaunchInfo &launch,
                    const std::string &planFile, plan::Plan plan) {
  const plan::Pipeline pp = plan.pipeline();
  const int stages = pp.num_stages(), group = std::max(pp.group_size(), 1);
  const int world = stages * group, rank = launch.rank;
  const int expected = pp.stage() * group + plan.rank();
  const bool lead = rank == 0;
  if (!args.generate.empty() || !args.prompts.empty())
    fail(2, "--generate/--prompt: pipeline plans cannot generate yet (their "
            "stages hold no prefill/decode programs); compile the config in "
            "an SPMD mode (galaxyc --mode serial, dp, tp, sp or galaxy) and "
            "generate with that plan");
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
  if (lead)
    checkCheckpointDir(args);
  RunCheckpoints checkpoints(args, plan,
                             inputs.train ? &*inputs.train : nullptr, lead);

  std::unique_ptr<comm::Communicator> worldComm, groupComm;
  if (world > 1) {
    comm::CommOptions co;
    co.rank = rank;
    co.world = world;
    co.masterHost = launch.masterHost;
    co.masterPort = launch.masterPort;
    co.timeout = std::chrono::milliseconds(int64_t(args.timeoutS * 1000));
    co.token = jobToken(args);
    if (co.token.empty() && lead)
      warnWithoutToken(absl::StrCat(launch.masterHost, ":", launch.masterPort));
    co.facts = jobFacts(args, plan);
    comm::JoinFacts leadFacts;
    co.leadFacts = &leadFacts;
    auto c = comm::connectGloo(co);
    if (!c.ok())
      fail(joinExitCode(c.status()),
           absl::StrCat("rank ", rank, " of ", world,
                        " cannot join the group at ", launch.masterHost, ":",
                        launch.masterPort, ": ", c.status().message()));
    worldComm = std::move(*c);
    adoptLeadRoles(args, leadFacts, rank);
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
  if (checkpoints.resuming())
    checkpoints.load(ex);
  else
    initWeights(ex, inputs, args);
  auto driverOr = rt::PipelineDriver::create(worldComm.get(), ex);
  if (!driverOr.ok())
    fail(2, absl::StrCat("rank ", rank, ": ", driverOr.status().message()));
  rt::PipelineDriver &driver = **driverOr;

  rt::PipelineSteps steps(driver);
  rt::TrainerOptions topts = trainerOptions(args, model, rank);
  checkpoints.attach(topts, steps, worldComm.get());
  rt::Trainer trainer(steps, std::move(topts));
  if (inputs.train)
    trainWithLog(trainer, args, model, *inputs.train, lead, inputs.metrics);
  checkpoints.finish();
  if (args.profile)
    reportPipelineProfile(driver, ex, worldComm.get(),
                          trainer.measuredSeconds(), trainer.measuredSteps(),
                          trainer.warmUpDropped(), lead);
  saveWeights(trainer, args, ex.plan(), inputs.peft, lead);
  if (inputs.eval)
    evaluateWithReport(trainer, args, *inputs.eval, lead);
  if (inputs.predict)
    predictWithReport(trainer, args, *inputs.predict, lead);
  // Leave together, so no rank tears down a connection a peer still reads.
  if (worldComm)
    if (absl::Status s = worldComm->barrier(); !s.ok())
      fail(1, absl::StrCat("rank ", rank, ": final barrier: ", s.message()));
  return 0;
}

} // namespace galaxy::run
