// Lost, stalled and misconfigured ranks must turn into prompt errors that
// name the culprit — never a hang.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "runtime/comm/communicator.h"
#include "tests/comm/check.h"
#include "tests/comm/multiprocess.h"
#include "gtest/gtest.h"

namespace galaxy::comm {
namespace {

using namespace std::chrono_literals;
using testing::describe;
using testing::freePort;
using testing::runRanks;

CommOptions options(int rank, int world, int port,
                    std::chrono::milliseconds timeout) {
  CommOptions o;
  o.rank = rank;
  o.world = world;
  o.masterPort = port;
  o.timeout = timeout;
  return o;
}

// The surviving ranks' error must contain `want`; a child reports success
// (exit 0) only if its collective failed that way.
absl::Status expectFailure(const absl::Status &got, const std::string &want) {
  if (got.ok())
    return absl::InternalError("collective succeeded, want an error");
  if (getenv("GALAXY_TEST_VERBOSE"))
    fprintf(stderr, "[expected error] %s\n", got.ToString().c_str());
  if (!absl::StrContains(got.message(), want))
    return absl::InternalError(
        absl::StrCat("error lacks '", want, "': ", got.ToString()));
  return absl::OkStatus();
}

TEST(Faults, RankThatExitsIsNamedByEveryOtherRank) {
  const int port = freePort();
  auto results = runRanks(3, [&](int rank) -> absl::Status {
    auto comm = connectGloo(options(rank, 3, port, 5s));
    if (!comm.ok())
      return comm.status();
    std::vector<float> buf(4096, 1.0f);
    for (int it = 0; it < 5; ++it) {
      if (rank == 1 && it == 3)
        _exit(7); // crash mid-run
      const auto start = std::chrono::steady_clock::now();
      absl::Status s = (*comm)->allReduceSum(buf.data(), buf.size());
      if (std::chrono::steady_clock::now() - start > 2s)
        return absl::InternalError(absl::StrCat("slow: ", s.ToString()));
      if (!s.ok()) {
        RETURN_IF_ERROR(expectFailure(s, "rank 1 (127.0.0.1, pid"));
        RETURN_IF_ERROR(expectFailure(
            s, "exited or closed the connection during allreduce"));
        // The communicator stays failed: later calls say so at once.
        absl::Status again = (*comm)->barrier();
        return expectFailure(again, "already failed");
      }
    }
    return absl::InternalError("never saw the lost rank");
  });
  EXPECT_EQ(results[1].exitCode, 7);
  for (int r : {0, 2})
    EXPECT_EQ(results[r].exitCode, 0) << describe(results);
}

TEST(Faults, LostMasterIsNamed) {
  const int port = freePort();
  auto results = runRanks(2, [&](int rank) -> absl::Status {
    auto comm = connectGloo(options(rank, 2, port, 5s));
    if (!comm.ok())
      return comm.status();
    float x = 1;
    RETURN_IF_ERROR((*comm)->allReduceSum(&x, 1));
    if (rank == 0)
      _exit(7); // the store host dies
    return expectFailure((*comm)->allReduceSum(&x, 1),
                         "rank 0 (master 127.0.0.1:");
  });
  EXPECT_EQ(results[1].exitCode, 0) << describe(results);
  EXPECT_LT(results[1].seconds, 4.0) << describe(results);
}

TEST(Faults, StalledRankTimesOutNamingIt) {
  const int port = freePort();
  auto results = runRanks(3, [&](int rank) -> absl::Status {
    auto comm = connectGloo(options(rank, 3, port, 1500ms));
    if (!comm.ok())
      return comm.status();
    if (rank == 2) {
      std::this_thread::sleep_for(3s); // stalls, then leaves quietly
      return absl::OkStatus();
    }
    std::vector<float> buf(16, 1.0f);
    const auto start = std::chrono::steady_clock::now();
    absl::Status s = (*comm)->allReduceSum(buf.data(), buf.size());
    if (std::chrono::steady_clock::now() - start > 2500ms)
      return absl::InternalError(
          absl::StrCat("error came late: ", s.ToString()));
    RETURN_IF_ERROR(expectFailure(s, "in allreduce waiting for rank 2"));
    return expectFailure(s, "timed out after 1.5 s");
  });
  for (int r : {0, 1})
    EXPECT_EQ(results[r].exitCode, 0) << describe(results);
}

TEST(Faults, MissingRankAtStartupIsNamed) {
  const int port = freePort();
  // World 3, but rank 2 is never started.
  auto results = runRanks(2, [&](int rank) -> absl::Status {
    absl::Status s = connectGloo(options(rank, 3, port, 1s)).status();
    // Rank 1 may instead see rank 0 (the store host) give up first.
    if (rank == 1 &&
        absl::StrContains(s.message(), "rank 0 has probably exited"))
      return absl::OkStatus();
    return expectFailure(s, "rank(s) 2 did not join the world of 3 ranks");
  });
  for (const auto &r : results)
    EXPECT_EQ(r.exitCode, 0) << describe(results);
}

TEST(Faults, MismatchedWorldSizeIsCaught) {
  const int port = freePort();
  auto results = runRanks(2, [&](int rank) -> absl::Status {
    // Rank 0 says world 3, rank 1 says world 2: rank 1 sees rank 0's size.
    auto c = connectGloo(options(rank, rank == 0 ? 3 : 2, port, 1s));
    if (rank == 1)
      return expectFailure(c.status(), "every rank needs the same world size");
    return c.ok() ? absl::InternalError("rank 0 connected") : absl::OkStatus();
  });
  for (const auto &r : results)
    EXPECT_EQ(r.exitCode, 0) << describe(results);
}

TEST(Faults, BusyPortOnMaster) {
  // Hold a listener on the port, as another job would.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
  const int port = ntohs(a.sin_port);
  auto c = connectGloo(options(0, 2, port, 1s));
  close(fd);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            absl::StrCat("port ", port,
                         " on 127.0.0.1 is in use; pick another with --master "
                         "HOST:PORT"));
}

TEST(Faults, UnreachableMasterGivesUpAtTheDeadline) {
  const int port = freePort(); // nobody listens there
  const auto start = std::chrono::steady_clock::now();
  auto c = connectGloo(options(1, 2, port, 600ms));
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(absl::StrContains(
      c.status().message(), absl::StrCat("could not reach master 127.0.0.1:",
                                         port, " within 600 ms")))
      << c.status();
  EXPECT_GE(secs, 0.5);
  EXPECT_LT(secs, 3.0);
}

TEST(Faults, RankOutOfRange) {
  auto c = connectGloo(options(3, 3, 23000, 1s));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(c.status().message(),
                                "rank 3 is out of range for world size 3"))
      << c.status();
}

