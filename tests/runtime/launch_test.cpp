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
  EXPECT_EQ(l->source, "environment (torchrun)");
}

// srun and mpirun set their own variables; the rendezvous comes from
// MASTER_ADDR / MASTER_PORT, which the job script exports.
TEST(ResolveLaunch, SlurmAndMpiEnvironments) {
  const std::map<std::string, std::string> master = {{"MASTER_ADDR", "node01"},
                                                     {"MASTER_PORT", "29500"}};
  auto with = [&](std::map<std::string, std::string> vars) {
    vars.insert(master.begin(), master.end());
    return resolveLaunch({}, envOf(std::move(vars)));
  };
  auto slurm = with(
      {{"SLURM_PROCID", "3"}, {"SLURM_NTASKS", "4"}, {"SLURM_LOCALID", "1"}});
  ASSERT_TRUE(slurm.ok()) << slurm.status();
  EXPECT_EQ(slurm->rank, 3);
  EXPECT_EQ(slurm->world, 4);
  EXPECT_EQ(slurm->localRank, 1);
  EXPECT_EQ(slurm->masterHost, "node01");
  EXPECT_EQ(slurm->source, "environment (Slurm)");
  auto ompi = with({{"OMPI_COMM_WORLD_RANK", "2"},
                    {"OMPI_COMM_WORLD_SIZE", "3"},
                    {"OMPI_COMM_WORLD_LOCAL_RANK", "0"}});
  ASSERT_TRUE(ompi.ok()) << ompi.status();
  EXPECT_EQ(ompi->rank, 2);
  EXPECT_EQ(ompi->world, 3);
  EXPECT_EQ(ompi->localRank, 0);
  EXPECT_EQ(ompi->source, "environment (Open MPI)");
  auto pmi = with({{"PMI_RANK", "1"}, {"PMI_SIZE", "2"}});
  ASSERT_TRUE(pmi.ok()) << pmi.status();
  EXPECT_EQ(pmi->rank, 1);
  EXPECT_EQ(pmi->source, "environment (MPICH/PMI)");
  // mpirun inside a Slurm allocation: the process's rank is Open MPI's.
  auto both = with({{"SLURM_PROCID", "0"},
                    {"SLURM_NTASKS", "1"},
                    {"OMPI_COMM_WORLD_RANK", "1"},
                    {"OMPI_COMM_WORLD_SIZE", "2"}});
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_EQ(both->rank, 1);
  EXPECT_EQ(both->world, 2);
  // torchrun's variables win over a launcher's.
  auto torch = with({{"RANK", "0"},
                     {"WORLD_SIZE", "2"},
                     {"SLURM_PROCID", "1"},
                     {"SLURM_NTASKS", "2"}});
  ASSERT_TRUE(torch.ok()) << torch.status();
  EXPECT_EQ(torch->rank, 0);
  EXPECT_EQ(torch->source, "environment (torchrun)");
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
  EXPECT_EQ(msg({}, {{"RANK", "0"}, {"WORLD_SIZE", "2"}}),
            "WORLD_SIZE=2 needs MASTER_ADDR and MASTER_PORT in the "
            "environment (rank 0's host and a free port; see "
            "docs/launching.md)");
  EXPECT_NE(msg({}, {{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}})
                .find("SLURM_NTASKS=2 needs MASTER_ADDR and MASTER_PORT"),
            std::string::npos);
  EXPECT_NE(msg({}, {{"SLURM_PROCID", "0"}})
                .find("only one of SLURM_PROCID and SLURM_NTASKS (Slurm)"),
            std::string::npos);
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
