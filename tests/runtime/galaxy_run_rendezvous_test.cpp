// galaxy-run against issue 19's rendezvous findings, as real processes on
// loopback with plans galaxyc compiles: a stranger cannot take a rank's place
// (finding 1), ranks of different compiles or flags are refused naming the
// difference and --save on rank 0 alone works (finding 4), and the launcher
// names a stopped rank and an interrupted job for what they are (finding 8).
// Store limits (finding 2) are tested on the store itself
// (tests/comm/tcp_store_test.cpp).
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "runtime/comm/socket_io.h"
#include "tests/runtime/subprocess.h"
#include "gtest/gtest.h"

#if !defined(GALAXY_RUN_PATH) || !defined(GALAXYC_PATH) ||                     \
    !defined(GALAXY_CONFIGS)
#error "GALAXY_RUN_PATH, GALAXYC_PATH and GALAXY_CONFIGS must be defined"
#endif

namespace galaxy::rt::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kData =
    std::string(GALAXY_CONFIGS) + "/data/demo/train.jsonl";

std::string readFile(const std::string &p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

class Rendezvous : public ::testing::Test {
protected:
  // Plans are compiled once for the suite: tiny BERT over 2 ranks, tp at
  // lr 0.001 and 0.5, and galaxy.
  static void SetUpTestSuite() {
    dir_ = (fs::temp_directory_path() /
            absl::StrCat("galaxy-rendezvous-test-", getpid()))
               .string();
    fs::create_directories(dir_);
    const std::string base =
        readFile(std::string(GALAXY_CONFIGS) + "/bert/tiny.json");
    std::ofstream(dir_ + "/lr.json") << absl::StrReplaceAll(
        base, {{"\"learning_rate\": 0.001", "\"learning_rate\": 0.5"}});
    for (auto [name, config, mode] :
         {std::tuple{"tp", std::string(GALAXY_CONFIGS) + "/bert/tiny.json",
                     "tp"},
          std::tuple{"tp_lr", dir_ + "/lr.json", "tp"},
          std::tuple{"tp_again",
                     std::string(GALAXY_CONFIGS) + "/bert/tiny.json", "tp"},
          std::tuple{"galaxy", std::string(GALAXY_CONFIGS) + "/bert/tiny.json",
                     "galaxy"}}) {
      ProcResult r = run({GALAXYC_PATH, config, "--mode", mode, "--world", "2",
                          "-o", dir_ + "/" + name},
                         {}, 120s);
      ASSERT_EQ(r.exitCode, 0) << r.output;
    }
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static std::string plan(const std::string &name) { return dir_ + "/" + name; }

  // galaxy-run PLAN --rank R --world 2 --master 127.0.0.1:PORT ...
  std::vector<std::string> rank(const std::string &planName, int r,
                                std::vector<std::string> extra = {}) const {
    std::vector<std::string> c = {GALAXY_RUN_PATH, plan(planName),
                                  "--data",        kData,
                                  "--steps",       "3",
                                  "--rank",        std::to_string(r),
                                  "--world",       "2",
                                  "--master",      master_};
    c.insert(c.end(), extra.begin(), extra.end());
    return c;
  }

  void SetUp() override {
    master_ = absl::StrCat("127.0.0.1:", comm::freeLoopbackPort());
    out_ =
        (fs::path(dir_) /
         absl::StrCat(
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
            .string();
    fs::create_directories(out_);
  }

  static inline std::string dir_;
  std::string master_, out_;
};

const std::vector<std::string> kToken = {"GALAXY_JOB_TOKEN=job-secret-1"};

// Finding 1: with rank 0 started by hand, another process joined as rank 1
// first with a plan of another learning rate: rank 0 trained with it and
// saved the weights. Now the stranger is refused — without the token at the
// store, with it at its claim (another compile) — and the real rank 1 then
// joins, so the job finishes normally.
TEST_F(Rendezvous, StrangerCannotTakeARanksPlace) {
  const std::string save = out_ + "/w.safetensors";
  Subprocess r0(rank("tp", 0, {"--save", save, "--timeout", "30"}), kToken);
  ProcResult noToken = run(rank("tp_lr", 1, {"--timeout", "10"}), {}, 30s);
  EXPECT_EQ(noToken.exitCode, 2) << noToken.output;
  EXPECT_TRUE(
      absl::StrContains(noToken.output, "refused this rank's job token"))
      << noToken.output;
  ProcResult otherPlan =
      run(rank("tp_lr", 1, {"--timeout", "10"}), kToken, 30s);
  EXPECT_EQ(otherPlan.exitCode, 2) << otherPlan.output;
  EXPECT_TRUE(absl::StrContains(
      otherPlan.output,
      "its config learning_rate '0.5' differs from rank 0's '0.001'"))
      << otherPlan.output;
  ProcResult r1 = run(rank("tp", 1, {"--timeout", "30"}), kToken, 60s);
  ProcResult lead = r0.wait(60s);
  EXPECT_EQ(r1.exitCode, 0) << r1.output;
  ASSERT_EQ(lead.exitCode, 0) << lead.output;
  EXPECT_TRUE(fs::exists(save));
  // Rank 0 reported both refusals, without the token.
  EXPECT_TRUE(absl::StrContains(lead.output, "wrong job token")) << lead.output;
  EXPECT_TRUE(absl::StrContains(lead.output, "refused a rank 1"))
      << lead.output;
  EXPECT_FALSE(absl::StrContains(lead.output + r1.output, "job-secret-1"));
  EXPECT_FALSE(absl::StrContains(lead.output, "no job token"));
}

// Finding 4: plans of two compiles (lr 0.001 / 0.5) ran together silently.
TEST_F(Rendezvous, PlansOfTwoCompilesAreRefusedNamingTheDifference) {
  Subprocess r0(rank("tp", 0, {"--timeout", "4"}), kToken);
  ProcResult r1 = run(rank("tp_lr", 1, {"--timeout", "60"}), kToken, 30s);
  ProcResult lead = r0.wait(30s);
  EXPECT_EQ(r1.exitCode, 2) << r1.output;
  EXPECT_TRUE(absl::StrContains(
      r1.output, "its config learning_rate '0.5' differs from rank 0's "
                 "'0.001'"))
      << r1.output;
  EXPECT_TRUE(absl::StrContains(r1.output, "its plan compile id '"))
      << r1.output;
  EXPECT_LT(r1.seconds, 20) << "refused at once, not after --timeout";
  // Rank 0 waits for a rank 1 it can use, and says why none came.
  EXPECT_EQ(lead.exitCode, 1) << lead.output;
  EXPECT_TRUE(absl::StrContains(lead.output, "was refused: rank 1"))
      << lead.output;
}

// Finding 4: tp and galaxy plans mixed hung for 60 s.
TEST_F(Rendezvous, TpAndGalaxyPlansMixedAreRefusedAtOnce) {
  Subprocess r0(rank("tp", 0, {"--timeout", "60"}), kToken);
  ProcResult r1 = run(rank("galaxy", 1, {"--timeout", "60"}), kToken, 40s);
  r0.kill();
  EXPECT_EQ(r1.exitCode, 2) << r1.output;
  EXPECT_TRUE(absl::StrContains(
      r1.output,
      "its config parallel_mode 'galaxy' differs from rank 0's 'tp'"))
      << r1.output;
  EXPECT_LT(r1.seconds, 20) << r1.output;
}

// Finding 4: --save given to rank 0 only hung both ranks for the whole
// timeout, then discarded the weights. Rank 1 now takes part in rank 0's
// save; a --save given to rank 1 only is rank 0's to decide (none).
TEST_F(Rendezvous, SaveGivenToRankZeroOnlyIsCarriedOut) {
  const std::string save = out_ + "/w.safetensors";
  Subprocess r0(rank("tp", 0, {"--save", save, "--timeout", "20"}), kToken);
  ProcResult r1 = run(rank("tp", 1, {"--timeout", "20"}), kToken, 60s);
  ProcResult lead = r0.wait(60s);
  EXPECT_EQ(r1.exitCode, 0) << r1.output;
  ASSERT_EQ(lead.exitCode, 0) << lead.output;
  EXPECT_TRUE(absl::StrContains(lead.output, "saved weights to " + save));
  EXPECT_GT(fs::file_size(save), 1000u);

  const std::string only1 = out_ + "/only1.safetensors";
  Subprocess s0(rank("tp", 0, {"--timeout", "20"}), kToken);
  ProcResult s1 =
      run(rank("tp", 1, {"--save", only1, "--timeout", "20"}), kToken, 60s);
  ProcResult lead2 = s0.wait(60s);
  EXPECT_EQ(s1.exitCode, 0) << s1.output;
  EXPECT_EQ(lead2.exitCode, 0) << lead2.output;
  EXPECT_TRUE(absl::StrContains(s1.output, "--save is rank 0's to carry out"))
      << s1.output;
  EXPECT_FALSE(fs::exists(only1));
}

// The compile id is a hash of the plans (serialized deterministically), so
// ranks that compiled the same config separately — each host its own copy —
// still join.
TEST_F(Rendezvous, RecompiledPlansOfOneConfigJoin) {
  Subprocess r0(rank("tp", 0, {"--timeout", "20"}), kToken);
  ProcResult r1 = run(rank("tp_again", 1, {"--timeout", "20"}), kToken, 60s);
  ProcResult lead = r0.wait(60s);
  EXPECT_EQ(r1.exitCode, 0) << r1.output;
  EXPECT_EQ(lead.exitCode, 0) << lead.output;
}

// Other flags that change what every rank computes are compared too.
TEST_F(Rendezvous, DifferingFlagsAreNamed) {
  Subprocess r0(rank("tp", 0, {"--timeout", "4", "--seed", "1"}), kToken);
  ProcResult r1 =
      run(rank("tp", 1, {"--timeout", "30", "--seed", "2"}), kToken, 30s);
  r0.wait(30s);
  EXPECT_EQ(r1.exitCode, 2) << r1.output;
  EXPECT_TRUE(
      absl::StrContains(r1.output, "its --seed '2' differs from rank 0's '1'"))
      << r1.output;
}

// A manual multi-rank launch without a token works but warns; --nproc
// makes a token per run, so it does not.
TEST_F(Rendezvous, MissingTokenWarnsAndNprocMakesOne) {
  Subprocess r0(rank("tp", 0, {"--timeout", "20"}));
  ProcResult r1 = run(rank("tp", 1, {"--timeout", "20"}), {}, 60s);
  ProcResult lead = r0.wait(60s);
  EXPECT_EQ(lead.exitCode, 0) << lead.output;
  EXPECT_EQ(r1.exitCode, 0) << r1.output;
  EXPECT_TRUE(absl::StrContains(lead.output, "this job has no job token"))
      << lead.output;
  ProcResult local = run({GALAXY_RUN_PATH, plan("tp"), "--data", kData,
                          "--steps", "2", "--nproc", "2"},
                         {}, 60s);
  EXPECT_EQ(local.exitCode, 0) << local.output;
  EXPECT_FALSE(absl::StrContains(local.output, "no job token")) << local.output;
}

// --job-token-file: its content (trailing whitespace dropped) is the token,
// equal to the same secret in GALAXY_JOB_TOKEN; another file's is refused.
TEST_F(Rendezvous, TokenFileIsTheToken) {
  std::ofstream(out_ + "/a.token") << "alpha-secret\n";
  std::ofstream(out_ + "/b.token") << "beta-secret";
  Subprocess r0(rank(
      "tp", 0, {"--timeout", "20", "--job-token-file", out_ + "/a.token"}));
  ProcResult wrong = run(
      rank("tp", 1, {"--timeout", "20", "--job-token-file", out_ + "/b.token"}),
      {}, 30s);
  EXPECT_EQ(wrong.exitCode, 2) << wrong.output;
  EXPECT_TRUE(absl::StrContains(wrong.output, "refused this rank's job token"))
      << wrong.output;
  ProcResult r1 = run(rank("tp", 1, {"--timeout", "20"}),
                      {"GALAXY_JOB_TOKEN=alpha-secret"}, 60s);
  ProcResult lead = r0.wait(60s);
  EXPECT_EQ(r1.exitCode, 0) << r1.output;
  EXPECT_EQ(lead.exitCode, 0) << lead.output;
  EXPECT_FALSE(
      absl::StrContains(lead.output + r1.output + wrong.output, "secret"));
}

// The pids of the --nproc launcher's ranks for the plan `planDir`, by rank.
std::vector<pid_t> rankPids(const std::string &planDir, int world) {
  std::vector<pid_t> pids(world, -1);
  for (const auto &e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos)
      continue;
    std::string cmd = readFile(e.path().string() + "/cmdline");
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (!absl::StrContains(cmd, planDir + " "))
      continue;
    for (int r = 0; r < world; ++r)
      if (absl::StrContains(cmd, absl::StrCat(" --rank ", r, " ")))
        pids[r] = std::stoi(name);
  }
  return pids;
}

std::vector<pid_t> waitForRanks(const std::string &planDir, int world) {
  for (int i = 0; i < 200; ++i) {
    std::vector<pid_t> p = rankPids(planDir, world);
    if (std::all_of(p.begin(), p.end(), [](pid_t x) { return x > 0; }))
      return p;
    std::this_thread::sleep_for(50ms);
  }
  return {};
}

// Finding 8: SIGSTOP on rank 1 made the launcher blame rank 0 (which gave up
// first, waiting on rank 1). The launcher sees the stop and names rank 1.
TEST_F(Rendezvous, LauncherNamesTheStoppedRank) {
  Subprocess job({GALAXY_RUN_PATH, plan("tp"), "--data", kData, "--steps",
                  "100000", "--nproc", "2", "--timeout", "4"});
  std::vector<pid_t> pids = waitForRanks(plan("tp"), 2);
  ASSERT_EQ(pids.size(), 2u);
  std::this_thread::sleep_for(3s); // into training, most likely
  kill(pids[1], SIGSTOP);
  ProcResult r = job.wait(60s);
  EXPECT_EQ(r.exitCode, 1) << r.output;
  EXPECT_TRUE(absl::StrContains(
      r.output, "galaxy-run: failed: rank 1 was stopped by signal 19 (Stopped "
                "(signal)) first and is still stopped (rank 0 exited with "
                "status 1"))
      << r.output;
  // The stopped rank was ended too (SIGCONT after SIGTERM): no orphan.
  EXPECT_NE(kill(pids[1], 0), 0);
}

// Finding 8: Ctrl-C on the launcher printed "rank 1 was killed by signal 15
// first". A terminal's Ctrl-C signals the launcher and its ranks.
TEST_F(Rendezvous, CtrlCSaysTheJobWasInterrupted) {
  Subprocess job({GALAXY_RUN_PATH, plan("tp"), "--data", kData, "--steps",
                  "100000", "--nproc", "2"});
  std::vector<pid_t> pids = waitForRanks(plan("tp"), 2);
  ASSERT_EQ(pids.size(), 2u);
  std::this_thread::sleep_for(2s);
  for (pid_t p : pids)
    kill(p, SIGINT);
  job.signal(SIGINT);
  ProcResult r = job.wait(30s);
  EXPECT_EQ(r.exitCode, 128 + SIGINT) << r.output;
  EXPECT_TRUE(
      absl::StrContains(r.output, "galaxy-run: interrupted (Interrupt)"))
      << r.output;
  EXPECT_FALSE(absl::StrContains(r.output, "killed by signal")) << r.output;
  EXPECT_FALSE(absl::StrContains(r.output, "galaxy-run: failed")) << r.output;

  // A SIGTERM to the launcher alone (as a job scheduler sends) likewise.
  Subprocess job2({GALAXY_RUN_PATH, plan("tp"), "--data", kData, "--steps",
                   "100000", "--nproc", "2"});
  ASSERT_EQ(waitForRanks(plan("tp"), 2).size(), 2u);
  std::this_thread::sleep_for(1s);
  job2.signal(SIGTERM);
  ProcResult r2 = job2.wait(30s);
  EXPECT_EQ(r2.exitCode, 128 + SIGTERM) << r2.output;
  EXPECT_TRUE(absl::StrContains(r2.output, "galaxy-run: interrupted"))
      << r2.output;
  EXPECT_FALSE(absl::StrContains(r2.output, "killed by signal 15"))
      << r2.output;
}

} // namespace
} // namespace galaxy::rt::testing