// --- Issue 19: a rendezvous only the job can join; paused ranks ---------

// A pipe a rank writes its pid into before it stops itself, so a surviving
// rank can end it once it has checked its own error.
struct PidPipe {
  PidPipe() { EXPECT_EQ(pipe(fd), 0); }
  ~PidPipe() {
    close(fd[0]);
    close(fd[1]);
  }
  void send() {
    pid_t p = getpid();
    (void)!write(fd[1], &p, sizeof p);
  }
  pid_t receive() {
    pid_t p = -1;
    (void)!read(fd[0], &p, sizeof p);
    return p;
  }
  int fd[2];
};

// Finding 8: SIGSTOP on a rank made its peers say it exited (or blame
// another). Its heartbeat stops but its store connection stays open: the
// peers say it stopped responding, and that the process is stopped.
TEST(Faults, StoppedRankIsToldApartFromADeadOne) {
  const int port = freePort();
  PidPipe pids;
  auto results = runRanks(2, [&](int rank) -> absl::Status {
    auto comm = connectGloo(options(rank, 2, port, 4s));
    if (!comm.ok())
      return comm.status();
    float x = 1;
    RETURN_IF_ERROR((*comm)->allReduceSum(&x, 1));
    if (rank == 1) {
      pids.send();
      raise(SIGSTOP);
      return absl::OkStatus();
    }
    absl::Status s = (*comm)->allReduceSum(&x, 1);
    kill(pids.receive(), SIGKILL);
    RETURN_IF_ERROR(expectFailure(s, "rank 1 (no heartbeat for"));
    RETURN_IF_ERROR(expectFailure(s, "stopped responding during allreduce"));
    RETURN_IF_ERROR(expectFailure(s, "so the process exists"));
    RETURN_IF_ERROR(expectFailure(s, "on this host is stopped: SIGSTOP"));
    if (absl::StrContains(s.message(), "exited"))
      return absl::InternalError(absl::StrCat("says exited: ", s.ToString()));
    return absl::OkStatus();
  });
  EXPECT_EQ(results[0].exitCode, 0) << describe(results);
}

