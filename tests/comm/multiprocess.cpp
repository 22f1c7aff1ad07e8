#include "tests/comm/multiprocess.h"

#include "runtime/comm/socket_io.h"

#include <csignal>
#include <cstring>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"

namespace galaxy::comm::testing {

int freePort() {
  const int port = freeLoopbackPort();
  return port > 0 ? port : 20000 + static_cast<int>(getpid() % 12000);
}

std::vector<RankResult>
runRanks(int world, const std::function<absl::Status(int rank)> &fn,
         std::chrono::milliseconds limit) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  std::vector<pid_t> pids(world);
  std::vector<int> pipes(world);
  for (int r = 0; r < world; ++r) {
    int p[2];
    if (pipe(p) != 0)
      abort();
    pid_t pid = fork();
    if (pid == 0) {
      close(p[0]);
      absl::Status s = fn(r);
      std::string text = s.ToString();
      (void)!write(p[1], text.data(), text.size());
      close(p[1]);
      _exit(s.ok() ? 0 : 1); // never return into the test runner
    }
    close(p[1]);
    pids[r] = pid;
    pipes[r] = p[0];
  }
  std::vector<RankResult> results(world);
  std::vector<bool> done(world, false);
  int left = world;
  while (left > 0) {
    for (int r = 0; r < world; ++r) {
      if (done[r])
        continue;
      int status = 0;
      if (waitpid(pids[r], &status, WNOHANG) == pids[r]) {
        done[r] = true;
        --left;
        results[r].exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        results[r].seconds =
            std::chrono::duration<double>(Clock::now() - start).count();
        char buf[4096];
        ssize_t n;
        while ((n = read(pipes[r], buf, sizeof(buf))) > 0)
          results[r].message.append(buf, n);
        close(pipes[r]);
      }
    }
    if (left > 0 && Clock::now() - start > limit) {
      for (int r = 0; r < world; ++r) {
        if (done[r])
          continue;
        kill(pids[r], SIGKILL);
        waitpid(pids[r], nullptr, 0);
        close(pipes[r]);
        results[r].exitCode = -1;
        results[r].message =
            absl::StrFormat("killed after %d ms", limit.count());
        done[r] = true;
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return results;
}

std::string describe(const std::vector<RankResult> &results) {
  std::string out;
  for (size_t r = 0; r < results.size(); ++r)
    out += absl::StrFormat("rank %d: exit %d after %.2f s: %s\n", r,
                           results[r].exitCode, results[r].seconds,
                           results[r].message);
  return out;
}

absl::StatusOr<std::unique_ptr<Communicator>>
connectLoopback(int rank, int world, int port, std::chrono::seconds timeout) {
  CommOptions o;
  o.rank = rank;
  o.world = world;
  o.masterPort = port;
  o.timeout = timeout;
  return connectGloo(o);
}

void expectEveryRankOk(
    int world, const std::function<absl::Status(int rank, int port)> &fn) {
  const int port = freePort();
  auto results = runRanks(world, [&](int r) { return fn(r, port); });
  for (int r = 0; r < world; ++r)
    EXPECT_EQ(results[r].exitCode, 0) << describe(results);
}

} // namespace galaxy::comm::testing
