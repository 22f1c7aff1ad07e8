// galaxy-run as users launch it: --nproc, --rank/--world/--master, torchrun
// variables; plans for the wrong world; ranks that die or hang.
#include <arpa/inet.h>
#include <filesystem>
#include <fstream>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "runtime/io/safetensors.h"
#include "runtime/launcher_env.h"
#include "tests/comm/multiprocess.h"
#include "tests/runtime/subprocess.h"
#include "tests/runtime/tiny_plans.h"
#include "gtest/gtest.h"

#ifndef GALAXY_RUN_PATH
#error "GALAXY_RUN_PATH must name the galaxy-run binary"
#endif

namespace galaxy::rt::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using comm::testing::freePort;

class GalaxyRun : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() /
            absl::StrCat("galaxy-run-test-", getpid(), "-", rand()))
               .string();
    fs::create_directories(dir_);
    ASSERT_TRUE(writeTinyData(path("train.jsonl"), 24));
    ASSERT_TRUE(writeTinyPlans(path("serial"), {6}));
    ASSERT_TRUE(writeTinyPlans(path("dp2"), {4, 2}));
    ASSERT_TRUE(writeTinyPlans(path("dp3"), {3, 2, 1}));
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string &name) const { return dir_ + "/" + name; }

  // galaxy-run PLAN --data train.jsonl --steps N --metrics TAG.jsonl --save
  // TAG.st ...
  std::vector<std::string> cmd(const std::string &plan, const std::string &tag,
                               int steps,
                               std::vector<std::string> extra = {}) const {
    std::vector<std::string> c = {GALAXY_RUN_PATH, path(plan),
                                  "--data",        path("train.jsonl"),
                                  "--steps",       std::to_string(steps),
                                  "--metrics",     path(tag + ".jsonl"),
                                  "--save",        path(tag + ".safetensors"),
                                  "--eval",        path("train.jsonl"),
                                  "--eval-out",    path(tag + ".eval.json"),
                                  "--seed",        "5"};
    c.insert(c.end(), extra.begin(), extra.end());
    return c;
  }

  std::vector<double> losses(const std::string &tag) const {
    std::ifstream in(path(tag + ".jsonl"));
    std::vector<double> out;
    std::string line;
    while (std::getline(in, line)) {
      const size_t at = line.find("\"loss\": ");
      if (at != std::string::npos)
        out.push_back(std::stod(line.substr(at + 8)));
    }
    return out;
  }

  // Same losses (rtol 1e-5), weights (atol 1e-6) and eval logits as serial.
  void expectSameAsSerial(const std::string &tag) {
    const std::vector<double> want = losses("serial"), got = losses(tag);
    ASSERT_EQ(got.size(), want.size());
    ASSERT_FALSE(want.empty());
    for (size_t i = 0; i < want.size(); ++i)
      EXPECT_NEAR(got[i], want[i], 1e-5 * std::fabs(want[i]))
          << "step " << i + 1;
    EXPECT_GT(std::fabs(want.front() - want.back()), 1e-3)
        << "the tiny model did not train";
    auto a = io::readSafetensors(path("serial.safetensors"));
    auto b = io::readSafetensors(path(tag + ".safetensors"));
    ASSERT_TRUE(a.ok() && b.ok());
    for (const char *name : {"classifier.weight", "classifier.bias"}) {
      auto x = a->readF32(name, a->find(name)->shape);
      auto y = b->readF32(name, a->find(name)->shape);
      ASSERT_TRUE(x.ok() && y.ok()) << name;
      for (size_t i = 0; i < x->size(); ++i)
        EXPECT_NEAR((*x)[i], (*y)[i], 1e-6) << name << "[" << i << "]";
    }
    // Eval logits come back gathered from every rank's rows.
    const std::vector<double> e1 = numbers(path("serial.eval.json")),
                              e2 = numbers(path(tag + ".eval.json"));
    ASSERT_EQ(e1.size(), 3u + kTinyBatch * 4 *
                                  kTinyClasses); // loss, accuracy, rows, logits
    ASSERT_EQ(e2.size(), e1.size());
    for (size_t i = 0; i < e1.size(); ++i)
      EXPECT_NEAR(e1[i], e2[i], 1e-5) << "eval value " << i;
  }

  // Every number in a JSON file, in order.
  static std::vector<double> numbers(const std::string &file) {
    std::ifstream in(file);
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    std::vector<double> out;
    for (size_t i = 0; i < text.size();) {
      char *end = nullptr;
      const char c = text[i];
      if (c == '-' || (c >= '0' && c <= '9')) {
        out.push_back(std::strtod(text.c_str() + i, &end));
        i = end - text.c_str();
      } else {
        ++i;
      }
    }
    return out;
  }

  void runSerial(int steps = 6) {
    ProcResult r = run(cmd("serial", "serial", steps));
    ASSERT_EQ(r.exitCode, 0) << r.output;
  }

  std::string dir_;
};