// The same for rank 0, which hosts the store: its store stops answering
// with the connection open, which used to read as "rank 0 exited".
TEST(Faults, StoppedMasterIsToldApartFromADeadOne) {
  const int port = freePort();
  PidPipe pids;
  auto results = runRanks(2, [&](int rank) -> absl::Status {
    auto comm = connectGloo(options(rank, 2, port, 3s));
    if (!comm.ok())
      return comm.status();
    float x = 1;
    RETURN_IF_ERROR((*comm)->allReduceSum(&x, 1));
    if (rank == 0) {
      pids.send();
      raise(SIGSTOP);
      return absl::OkStatus();
    }
    absl::Status s = (*comm)->allReduceSum(&x, 1);
    kill(pids.receive(), SIGKILL);
    RETURN_IF_ERROR(expectFailure(s, "rank 0 (master 127.0.0.1:"));
    RETURN_IF_ERROR(expectFailure(s, "stopped responding during allreduce"));
    RETURN_IF_ERROR(expectFailure(s, "on this host is stopped: SIGSTOP"));
    if (absl::StrContains(s.message(), "exited"))
      return absl::InternalError(absl::StrCat("says exited: ", s.ToString()));
    return absl::OkStatus();
  });
  EXPECT_EQ(results[1].exitCode, 0) << describe(results);
}

// Finding 1: a stranger could take rank 1's place. With a job token it is
// refused at the store (wrong token) or at its claim (right token, other
// facts, or a slot already taken); the job's own ranks finish normally.
TEST(Faults, StrangersAreRefusedAndTheJobFinishes) {
  const int port = freePort();
  auto results = runRanks(4, [&](int who) -> absl::Status {
    CommOptions o = options(std::min(who, 1), 2, port, 5s);
    o.token = "job-secret";
    o.facts = {{"plan compile id", "A"}};
    if (who == 2) { // no token, arrives early
      o.token = "guess";
      std::this_thread::sleep_for(200ms);
      auto c = connectGloo(o);
      return expectFailure(c.status(), "refused this rank's job token");
    }
    if (who == 3) { // the token, but another compile's plan
      o.facts = {{"plan compile id", "B"}};
      std::this_thread::sleep_for(200ms);
      auto c = connectGloo(o);
      return expectFailure(c.status(),
                           "its plan compile id 'B' differs from rank 0's 'A'");
    }
    if (who == 1)
      std::this_thread::sleep_for(800ms); // the real rank 1 comes last
    auto comm = connectGloo(o);
    if (!comm.ok())
      return comm.status();
    std::vector<float> buf(8, float(who + 1));
    RETURN_IF_ERROR((*comm)->allReduceSum(buf.data(), buf.size()));
    if (buf[0] != 3.0f)
      return absl::InternalError(absl::StrCat("sum ", buf[0]));
    return (*comm)->barrier();
  });
  for (const auto &r : results)
    EXPECT_EQ(r.exitCode, 0) << describe(results);
}

// Gloo's own TCP pairs carry no credentials; every pair proves the token
// over its connection before data flows. A rank whose proofs are wrong (as
// a process that raced to a listener would be) is refused by its peers.
TEST(Faults, GlooPairWithoutTheTokenIsRefused) {
  const int port = freePort();
  auto results = runRanks(2, [&](int rank) -> absl::Status {
    if (rank == 1)
      setenv("GALAXY_TEST_BAD_PAIR_PROOF", "1", 1);
    CommOptions o = options(rank, 2, port, 3s);
    o.token = "job-secret";
    auto comm = connectGloo(o);
    if (rank == 1)
      return absl::OkStatus();
    return expectFailure(comm.status(),
                         "the Gloo connection from rank 1 did not prove the "
                         "job token");
  });
  EXPECT_EQ(results[0].exitCode, 0) << describe(results);
}

} // namespace
} // namespace galaxy::comm
