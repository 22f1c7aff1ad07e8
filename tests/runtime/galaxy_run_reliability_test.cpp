// galaxy-run against issue 19's findings, as real processes: outputs checked
// before the first step and temporaries removed (finding 5), plans whose
// sizes overflow (3), memory and endless data files (7), and the smaller
// items of finding 8 (--timeout range, unused --init tensors).
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "runtime/io/safetensors.h"
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

class Reliability : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() /
            absl::StrCat("galaxy-reliability-test-", getpid(), "-", rand()))
               .string();
    fs::create_directories(dir_);
    ASSERT_TRUE(writeTinyData(path("train.jsonl"), 24));
    ASSERT_TRUE(writeTinyPlans(path("serial"), {6}));
  }
  void TearDown() override {
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add);
    fs::remove_all(dir_);
  }

  std::string path(const std::string &name) const { return dir_ + "/" + name; }

  // galaxy-run serial --data train.jsonl --steps N EXTRA...
  std::vector<std::string> cmd(std::vector<std::string> extra,
                               int steps = 2) const {
    std::vector<std::string> c = {GALAXY_RUN_PATH, path("serial"),
                                  "--data",        path("train.jsonl"),
                                  "--steps",       std::to_string(steps)};
    c.insert(c.end(), extra.begin(), extra.end());
    return c;
  }

  // Entries of the test directory whose name starts with `prefix`.
  std::vector<std::string> entriesStartingWith(const std::string &prefix) {
    std::vector<std::string> out;
    for (const auto &e : fs::directory_iterator(dir_))
      if (absl::StartsWith(e.path().filename().string(), prefix))
        out.push_back(e.path().filename().string());
    return out;
  }

  static std::string readAll(const std::string &file) {
    std::ifstream in(file, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  }

  // Writes `p` over the serial plan after `edit`.
  void editSerialPlan(const std::function<void(plan::Plan &)> &edit) {
    plan::Plan p = tinyDataParallelPlan(0, {6});
    edit(p);
    std::ofstream out(path("serial/rank0.plan.pb"), std::ios::binary);
    ASSERT_TRUE(p.SerializeToOstream(&out));
  }

  std::string dir_;
};

// --- Finding 5: outputs ---------------------------------------------------

// The issue: --save / --eval-out into a missing directory was found after
// training. Now the run stops before step 1, naming the flag and directory.
TEST_F(Reliability, MissingOutputDirectoryStopsBeforeTraining) {
  for (std::vector<std::string> flags :
       {std::vector<std::string>{"--save", path("nope/w.safetensors")},
        std::vector<std::string>{"--eval", path("train.jsonl"), "--eval-out",
                                 path("nope/e.json")},
        std::vector<std::string>{"--save-merged", path("nope/m.st")},
        std::vector<std::string>{"--profile-json", path("nope/p.json")},
        std::vector<std::string>{"--profile-svg", path("nope/p.svg")},
        std::vector<std::string>{"--metrics", path("nope/m.jsonl")}}) {
    const std::string flag = flags[flags.size() - 2];
    ProcResult r = run(cmd(flags, 50));
    EXPECT_EQ(r.exitCode, 2) << r.output;
    EXPECT_TRUE(absl::StrContains(
        r.output, absl::StrCat(flag, " ", flags.back(), ": directory ",
                               path("nope"), " does not exist")))
        << r.output;
    EXPECT_FALSE(absl::StrContains(r.output, "step ")) << r.output;
  }
}

