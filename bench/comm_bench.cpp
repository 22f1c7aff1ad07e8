// comm_bench: uneven reduce-scatter / all-gather vs an even all-reduce of the
// same bytes, between local ranks forked from this process over loopback Gloo.
//   comm_bench [--nproc N] [--port P] [--iters K]
// Rank 0 prints one row per size; "GB/s" is the buffer size over the time.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "runtime/comm/communicator.h"

namespace {

using galaxy::comm::Communicator;
using Clock = std::chrono::steady_clock;

template <typename F> double bestMs(Communicator &c, int iters, F &&op) {
  double best = 1e30;
  for (int i = 0; i < iters + 1; ++i) { // first round warms up
    if (!c.barrier().ok())
      std::exit(2);
    auto t0 = Clock::now();
    absl::Status s = op();
    if (!s.ok()) {
      std::fprintf(stderr, "rank %d: %s\n", c.rank(), s.ToString().c_str());
      std::exit(2);
    }
    double ms =
        std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (i > 0)
      best = std::min(best, ms);
  }
  // Report the slowest rank's time: a collective is done when all are.
  float t = static_cast<float>(best);
  std::vector<float> all(c.size());
  std::vector<size_t> ones(c.size(), 1);
  if (!c.allGatherV(&t, 1, all.data(), ones).ok())
    std::exit(2);
  double worst = 0;
  for (float x : all)
    worst = std::max(worst, double(x));
  return worst;
}

int runRank(int rank, int world, int port, int iters) {
  galaxy::comm::CommOptions o;
  o.rank = rank;
  o.world = world;
  o.masterPort = port;
  auto comm = galaxy::comm::connectGloo(o);
  if (!comm.ok()) {
    std::fprintf(stderr, "rank %d: %s\n", rank,
                 comm.status().ToString().c_str());
    return 1;
  }
  Communicator &c = **comm;
  if (rank == 0)
    std::printf(
        "%d ranks; uneven parts: rank 0 holds 60%%, the others share the rest; "
        "times are the best of %d, slowest rank\n"
        "%8s | %-22s | %-22s | %-22s | %-22s\n",
        world, iters, "MiB", "allreduce (even)", "reducescatterv ring",
        "allreduce+slice RS", "allgatherv");
  for (size_t mib : {1, 4, 16, 64}) {
    const size_t n = mib * (1u << 20) / sizeof(float);
    std::vector<size_t> counts(world, 0);
    counts[0] = n * 6 / 10;
    size_t rest = n - counts[0];
    for (int r = 1; r < world; ++r)
      counts[r] =
          rest / (world - 1) + (size_t(r) <= rest % (world - 1) ? 1 : 0);
    size_t off = 0;
    for (int r = 0; r < rank; ++r)
      off += counts[r];
    std::vector<float> full(n, 1.0f), work(n), part(counts[rank], 2.0f);
    double ar =
        bestMs(c, iters, [&] { return c.allReduceSum(full.data(), n); });
    double rs = bestMs(c, iters, [&] {
      return c.reduceScatterV(full.data(), part.data(), counts);
    });
    double arSlice = bestMs(c, iters, [&] {
      std::memcpy(work.data(), full.data(), n * sizeof(float));
      absl::Status s = c.allReduceSum(work.data(), n);
      std::memcpy(part.data(), work.data() + off, counts[rank] * sizeof(float));
      return s;
    });
    double ag = bestMs(c, iters, [&] {
      return c.allGatherV(part.data(), counts[rank], work.data(), counts);
    });
    auto cell = [&](double ms) {
      static char buf[4][64];
      static int k = 0;
      char *b = buf[k++ % 4];
      std::snprintf(b, 64, "%8.2f ms %6.2f GB/s", ms,
                    double(n * sizeof(float)) / (ms * 1e6));
      return b;
    };
    if (rank == 0)
      std::printf("%8zu | %-22s | %-22s | %-22s | %-22s\n", mib, cell(ar),
                  cell(rs), cell(arSlice), cell(ag));
    std::fflush(stdout);
  }
  return c.barrier().ok() ? 0 : 1;
}

} // namespace

int main(int argc, char **argv) {
  int nproc = 2, port = 29517, iters = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--nproc")
      nproc = std::atoi(argv[i + 1]);
    else if (a == "--port")
      port = std::atoi(argv[i + 1]);
    else if (a == "--iters")
      iters = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: %s [--nproc N] [--port P] [--iters K]\n",
                   argv[0]);
      return 2;
    }
  }
  std::vector<pid_t> pids;
  for (int r = 0; r < nproc; ++r) {
    pid_t pid = fork();
    if (pid == 0)
      _exit(runRank(r, nproc, port, iters));
    pids.push_back(pid);
  }
  int rc = 0;
  for (pid_t p : pids) {
    int st = 0;
    waitpid(p, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
      rc = 1;
  }
  return rc;
}
