#include "tests/runtime/subprocess.h"

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace galaxy::rt::testing {

Subprocess::Subprocess(const std::vector<std::string> &argv,
                       const std::vector<std::string> &env) {
  char tmpl[] = "/tmp/galaxy-subprocess-XXXXXX";
  int fd = mkstemp(tmpl);
  outPath_ = tmpl;
  start_ = std::chrono::steady_clock::now();
  pid_ = fork();
  if (pid_ == 0) {
    dup2(fd, 1);
    dup2(fd, 2);
    for (const std::string &e : env)
      putenv(strdup(e.c_str()));
    std::vector<char *> args;
    for (const std::string &a : argv)
      args.push_back(const_cast<char *>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(fd);
}

Subprocess::~Subprocess() {
  kill();
  if (!outPath_.empty())
    std::remove(outPath_.c_str());
}

void Subprocess::kill() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
}

void Subprocess::signal(int sig) {
  if (pid_ > 0)
    ::kill(pid_, sig);
}

ProcResult Subprocess::wait(std::chrono::milliseconds limit) {
  ProcResult r;
  int status = 0;
  while (pid_ > 0) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      r.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      r.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
      pid_ = -1;
      break;
    }
    if (std::chrono::steady_clock::now() - start_ > limit) {
      kill();
      r.timedOut = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  r.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_)
          .count();
  std::ifstream in(outPath_);
  std::stringstream ss;
  ss << in.rdbuf();
  r.output = ss.str();
  return r;
}

ProcResult run(const std::vector<std::string> &argv,
               const std::vector<std::string> &env,
               std::chrono::milliseconds limit) {
  Subprocess p(argv, env);
  return p.wait(limit);
}

} // namespace galaxy::rt::testing