// A device, FIFO, directory or symlink is never replaced by the rename.
// The device is a null device made in the test directory when running as
// root: a regression must not replace the machine's /dev/null (a root
// galaxy-run without this check did). Others cannot write into /dev, so
// /dev/null is safe for them.
TEST_F(Reliability, NonRegularTargetsAreRefused) {
  std::string device = "/dev/null";
  if (geteuid() == 0) {
    device = path("null");
    ASSERT_EQ(mknod(device.c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  }
  ASSERT_EQ(mkfifo(path("fifo").c_str(), 0644), 0);
  fs::create_directory(path("adir"));
  { std::ofstream(path("real.json")) << "keep me"; }
  fs::create_symlink(path("real.json"), path("link.json"));
  struct Case {
    std::string target, says;
  };
  const Case cases[] = {
      {device, "is a character device"},
      {path("fifo"), "is a FIFO"},
      {path("adir"), "is a directory"},
      {path("link.json"), "is a symbolic link to " + path("real.json")}};
  for (const Case &c : cases)
    for (const char *flag : {"--save", "--eval-out", "--metrics",
                             "--profile-json", "--save-merged"}) {
      std::vector<std::string> extra = {flag, c.target};
      if (std::string(flag) == "--eval-out")
        extra.insert(extra.begin(), {"--eval", path("train.jsonl")});
      ProcResult r = run(cmd(extra));
      EXPECT_EQ(r.exitCode, 2) << flag << " " << c.target << "\n" << r.output;
      EXPECT_TRUE(absl::StrContains(
          r.output, absl::StrCat(flag, " ", c.target, " ", c.says)))
          << r.output;
    }
  // --dump-taps stands alone (it refuses --save and the like).
  ProcResult r = run(cmd({"--dump-taps", path("fifo")}));
  EXPECT_EQ(r.exitCode, 2) << r.output;
  EXPECT_TRUE(
      absl::StrContains(r.output, "--dump-taps " + path("fifo") + " is a FIFO"))
      << r.output;
  struct stat st {};
  ASSERT_EQ(lstat(path("fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  ASSERT_EQ(lstat(path("link.json").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(readAll(path("real.json")), "keep me");
  ASSERT_EQ(lstat(device.c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
}

TEST_F(Reliability, OneFileForTwoOutputsIsRefused) {
  ProcResult r = run(cmd({"--save", path("x"), "--eval", path("train.jsonl"),
                          "--eval-out", path("./x")}));
  EXPECT_EQ(r.exitCode, 2) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "--eval-out and --save both write"))
      << r.output;
}

TEST_F(Reliability, UnwritableDirectoryIsRefused) {
  if (geteuid() == 0)
    GTEST_SKIP() << "root writes into any directory";
  fs::create_directory(path("ro"));
  fs::permissions(path("ro"), fs::perms::owner_read | fs::perms::owner_exec);
  ProcResult r = run(cmd({"--save", path("ro/w.safetensors")}));
  EXPECT_EQ(r.exitCode, 2) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output,
                                "directory " + path("ro") + " is not writable"))
      << r.output;
}

// The issue: a killed save left a hidden temporary as big as the weights.
// SIGINT and SIGTERM now remove it; SIGKILL (which nothing can catch) is the
// control: it leaves the temporary, so the test does see one when present.
TEST_F(Reliability, SignalDuringSaveRemovesTheTemporary) {
  { std::ofstream(path("w.safetensors")) << "previous weights"; }
  for (int sig : {SIGTERM, SIGINT, SIGKILL}) {
    Subprocess p(cmd({"--save", path("w.safetensors")}),
                 {"GALAXY_TEST_PAUSE_IN_SAVE=1"});
    bool seen = false;
    for (int i = 0; i < 3000 && !seen; ++i) {
      seen = !entriesStartingWith(".w.safetensors.tmp.").empty();
      if (!seen)
        std::this_thread::sleep_for(10ms);
    }
    ASSERT_TRUE(seen) << "the save never started";
    std::this_thread::sleep_for(50ms); // into pause(), past the hook's print
    p.signal(sig);
    ProcResult r = p.wait(30s);
    EXPECT_EQ(r.signal, sig) << r.output;
    EXPECT_TRUE(absl::StrContains(r.output, "test hook: paused writing"))
        << r.output;
    if (sig == SIGKILL) {
      EXPECT_EQ(entriesStartingWith(".w.safetensors.tmp.").size(), 1u);
    } else {
      EXPECT_TRUE(entriesStartingWith(".w.safetensors.tmp.").empty())
          << "signal " << sig;
    }
    EXPECT_EQ(readAll(path("w.safetensors")), "previous weights");
  }
}

// A write that fails (here: no file may grow, SIGXFSZ ignored so write(2)
// returns EFBIG) removes its temporary; --eval-out used to leave FILE.tmp.
// The limit is set in a subshell whose output goes through a pipe, which it
// does not cover, so the messages and the exit status come back.
TEST_F(Reliability, FailedWritesLeaveNoTemporary) {
  auto limited = [&](const std::string &flags) {
    return run({"/bin/sh", "-c",
                absl::StrCat("(ulimit -f 0; trap '' XFSZ; '", GALAXY_RUN_PATH,
                             "' '", path("serial"), "' --data '",
                             path("train.jsonl"), "' --steps 1 ", flags,
                             "; echo \"exit=$?\") 2>&1 | cat")});
  };
  ProcResult r = limited(absl::StrCat("--eval '", path("train.jsonl"),
                                      "' --eval-out '", path("e.json"), "'"));
  EXPECT_TRUE(absl::StrContains(r.output, "exit=1")) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "cannot write '" + path("e.json")))
      << r.output;
  EXPECT_TRUE(entriesStartingWith(".e.json").empty());
  EXPECT_TRUE(entriesStartingWith("e.json").empty());

  r = limited(absl::StrCat("--save '", path("w.safetensors"), "'"));
  EXPECT_TRUE(absl::StrContains(r.output, "exit=1")) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, path("w.safetensors"))) << r.output;
  EXPECT_TRUE(entriesStartingWith(".w.safetensors").empty());
  EXPECT_FALSE(fs::exists(path("w.safetensors")));
}

