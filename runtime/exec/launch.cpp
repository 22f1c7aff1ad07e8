#include "runtime/exec/launch.h"

#include "runtime/comm/socket_io.h"
#include "runtime/launcher_env.h"

#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace galaxy::rt {

namespace {
absl::StatusOr<int> parseNonNegative(std::string_view what,
                                     std::string_view v) {
  int n = 0;
  if (!absl::SimpleAtoi(std::string(v), &n) || n < 0)
    return absl::InvalidArgumentError(absl::StrCat(
        std::string(what), " must be a non-negative integer, got '",
        std::string(v), "'"));
  return n;
}
} // namespace

absl::StatusOr<std::pair<std::string, int>> parseHostPort(std::string_view s) {
  const size_t colon = s.rfind(':');
  int port = 0;
  if (colon == std::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(std::string(s.substr(colon + 1)), &port) || port < 1 ||
      port > 65535)
    return absl::InvalidArgumentError(
        absl::StrCat("master address '", std::string(s),
                     "' is not HOST:PORT (e.g. 127.0.0.1:29500)"));
  return std::make_pair(std::string(s.substr(0, colon)), port);
}

absl::StatusOr<LaunchInfo> resolveLaunch(const LaunchFlags &flags,
                                         const EnvLookup &env) {
  LaunchInfo info;
  const bool anyFlag = flags.rank || flags.world || flags.master;
  if (anyFlag) {
    info.source = "flags";
    if (!flags.rank || !flags.world)
      return absl::InvalidArgumentError("give --rank and --world together (and "
                                        "--master HOST:PORT when --world > 1)");
    info.rank = *flags.rank;
    info.world = *flags.world;
    info.localRank = info.rank;
    if (flags.master) {
      auto hp = parseHostPort(*flags.master);
      if (!hp.ok())
        return hp.status();
      std::tie(info.masterHost, info.masterPort) = *hp;
    } else if (info.world > 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("--world ", info.world,
                       " needs --master HOST:PORT (rank 0 hosts it)"));
    }
  } else {
    const LauncherEnv *from = nullptr;
    for (const LauncherEnv &l : kLauncherEnvs)
      if (env(l.rank) || env(l.world)) {
        from = &l;
        break;
      }
    if (!from)
      return info;
    info.source = absl::StrCat("environment (", from->name, ")");
    const char *rank = env(from->rank), *world = env(from->world);
    if (!rank || !world)
      return absl::InvalidArgumentError(
          absl::StrCat("the environment sets only one of ", from->rank, " and ",
                       from->world, " (", from->name, "); set both"));
    auto r = parseNonNegative(from->rank, rank);
    auto w = parseNonNegative(from->world, world);
    if (!r.ok())
      return r.status();
    if (!w.ok())
      return w.status();
    info.rank = *r;
    info.world = *w;
    info.localRank = info.rank;
    if (const char *lr = env(from->local)) {
      auto l = parseNonNegative(from->local, lr);
      if (!l.ok())
        return l.status();
      info.localRank = *l;
    }
    // No launcher but torchrun names the rendezvous: the job script exports
    // MASTER_ADDR / MASTER_PORT (docs/launching.md).
    const char *addr = env("MASTER_ADDR"), *port = env("MASTER_PORT");
    if (info.world > 1 && (!addr || !port))
      return absl::InvalidArgumentError(absl::StrCat(
          from->world, "=", info.world,
          " needs MASTER_ADDR and MASTER_PORT in the environment (rank 0's "
          "host and a free port; see docs/launching.md)"));
    if (addr)
      info.masterHost = addr;
    if (port) {
      auto hp = parseHostPort(absl::StrCat(info.masterHost, ":", port));
      if (!hp.ok())
        return absl::InvalidArgumentError(absl::StrCat(
            "MASTER_PORT='", port, "' is not a TCP port (1..65535)"));
      info.masterPort = hp->second;
    }
  }
  if (info.world < 1)
    return absl::InvalidArgumentError(
        absl::StrCat("world size ", info.world, " must be at least 1"));
  if (info.rank < 0 || info.rank >= info.world)
    return absl::InvalidArgumentError(
        absl::StrCat("rank ", info.rank, " is outside a world of ", info.world,
                     " (ranks are 0..", info.world - 1, ")"));
  return info;
}

