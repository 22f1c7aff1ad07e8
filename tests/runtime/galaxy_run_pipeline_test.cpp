// galaxy-run on pipeline plans: the same losses, weights and eval logits as
// the serial plan, the pipeline profile, refused options, and stages that
// die or hang.
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "runtime/io/safetensors.h"
#include "tests/comm/multiprocess.h"
#include "tests/runtime/pipeline_plans.h"
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

ChainSpec chain(std::vector<int64_t> dims, std::vector<int> starts,
                std::vector<int64_t> micro, std::string schedule) {
  ChainSpec s;
  s.dims = std::move(dims); // dims[0] == kTinySeq, dims.back() == classes
  s.batch = kTinyBatch;
  s.stageStart = std::move(starts);
  s.microbatches = std::move(micro);
  s.schedule = std::move(schedule);
  return s;
}

class GalaxyRunPipeline : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() /
            absl::StrCat("galaxy-run-pp-", getpid(), "-", rand()))
               .string();
    fs::create_directories(dir_);
    ASSERT_TRUE(writeTinyData(path("train.jsonl"), 24));
    const ChainSpec two =
        chain({kTinySeq, 5, kTinyClasses}, {0, 1}, {3, 2, 1}, "1f1b");
    const ChainSpec three =
        chain({kTinySeq, 5, 6, kTinyClasses}, {0, 1, 2}, {2, 2, 2}, "gpipe");
    ASSERT_TRUE(writeChainSerialPlan(path("serial2"), two));
    ASSERT_TRUE(writeChainPlans(path("pp2"), two));
    ASSERT_TRUE(writeChainSerialPlan(path("serial3"), three));
    ASSERT_TRUE(writeChainPlans(path("pp3"), three));
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string &name) const { return dir_ + "/" + name; }

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
                                  "--seed",        "5",
                                  "--shuffle"};
    c.insert(c.end(), extra.begin(), extra.end());
    return c;
  }

  // Every number in a file, in order (metrics lines, eval JSON).
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

  void expectSame(const std::string &serial, const std::string &tag) {
    const std::vector<double> want = losses(serial), got = losses(tag);
    ASSERT_EQ(got.size(), want.size());
    ASSERT_FALSE(want.empty());
    for (size_t i = 0; i < want.size(); ++i)
      EXPECT_NEAR(got[i], want[i], 1e-5 * std::fabs(want[i]))
          << "step " << i + 1;
    auto a = io::readSafetensors(path(serial + ".safetensors"));
    auto b = io::readSafetensors(path(tag + ".safetensors"));
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
    const std::vector<double> e1 = numbers(path(serial + ".eval.json")),
                              e2 = numbers(path(tag + ".eval.json"));
    ASSERT_EQ(e1.size(), 3u + 24 * kTinyClasses); // loss, accuracy, rows
    ASSERT_EQ(e2.size(), e1.size());
    for (size_t i = 0; i < e1.size(); ++i)
      EXPECT_NEAR(e1[i], e2[i], 1e-5) << "eval value " << i;
  }

  std::string dir_;
};

TEST_F(GalaxyRunPipeline, NprocMatchesSerial) {
  for (const char *n : {"2", "3"}) {
    const std::string serial = absl::StrCat("serial", n),
                      pp = absl::StrCat("pp", n);
    ProcResult s = run(cmd(serial, serial, 6));
    ASSERT_EQ(s.exitCode, 0) << s.output;
    ProcResult r = run(cmd(pp, pp, 6, {"--nproc", n}));
    ASSERT_EQ(r.exitCode, 0) << r.output;
    EXPECT_TRUE(absl::StrContains(r.output, "[rank 0] step 6/6")) << r.output;
    EXPECT_TRUE(
        absl::StrContains(r.output, absl::StrCat(n, " pipeline stages of "
                                                    "1 rank")))
        << r.output;
    expectSame(serial, pp);
  }
}

TEST_F(GalaxyRunPipeline, ProfilePrintsEveryStage) {
  ProcResult r = run(cmd("pp3", "prof", 4, {"--nproc", "3", "--profile"}));
  ASSERT_EQ(r.exitCode, 0) << r.output;
  EXPECT_TRUE(absl::StrContains(
      r.output, "pipeline profile: 3 measured steps (step 1 dropped as "
                "warm-up)"))
      << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "stage rank    busy s    idle s"))
      << r.output;
  // gpipe over 3 microbatches: every stage stashes all 3.
  for (int s = 0; s < 3; ++s)
    EXPECT_TRUE(absl::StrContains(r.output,
                                  absl::StrCat("[rank 0]       ", s, "    0 ")))
        << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "  3 x ")) << r.output;
}

