// The launchers users already run jobs with, and the environment variables
// that give a process its rank, world size and rank on its host, most
// specific first: an mpirun inside a Slurm allocation sets both Open MPI's
// and Slurm's variables, and the process's own rank is Open MPI's. The
// launch code reads ranks from them (runtime/exec/launch.cpp); the CPU
// backend asks whether a launcher started this process, so ranks may share
// the host (runtime/cpu/library_env.cc).
#pragma once

namespace galaxy::rt {

struct LauncherEnv {
  const char *name, *rank, *world, *local;
};

inline constexpr LauncherEnv kLauncherEnvs[] = {
    {"torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK"},
    {"Open MPI", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
     "OMPI_COMM_WORLD_LOCAL_RANK"},
    {"MPICH/PMI", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"},
    {"Slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"},
};

} // namespace galaxy::rt
