#include "tests/cuda/gpu_test_util.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/cuda/cuda_backend.h"

namespace galaxy::rt::testing {

std::optional<std::string> noGpuReason() {
  absl::StatusOr<int> n = cuda::visibleDeviceCount();
  if (!n.ok())
    return std::string(n.status().message());
  return std::nullopt;
}

GpuProbe probeGpusInChild() {
  int fds[2];
  if (pipe(fds) != 0)
    return {0, "pipe() failed"};
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    absl::StatusOr<int> n = cuda::visibleDeviceCount();
    const std::string msg =
        n.ok() ? std::to_string(*n) : "0 " + std::string(n.status().message());
    (void)!write(fds[1], msg.data(), msg.size());
    _exit(0);
  }
  close(fds[1]);
  std::string text;
  char buf[512];
  for (ssize_t k; (k = read(fds[0], buf, sizeof buf)) > 0;)
    text.append(buf, k);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  GpuProbe p;
  p.count = std::atoi(text.c_str());
  if (p.count == 0)
    p.reason =
        text.size() > 2 ? text.substr(2) : "the GPU probe process failed";
  return p;
}

Backend &gpuBackend() {
  static std::unique_ptr<Backend> backend = [] {
    absl::StatusOr<std::unique_ptr<Backend>> b =
        cuda::createCudaBackend({.device = 0, .tf32 = 0});
    if (!b.ok()) {
      std::fprintf(stderr, "CUDA backend: %s\n",
                   std::string(b.status().message()).c_str());
      std::abort();
    }
    return std::move(*b);
  }();
  return *backend;
}

DeviceMemory &gpuMemory() { return *cuda::deviceMemoryOf(gpuBackend()); }

} // namespace galaxy::rt::testing