TEST_F(GalaxyRun, NprocMatchesSerial) {
  runSerial();
  for (int world : {2, 3}) {
    const std::string tag = absl::StrCat("dp", world);
    ProcResult r = run(cmd(tag, tag, 6, {"--nproc", std::to_string(world)}));
    ASSERT_EQ(r.exitCode, 0) << r.output;
    EXPECT_TRUE(absl::StrContains(r.output, "[rank 0] step 6/6")) << r.output;
    for (absl::string_view line : absl::StrSplit(r.output, '\n'))
      EXPECT_TRUE(line.empty() || absl::StartsWith(line, "[rank ")) << line;
    expectSameAsSerial(tag);
  }
}

// libgomp's wait policy (runtime/cpu/library_env.h): a single rank with no
// more threads than cores spins a bounded while; --nproc ranks sharing the
// host sleep. The start-up line says which and who chose it.
TEST_F(GalaxyRun, WaitPolicyFollowsTheRanksOnTheHost) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT"))
    GTEST_SKIP() << "the environment chooses libgomp's wait policy";
  for (const LauncherEnv &l : kLauncherEnvs)
    for (const char *var : {l.rank, l.world, l.local})
      if (std::getenv(var))
        GTEST_SKIP() << var << " is set: a launcher started this test";
  ProcResult one = run(cmd("serial", "serial", 1), {"GALAXY_THREADS=1"});
  ASSERT_EQ(one.exitCode, 0) << one.output;
  EXPECT_TRUE(absl::StrContains(
      one.output, "OpenMP threads spin 2000 pauses, then sleep "
                  "(GOMP_SPINCOUNT=2000, set by Galaxy: the only rank"))
      << one.output;
  ProcResult two =
      run(cmd("dp2", "dp2", 1, {"--nproc", "2"}), {"GALAXY_THREADS=1"});
  ASSERT_EQ(two.exitCode, 0) << two.output;
  EXPECT_TRUE(absl::StrContains(
      two.output, "OMP_WAIT_POLICY=PASSIVE (set by Galaxy: ranks may share"))
      << two.output;
  ProcResult user = run(cmd("serial", "serial", 1),
                        {"GALAXY_THREADS=1", "OMP_WAIT_POLICY=ACTIVE"});
  ASSERT_EQ(user.exitCode, 0) << user.output;
  EXPECT_TRUE(absl::StrContains(user.output,
                                "OMP_WAIT_POLICY=ACTIVE (set by the user)"))
      << user.output;
}

TEST_F(GalaxyRun, TorchrunEnvironment) {
  runSerial();
  const std::string port = std::to_string(freePort());
  std::vector<std::unique_ptr<Subprocess>> ranks;
  for (int r = 0; r < 2; ++r)
    ranks.push_back(std::make_unique<Subprocess>(
        cmd("dp2", "env", 6),
        std::vector<std::string>{absl::StrCat("RANK=", r), "WORLD_SIZE=2",
                                 absl::StrCat("LOCAL_RANK=", r),
                                 "MASTER_ADDR=127.0.0.1",
                                 "MASTER_PORT=" + port}));
  for (int r = 0; r < 2; ++r) {
    ProcResult res = ranks[r]->wait(30s);
    ASSERT_EQ(res.exitCode, 0) << "rank " << r << ":\n" << res.output;
  }
  expectSameAsSerial("env");
}

TEST_F(GalaxyRun, WrongWorldIsRefused) {
  ProcResult r = run(cmd("dp2", "x", 2, {"--nproc", "3"}));
  EXPECT_EQ(r.exitCode, 2);
  EXPECT_TRUE(absl::StrContains(
      r.output, "--nproc 3 does not match the plan: " + path("dp2") +
                    "/rank0.plan.pb was compiled for 2 ranks; use "
                    "--nproc 2 or recompile with --world 3"))
      << r.output;

  r = run(cmd("dp2", "x", 2,
              {"--rank", "1", "--world", "3", "--master", "127.0.0.1:1"}));
  EXPECT_EQ(r.exitCode, 2);
  EXPECT_TRUE(absl::StrContains(
      r.output, "rank1.plan.pb is for rank 1 of 2 but this process "
                "is rank 1 of 3; recompile with --world 3"))
      << r.output;

  r = run(cmd("dp2", "x", 2));
  EXPECT_EQ(r.exitCode, 2);
  EXPECT_TRUE(absl::StrContains(r.output, "run the plan with --nproc 2"))
      << r.output;

  r = run(cmd("serial", "x", 2, {"--nproc", "2"}));
  EXPECT_EQ(r.exitCode, 2);
  EXPECT_TRUE(
      absl::StrContains(r.output, "was compiled for 1 rank; use --nproc 1"))
      << r.output;
}