// --- Finding 3: plans whose sizes overflow ---------------------------------

TEST_F(Reliability, PlanWithOverflowingSizesIsRefused) {
  struct Case {
    std::function<void(plan::Plan &)> edit;
    std::string says;
  };
  const Case cases[] = {
      {[](plan::Plan &p) {
         p.mutable_buffers(0)->set_shape(0, int64_t{1} << 62);
       },
       "has shape [4611686018427387904, 4], more than 1099511627776 "
       "elements (2^40)"},
      {[](plan::Plan &p) { p.mutable_buffers(0)->set_shape(0, -6); },
       "has shape [-6, 4], with a negative dimension"},
      {[](plan::Plan &p) {
         p.mutable_params(0)->set_slice_shape(1, int64_t{1} << 40);
       },
       "parameter classifier.weight has shape [3, 1099511627776]"},
      {[](plan::Plan &p) { p.set_arena_bytes(-64); },
       "arena_bytes = -64 is outside [0, 70368744177664]"},
      {[](plan::Plan &p) {
         p.mutable_buffers(p.buffers_size() - 1)->set_offset(INT64_MAX - 8);
       },
       "lies at byte offset 9223372036854775799"},
      // The SIGSEGV: vocab_size 2^62 let ids near 2^31 through.
      {[](plan::Plan &p) {
         p.mutable_model()->set_vocab_size(int64_t{1} << 62);
       },
       "model vocab_size = 4611686018427387904 is outside [0, 2147483647]"},
  };
  for (const Case &c : cases) {
    editSerialPlan(c.edit);
    ProcResult r = run(cmd({}));
    EXPECT_EQ(r.exitCode, 2) << r.output;
    EXPECT_TRUE(absl::StrContains(r.output, c.says)) << r.output;
    EXPECT_TRUE(absl::StrContains(r.output, "recompile it")) << r.output;
  }
}

