// When a run may let idle OpenMP threads spin (runtime/cpu/library_env.h):
// only as the single rank on its host, with no more threads than cores.
#include <cstdlib>
#include <string>
#include <vector>

#include "runtime/cpu/library_env.h"
#include "runtime/launcher_env.h"
#include "gtest/gtest.h"

namespace galaxy::rt::testing {
namespace {

bool suits(std::vector<std::string> args, int threads, int cores) {
  std::vector<char *> argv;
  for (std::string &a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  return cpu::spinWaitSuits(argv.data(), threads, cores);
}

TEST(SpinWait, OnlyASingleRankWithACoreForEachThread) {
  for (const LauncherEnv &l : kLauncherEnvs)
    for (const char *var : {l.rank, l.world, l.local})
      if (std::getenv(var))
        GTEST_SKIP() << var << " is set: a launcher started this test";
  EXPECT_TRUE(suits({"galaxy-run", "plan/", "--steps", "5"}, 2, 2));
  EXPECT_TRUE(suits({"galaxy-run", "plan/", "--nproc", "1"}, 2, 2));
  EXPECT_TRUE(suits({"galaxy-run", "plan/", "--nproc=1"}, 1, 2));
  EXPECT_FALSE(suits({"galaxy-run", "plan/"}, 3, 2)); // more threads than cores
  EXPECT_FALSE(suits({"galaxy-run", "plan/", "--nproc", "2"}, 1, 16));
  EXPECT_FALSE(suits({"galaxy-run", "plan/", "--nproc=4"}, 1, 16));
  EXPECT_FALSE(suits({"galaxy-run", "plan/", "--nproc", "x"}, 1, 16));
  // ranks started by another launcher may share the host
  EXPECT_FALSE(
      suits({"galaxy-run", "plan/", "--rank", "0", "--world", "2"}, 1, 16));
  EXPECT_FALSE(suits({"galaxy-run", "plan/", "--rank=1"}, 1, 16));
  // any launcher's rank, world or local rank (runtime/launcher_env.h)
  for (const LauncherEnv &l : kLauncherEnvs)
    for (const char *var : {l.rank, l.world, l.local}) {
      ASSERT_EQ(setenv(var, "0", 1), 0);
      EXPECT_FALSE(suits({"galaxy-run", "plan/"}, 1, 16)) << var;
      unsetenv(var);
    }
}

// What the kernels ask before waking a second thread for a short product.
TEST(SpinWait, ThreadsSpinUnlessTheySleepAtOnce) {
  const char *policy = std::getenv("OMP_WAIT_POLICY");
  const char *spins = std::getenv("GOMP_SPINCOUNT");
  const std::string oldPolicy = policy ? policy : "",
                    oldSpins = spins ? spins : "";
  auto set = [](const char *name, const char *value) {
    if (value)
      setenv(name, value, 1);
    else
      unsetenv(name);
  };
  struct Case {
    const char *policy, *spins;
    bool spin;
  };
  // As libgomp reads them: a GOMP_SPINCOUNT that parses wins over the policy.
  for (Case c : {Case{nullptr, nullptr, true}, Case{"PASSIVE", nullptr, false},
                 Case{"passive", "2000", true}, Case{"PASSIVE", "bogus", false},
                 Case{"ACTIVE", nullptr, true}, Case{nullptr, "2000", true},
                 Case{nullptr, "0", false}, Case{"ACTIVE", "00", false},
                 Case{nullptr, " 0k", false}, Case{nullptr, "3k", true},
                 Case{"PASSIVE", "infinite", true}}) {
    set("OMP_WAIT_POLICY", c.policy);
    set("GOMP_SPINCOUNT", c.spins);
    EXPECT_EQ(cpu::openmpThreadsSpin(), c.spin)
        << (c.policy ? c.policy : "-") << " " << (c.spins ? c.spins : "-");
  }
  set("OMP_WAIT_POLICY", policy ? oldPolicy.c_str() : nullptr);
  set("GOMP_SPINCOUNT", spins ? oldSpins.c_str() : nullptr);
}

} // namespace
} // namespace galaxy::rt::testing