namespace {
volatile sig_atomic_t gStopSignal = 0;
void onStopSignal(int sig) { gStopSignal = sig; }

void writeAll(int fd, const std::string &s) {
  size_t done = 0;
  while (done < s.size()) {
    ssize_t n = write(fd, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return;
    done += n;
  }
}

// One child output stream, forwarded line by line with the rank prefix.
struct Stream {
  int fd = -1;
  int target = 1;
  std::string prefix, pending;

  void forward(const char *data, size_t n) {
    pending.append(data, n);
    std::string out;
    size_t start = 0, nl;
    while ((nl = pending.find('\n', start)) != std::string::npos) {
      out += prefix;
      out.append(pending, start, nl + 1 - start);
      start = nl + 1;
    }
    pending.erase(0, start);
    if (!out.empty())
      writeAll(target, out);
  }
  void finish() {
    if (!pending.empty())
      writeAll(target, prefix + pending + "\n");
    pending.clear();
    if (fd >= 0)
      close(fd);
    fd = -1;
  }
};

std::string describeStatus(int status) {
  if (WIFEXITED(status))
    return absl::StrCat("exited with status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return absl::StrCat("was killed by signal ", WTERMSIG(status), " (",
                        strsignal(WTERMSIG(status)), ")");
  if (WIFSTOPPED(status))
    return absl::StrCat("was stopped by signal ", WSTOPSIG(status), " (",
                        strsignal(WSTOPSIG(status)), ")");
  return "changed state";
}

using Clock = std::chrono::steady_clock;

// What the launcher knows of one rank.
struct RankState {
  pid_t pid = -1;
  // Set while the rank is stopped (SIGSTOP, SIGTSTP), from when.
  std::optional<Clock::time_point> stoppedAt;
  std::string stoppedHow;
};
} // namespace

int runLocalRanks(const LocalRanksOptions &o) {
  const int port = o.masterPort > 0 ? o.masterPort : comm::freeLoopbackPort();
  if (port <= 0) {
    writeAll(
        2,
        "galaxy-run: cannot find a free loopback port for the local ranks\n");
    return 1;
  }
  struct sigaction sa {
  }, oldInt{}, oldTerm{};
  sa.sa_handler = onStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &oldInt);
  sigaction(SIGTERM, &sa, &oldTerm);

  std::vector<RankState> ranks(o.nproc);
  std::vector<Stream> streams;
  const std::string master = absl::StrCat(o.masterHost, ":", port);
  for (int r = 0; r < o.nproc; ++r) {
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
      writeAll(2, absl::StrCat("galaxy-run: pipe: ", strerror(errno), "\n"));
      return 1;
    }
    std::vector<std::string> args = o.args;
    for (std::string s :
         {std::string("--rank"), std::to_string(r), std::string("--world"),
          std::to_string(o.nproc), std::string("--master"), master})
      args.push_back(s);
    pid_t pid = fork();
    if (pid == 0) {
      dup2(out[1], 1);
      dup2(err[1], 2);
      setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      if (!o.jobToken.empty())
        setenv("GALAXY_JOB_TOKEN", o.jobToken.c_str(), 1);
      std::vector<char *> argv;
      argv.push_back(const_cast<char *>(o.exe.c_str()));
      for (std::string &a : args)
        argv.push_back(a.data());
      argv.push_back(nullptr);
      signal(SIGINT, SIG_DFL);
      signal(SIGTERM, SIG_DFL);
      execv(o.exe.c_str(), argv.data());
      writeAll(2, absl::StrCat("galaxy-run: cannot run ", o.exe, ": ",
                               strerror(errno), "\n"));
      _exit(127);
    }
    close(out[1]);
    close(err[1]);
    if (pid < 0) {
      writeAll(2, absl::StrCat("galaxy-run: fork: ", strerror(errno), "\n"));
      close(out[0]);
      close(err[0]);
      break;
    }
    ranks[r].pid = pid;
    const std::string prefix = absl::StrCat("[rank ", r, "] ");
    streams.push_back({out[0], 1, prefix, {}});
    streams.push_back({err[0], 2, prefix, {}});
  }

