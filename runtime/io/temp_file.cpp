#include "runtime/io/temp_file.h"

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>

namespace galaxy::io {
namespace {

// What the signal handler reads: fixed storage, so it needs no allocation
// and no lock (only async-signal-safe calls: unlink, sigaction, raise).
constexpr int kSlots = 16;
constexpr size_t kPathBytes = 4096;
char gPaths[kSlots][kPathBytes];
volatile sig_atomic_t gUsed[kSlots];

volatile sig_atomic_t gDefer = 0; // deferStopSignals nesting depth
volatile sig_atomic_t gStop = 0;  // the first deferred signal
volatile time_t gStopAtS = 0;     // when it came (CLOCK_MONOTONIC seconds)
constexpr time_t kInsistS = 2;

std::mutex gMutex; // guards the rest, outside the handler
int gUsers = 0;    // live guards plus deferStopSignals(true) calls
struct Saved {
  int sig;
  struct sigaction old;
  bool installed;
} gSaved[2] = {{SIGINT, {}, false}, {SIGTERM, {}, false}};

void (*gHook)(const std::string &) = nullptr;

void onSignal(int sig, siginfo_t *info, void *) {
  // Deferred: the run stops after its step (deferStopSignals). A signal
  // within kInsistS of the first is the same request (Ctrl-C or a job
  // manager's SIGTERM reaches every rank of a --nproc job and its launcher,
  // which forwards a SIGTERM on top), and so is any from the parent (a
  // launcher that repeats it; it has its own SIGKILL deadline); a later one
  // from anyone else insists: it acts at once.
  if (gDefer) {
    if (gStop && info && info->si_pid == ::getppid())
      return;
    struct timespec now {};
    ::clock_gettime(CLOCK_MONOTONIC, &now); // async-signal-safe
    if (!gStop) {
      gStop = sig;
      gStopAtS = now.tv_sec;
      return;
    }
    if (now.tv_sec - gStopAtS < kInsistS)
      return;
  }
  for (int i = 0; i < kSlots; ++i)
    if (gUsed[i])
      ::unlink(gPaths[i]);
  for (Saved &s : gSaved)
    if (s.sig == sig)
      ::sigaction(sig, &s.old, nullptr);
  ::raise(sig); // delivered once this handler returns, with the old action
}

void install() {
  for (Saved &s : gSaved) {
    struct sigaction now {};
    if (::sigaction(s.sig, nullptr, &now) != 0 || now.sa_handler == SIG_IGN)
      continue; // an ignored signal does not end the write: keep it so
    struct sigaction sa {};
    sa.sa_sigaction = onSignal;
    // A deferred signal returns: reads and writes it interrupted resume.
    sa.sa_flags = SA_RESTART | SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    s.installed = ::sigaction(s.sig, &sa, &s.old) == 0;
  }
}

void uninstall() {
  for (Saved &s : gSaved)
    if (s.installed) {
      ::sigaction(s.sig, &s.old, nullptr);
      s.installed = false;
    }
}

} // namespace

TempFileGuard::TempFileGuard(std::string path) : path_(std::move(path)) {
  std::lock_guard<std::mutex> lock(gMutex);
  if (gUsers++ == 0)
    install();
  if (path_.size() >= kPathBytes)
    return;
  for (int i = 0; i < kSlots; ++i)
    if (!gUsed[i]) {
      std::memcpy(gPaths[i], path_.c_str(), path_.size() + 1);
      std::atomic_signal_fence(std::memory_order_seq_cst);
      gUsed[i] = 1;
      slot_ = i;
      break;
    }
}

void TempFileGuard::release() {
  std::lock_guard<std::mutex> lock(gMutex);
  if (slot_ >= 0)
    gUsed[slot_] = 0;
  slot_ = -1;
  released_ = true;
}

TempFileGuard::~TempFileGuard() {
  if (!released_)
    ::unlink(path_.c_str());
  std::lock_guard<std::mutex> lock(gMutex);
  if (slot_ >= 0)
    gUsed[slot_] = 0;
  if (--gUsers == 0)
    uninstall();
}

void deferStopSignals(bool on) {
  std::lock_guard<std::mutex> lock(gMutex);
  if (on) {
    gDefer = gDefer + 1;
    if (gUsers++ == 0)
      install();
    return;
  }
  gDefer = gDefer - 1;
  if (--gUsers == 0)
    uninstall();
}

int stopSignal() { return gStop; }

void setTempFileHookForTesting(void (*hook)(const std::string &path)) {
  gHook = hook;
}

void runTempFileHookForTesting(const std::string &path) {
  if (gHook)
    gHook(path);
}

} // namespace galaxy::io