TEST_F(Reliability, IdsPastI32NameTheLine) {
  std::ofstream(path("big.jsonl"))
      << "{\"input_ids\": [1, 2], \"label\": 0}\n"
      << "{\"input_ids\": [1, 2147483653], \"label\": 0}\n";
  ProcResult r = run({GALAXY_RUN_PATH, path("serial"), "--data",
                      path("big.jsonl"), "--steps", "1"});
  EXPECT_EQ(r.exitCode, 2) << r.output;
  EXPECT_TRUE(absl::StrContains(
      r.output, path("big.jsonl") + ":2: input_ids[1] = 2147483653 is outside"))
      << r.output;
}

// --- Finding 7: memory and endless data -------------------------------------

TEST_F(Reliability, PlanLargerThanMemoryIsRefusedWithBothFigures) {
  editSerialPlan([](plan::Plan &p) { p.set_arena_bytes(int64_t{1} << 45); });
  ProcResult r = run(cmd({}));
  EXPECT_EQ(r.exitCode, 2) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "needs 32.0 TiB (35184372"))
      << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "activation arena 32.0 TiB"))
      << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "available (MemAvailable in "
                                          "/proc/meminfo)"))
      << r.output;
  EXPECT_LT(r.seconds, 10);
}

TEST_F(Reliability, DevZeroAsDataFailsFast) {
  fs::create_symlink("/dev/zero", path("zero.jsonl"));
  ProcResult r = run({GALAXY_RUN_PATH, path("serial"), "--data",
                      path("zero.jsonl"), "--steps", "1"});
  EXPECT_EQ(r.exitCode, 2) << r.output;
  EXPECT_TRUE(absl::StrContains(
      r.output, "zero.jsonl:1: the line is longer than 16777216 bytes"))
      << r.output;
  EXPECT_LT(r.seconds, 10);
}

// --- Finding 8: smaller items ------------------------------------------------

TEST_F(Reliability, TimeoutOutOfRangeIsRefusedAtParsing) {
  for (const char *t : {"1e300", "604801", "0.0001"}) {
    ProcResult r = run(cmd({"--timeout", t}));
    EXPECT_EQ(r.exitCode, 2) << r.output;
    EXPECT_TRUE(absl::StrContains(
        r.output, absl::StrCat("--timeout expects seconds in [0.001, 604800] "
                               "(1 ms to 7 days), got '",
                               t, "'")))
        << r.output;
  }
  ProcResult r = run(cmd({"--timeout", "604800"}));
  EXPECT_EQ(r.exitCode, 0) << r.output;
}

TEST_F(Reliability, UnusedInitTensorsAreNamed) {
  ProcResult r = run(cmd({"--save", path("w.safetensors")}));
  ASSERT_EQ(r.exitCode, 0) << r.output;
  auto saved = io::readSafetensors(path("w.safetensors"));
  ASSERT_TRUE(saved.ok());
  std::vector<io::TensorToWrite> tensors;
  for (const io::TensorEntry &t : saved->tensors())
    tensors.push_back({t.name, t.dtype, t.shape, t.data});
  const float extra[2] = {1, 2};
  tensors.push_back({"cls.predictions.bias", io::StDType::F32, {2}, extra});
  tensors.push_back({"classifer.weight", io::StDType::F32, {2}, extra});
  ASSERT_TRUE(io::writeSafetensors(path("init.safetensors"), tensors).ok());

  r = run(cmd({"--init", path("init.safetensors")}));
  EXPECT_EQ(r.exitCode, 0) << r.output;
  EXPECT_TRUE(absl::StrContains(
      r.output, "galaxy-run: warning: --init " + path("init.safetensors") +
                    " holds 2 tensors the plan does not use (ignored): "
                    "classifer.weight, cls.predictions.bias"))
      << r.output;
  r = run(cmd({"--init", path("w.safetensors")}));
  EXPECT_EQ(r.exitCode, 0) << r.output;
  EXPECT_FALSE(absl::StrContains(r.output, "warning")) << r.output;
}

} // namespace
} // namespace galaxy::rt::testing
