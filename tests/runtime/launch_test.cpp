// resolveLaunch: flags, torchrun environment, and the errors in between.
#include "runtime/exec/launch.h"

#include <map>

#include "gtest/gtest.h"

namespace galaxy::rt {
namespace {

EnvLookup envOf(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char *name) -> const char * {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

TEST(ResolveLaunch, DefaultIsOneRank) {
  auto l = resolveLaunch({}, envOf({}));
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->rank, 0);
  EXPECT_EQ(l->world, 1);
  EXPECT_EQ(l->source, "default");
}

TEST(ResolveLaunch, FlagsWinOverEnvironment) {
  LaunchFlags f;
  f.rank = 2;
  f.world = 3;
  f.master = "10.0.0.5:29500";
  auto l = resolveLaunch(f, envOf({{"RANK", "0"}, {"WORLD_SIZE", "8"}}));
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->rank, 2);
  EXPECT_EQ(l->world, 3);
  EXPECT_EQ(l->masterHost, "10.0.0.5");
  EXPECT_EQ(l->masterPort, 29500);
  EXPECT_EQ(l->source, "flags");
}

TEST(ResolveLaunch, TorchrunEnvironment) {
  auto l = resolveLaunch({}, envOf({{"RANK", "1"},
                                    {"WORLD_SIZE", "2"},
                                    {"LOCAL_RANK", "0"},
                                    {"MASTER_ADDR", "127.0.0.1"},
                                    {"MASTER_PORT", "23456"}}));
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->rank, 1);
  EXPECT_EQ(l->world, 2);
  EXPECT_EQ(l->localRank, 0);
  EXPECT_EQ(l->masterPort, 23456);
  EXPECT_EQ(l->source, "environment");
}

TEST(ResolveLaunch, Errors) {
  auto msg = [](const LaunchFlags &f, std::map<std::string, std::string> env) {
    auto l = resolveLaunch(f, envOf(std::move(env)));
    return l.ok() ? std::string("ok") : std::string(l.status().message());
  };
  LaunchFlags rankOnly;
  rankOnly.rank = 1;
  EXPECT_NE(msg(rankOnly, {}).find("give --rank and --world together"),
            std::string::npos);
  LaunchFlags noMaster;
  noMaster.rank = 0;
  noMaster.world = 2;
  EXPECT_EQ(msg(noMaster, {}),
            "--world 2 needs --master HOST:PORT (rank 0 hosts it)");
  LaunchFlags badMaster = noMaster;
  badMaster.master = "localhost";
  EXPECT_NE(msg(badMaster, {}).find("'localhost' is not HOST:PORT"),
            std::string::npos);
  LaunchFlags outside = noMaster;
  outside.rank = 2;
  outside.master = "h:1";
  EXPECT_EQ(msg(outside, {}),
            "rank 2 is outside a world of 2 (ranks are 0..1)");
  EXPECT_NE(msg({}, {{"RANK", "0"}}).find("only one of RANK and WORLD_SIZE"),
            std::string::npos);
  EXPECT_EQ(
      msg({}, {{"RANK", "0"}, {"WORLD_SIZE", "2"}}),
      "WORLD_SIZE=2 needs MASTER_ADDR and MASTER_PORT in the environment");
  EXPECT_NE(msg({}, {{"RANK", "x"}, {"WORLD_SIZE", "2"}}).find("RANK must be"),
            std::string::npos);
  EXPECT_EQ(msg({}, {{"RANK", "0"},
                     {"WORLD_SIZE", "2"},
                     {"MASTER_ADDR", "h"},
                     {"MASTER_PORT", "70000"}}),
            "MASTER_PORT='70000' is not a TCP port (1..65535)");
}

} // namespace
} // namespace galaxy::rt