  int firstFailed = -1;
  std::string firstHow;
  bool interrupted = false;
  std::optional<Clock::time_point> killAt;
  int running = 0;
  for (const RankState &r : ranks)
    running += r.pid > 0;
  // From here on every rank that ends is a consequence, not a cause.
  auto stopOthers = [&](int sig) {
    for (const RankState &r : ranks)
      if (r.pid > 0) {
        kill(r.pid, sig);
        if (r.stoppedAt)
          kill(r.pid, SIGCONT); // a stopped process acts on SIGTERM only then
      }
  };
  auto startStopping = [&] {
    stopOthers(SIGTERM);
    killAt = Clock::now() + o.killGrace;
  };
  if (running < o.nproc) { // a fork failed: treat like a failed rank
    firstFailed = running;
    firstHow = "could not be started";
    startStopping();
  }
  std::vector<char> buf(1 << 16);
  while (running > 0 ||
         std::any_of(streams.begin(), streams.end(),
                     [](const Stream &s) { return s.fd >= 0; })) {
    std::vector<pollfd> fds;
    std::vector<Stream *> owners;
    for (Stream &s : streams)
      if (s.fd >= 0) {
        fds.push_back({s.fd, POLLIN, 0});
        owners.push_back(&s);
      }
    int n = fds.empty() ? (usleep(20000), 0) : poll(fds.data(), fds.size(), 20);
    for (size_t i = 0; n > 0 && i < fds.size(); ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      ssize_t got = read(fds[i].fd, buf.data(), buf.size());
      if (got > 0)
        owners[i]->forward(buf.data(), got);
      else if (got == 0 || errno != EINTR)
        owners[i]->finish();
    }
    // A signal to the launcher comes first: the ranks it ends (Ctrl-C in a
    // terminal signals them too) are not failures of their own.
    if (gStopSignal && !interrupted && firstFailed < 0) {
      interrupted = true;
      firstHow = strsignal(gStopSignal);
      startStopping();
    }
    for (int r = 0; r < o.nproc; ++r) {
      RankState &rs = ranks[r];
      int status = 0;
      if (rs.pid <= 0 ||
          waitpid(rs.pid, &status, WNOHANG | WUNTRACED | WCONTINUED) != rs.pid)
        continue;
      if (WIFSTOPPED(status)) {
        rs.stoppedAt = Clock::now();
        rs.stoppedHow = describeStatus(status);
        continue;
      }
      if (WIFCONTINUED(status)) {
        rs.stoppedAt.reset();
        continue;
      }
      rs.pid = -1;
      rs.stoppedAt.reset();
      --running;
      const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      if (ok || interrupted || firstFailed >= 0)
        continue;
      // A rank still stopped when another fails is why it failed: the
      // others were waiting on it (the earliest stop, if several).
      int blame = r;
      std::string how = describeStatus(status);
      std::optional<Clock::time_point> earliest;
      for (int q = 0; q < o.nproc; ++q)
        if (ranks[q].stoppedAt &&
            (!earliest || *ranks[q].stoppedAt < *earliest)) {
          earliest = ranks[q].stoppedAt;
          blame = q;
        }
      if (blame != r) {
        const double ago =
            std::chrono::duration<double>(Clock::now() - *earliest).count();
        how = absl::StrFormat("%s first and is still stopped (rank %d %s "
                              "%.1f s later, waiting on it)",
                              ranks[blame].stoppedHow, r,
                              describeStatus(status), ago);
      }
      firstFailed = blame;
      firstHow = how;
      writeAll(2, absl::StrCat("galaxy-run: rank ", blame, " ", firstHow,
                               "; stopping the other ranks\n"));
      startStopping();
    }
    if (killAt && Clock::now() > *killAt) {
      stopOthers(SIGKILL);
      killAt.reset();
    }
  }
  sigaction(SIGINT, &oldInt, nullptr);
  sigaction(SIGTERM, &oldTerm, nullptr);
  if (interrupted) {
    writeAll(2, absl::StrCat("galaxy-run: interrupted (", firstHow,
                             "): the job was stopped by a signal to the "
                             "launcher; stopped all ranks\n"));
    return 128 + gStopSignal;
  }
  if (firstFailed >= 0) {
    // "rank 1 exited with status 9 first"; a stop says "first" itself.
    const bool saysFirst = absl::StrContains(firstHow, " first ");
    writeAll(2, absl::StrCat("galaxy-run: failed: rank ", firstFailed, " ",
                             firstHow, saysFirst ? "" : " first",
                             "; the other ranks were stopped\n"));
    return 1;
  }
  return 0;
}

} // namespace galaxy::rt