TEST_F(GalaxyRunPipeline, UnsupportedOptionsAndWorldsAreRefused) {
  auto refused = [&](std::vector<std::string> c) {
    for (const char *flag :
         {"--rank", "0", "--world", "2", "--master", "127.0.0.1:1"})
      c.push_back(flag);
    ProcResult r = run(c);
    EXPECT_EQ(r.exitCode, 2) << r.output;
    EXPECT_TRUE(
        absl::StrContains(r.output, "is not available for pipeline plans"))
        << r.output;
  };
  refused({GALAXY_RUN_PATH, path("pp2"), "--data", path("train.jsonl"),
           "--dump-taps", path("taps.safetensors")});
  refused(cmd("pp2", "x", 2, {"--profile-svg", path("p.svg")}));
  refused(cmd("pp2", "x", 2, {"--backend", "cuda"}));
  ProcResult r = run(cmd("pp2", "x", 2, {"--nproc", "3"}));
  EXPECT_EQ(r.exitCode, 2);
  EXPECT_TRUE(absl::StrContains(
      r.output, "was compiled for 2 ranks (2 pipeline stages of 1); use "
                "--nproc 2"))
      << r.output;
  r = run(cmd("pp2", "x", 2));
  EXPECT_EQ(r.exitCode, 2);
  EXPECT_TRUE(absl::StrContains(r.output, "rank0.plan.pb is stage 0 of 2 "
                                          "pipeline stages of 1 rank; run "
                                          "the plan with --nproc 2"))
      << r.output;
  r = run(cmd("pp2", "x", 2,
              {"--rank", "1", "--world", "3", "--master", "127.0.0.1:1"}));
  EXPECT_EQ(r.exitCode, 2);
  EXPECT_TRUE(absl::StrContains(r.output, "so it runs on 2 ranks, but this "
                                          "process is rank 1 of 3"))
      << r.output;
}

// Ranks started by hand: a dead stage makes the others fail naming it.
TEST_F(GalaxyRunPipeline, SurvivorsNameAStageThatDied) {
  const std::string master = absl::StrCat("127.0.0.1:", freePort());
  std::vector<std::unique_ptr<Subprocess>> ranks;
  for (int r = 0; r < 3; ++r)
    ranks.push_back(std::make_unique<Subprocess>(
        cmd("pp3", "x", 50,
            {"--rank", std::to_string(r), "--world", "3", "--master", master,
             "--timeout", "20"}),
        std::vector<std::string>{"GALAXY_TEST_DIE_AT_STEP=3",
                                 "GALAXY_TEST_FAULT_RANK=2"}));
  ProcResult dead = ranks[2]->wait(30s);
  EXPECT_EQ(dead.exitCode, 9) << dead.output;
  for (int r : {0, 1}) {
    ProcResult res = ranks[r]->wait(30s);
    EXPECT_EQ(res.exitCode, 1) << res.output;
    EXPECT_FALSE(res.timedOut) << res.output;
    EXPECT_LT(res.seconds, 15) << res.output; // far below --timeout
    EXPECT_TRUE(absl::StrContains(res.output, "rank 2 (127.0.0.1, pid "))
        << "rank " << r << ":\n"
        << res.output;
  }
}

TEST_F(GalaxyRunPipeline, SurvivorsNameAStageThatHangs) {
  const std::string master = absl::StrCat("127.0.0.1:", freePort());
  std::vector<std::unique_ptr<Subprocess>> ranks;
  for (int r = 0; r < 2; ++r)
    ranks.push_back(std::make_unique<Subprocess>(
        cmd("pp2", "x", 50,
            {"--rank", std::to_string(r), "--world", "2", "--master", master,
             "--timeout", "2"}),
        std::vector<std::string>{"GALAXY_TEST_HANG_AT_STEP=2"}));
  ProcResult res = ranks[0]->wait(20s);
  EXPECT_EQ(res.exitCode, 1) << res.output;
  EXPECT_FALSE(res.timedOut) << res.output;
  EXPECT_LT(res.seconds, 12) << res.output;
  EXPECT_TRUE(absl::StrContains(res.output, "waiting for rank 1"))
      << res.output;
  ranks[1]->kill();
}

} // namespace
} // namespace galaxy::rt::testing