TEST_F(GalaxyRun, NprocStopsEveryRankWhenOneDies) {
  ProcResult r = run(cmd("dp3", "x", 50, {"--nproc", "3", "--timeout", "20"}),
                     {"GALAXY_TEST_DIE_AT_STEP=3"}, 30s);
  EXPECT_EQ(r.exitCode, 1) << r.output;
  EXPECT_TRUE(
      absl::StrContains(r.output, "galaxy-run: rank 1 exited with status 9"))
      << r.output;
  EXPECT_TRUE(
      absl::StrContains(r.output, "failed: rank 1 exited with status 9 first"))
      << r.output;
  EXPECT_LT(r.seconds, 15)
      << r.output; // far below --timeout: the launcher stops them
}

// Ranks started by hand: the survivors' communicator names the lost rank.
TEST_F(GalaxyRun, SurvivorsNameARankThatDied) {
  const std::string master = absl::StrCat("127.0.0.1:", freePort());
  std::vector<std::unique_ptr<Subprocess>> ranks;
  for (int r = 0; r < 3; ++r)
    ranks.push_back(std::make_unique<Subprocess>(
        cmd("dp3", "x", 50,
            {"--rank", std::to_string(r), "--world", "3", "--master", master,
             "--timeout", "5"}),
        std::vector<std::string>{"GALAXY_TEST_DIE_AT_STEP=3"}));
  ProcResult dead = ranks[1]->wait(20s);
  EXPECT_EQ(dead.exitCode, 9) << dead.output;
  for (int r : {0, 2}) {
    ProcResult res = ranks[r]->wait(20s);
    EXPECT_NE(res.exitCode, 0) << res.output;
    EXPECT_FALSE(res.timedOut) << res.output;
    EXPECT_LT(res.seconds, 12) << res.output;
    EXPECT_TRUE(absl::StrContains(res.output, "rank 1"))
        << "rank " << r << ":\n"
        << res.output;
  }
}

TEST_F(GalaxyRun, SurvivorsNameARankThatHangs) {
  const std::string master = absl::StrCat("127.0.0.1:", freePort());
  std::vector<std::unique_ptr<Subprocess>> ranks;
  for (int r = 0; r < 2; ++r)
    ranks.push_back(std::make_unique<Subprocess>(
        cmd("dp2", "x", 50,
            {"--rank", std::to_string(r), "--world", "2", "--master", master,
             "--timeout", "2"}),
        std::vector<std::string>{"GALAXY_TEST_HANG_AT_STEP=2"}));
  ProcResult res = ranks[0]->wait(20s);
  EXPECT_EQ(res.exitCode, 1) << res.output;
  EXPECT_FALSE(res.timedOut) << res.output;
  EXPECT_LT(res.seconds, 12)
      << res.output; // start-up + 2 s timeout + store linger
  EXPECT_TRUE(absl::StrContains(res.output, "rank 1")) << res.output;
  ranks[1]->kill();
}

TEST_F(GalaxyRun, BusyPortAndUnreachableMaster) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
  const int busy = ntohs(a.sin_port);
  ProcResult r = run(cmd("dp2", "x", 2,
                         {"--rank", "0", "--world", "2", "--master",
                          absl::StrCat("127.0.0.1:", busy), "--timeout", "2"}));
  close(fd);
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_TRUE(absl::StrContains(
      r.output, absl::StrCat("port ", busy, " on 127.0.0.1 is in use")))
      << r.output;

  const int nobody = freePort();
  r = run(cmd("dp2", "x", 2,
              {"--rank", "1", "--world", "2", "--master",
               absl::StrCat("127.0.0.1:", nobody), "--timeout", "1"}));
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_TRUE(absl::StrContains(
      r.output, absl::StrCat("could not reach master 127.0.0.1:", nobody)))
      << r.output;
  EXPECT_LT(r.seconds, 5);
}

TEST_F(GalaxyRun, HelpMentionsTheLaunchFlags) {
  ProcResult r = run({GALAXY_RUN_PATH, "--help"});
  EXPECT_EQ(r.exitCode, 0);
  for (const char *flag :
       {"--nproc", "--rank", "--master", "--timeout", "WORLD_SIZE"})
    EXPECT_TRUE(absl::StrContains(r.output, flag)) << flag;
}

} // namespace
} // namespace galaxy::rt::testing
