// When a run may let idle OpenMP threads spin (runtime/cpu/library_env.h):
// only as the single rank on its host, with no more threads than cores.
#include <cstdlib>
#include <string>
#include <vector>

#include "runtime/cpu/library_env.h"
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
  unsetenv("LOCAL_RANK");
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
  ASSERT_EQ(setenv("LOCAL_RANK", "0", 1), 0);
  EXPECT_FALSE(suits({"galaxy-run", "plan/"}, 1, 16));
  unsetenv("LOCAL_RANK");
}

} // namespace
} // namespace galaxy::rt::testing
