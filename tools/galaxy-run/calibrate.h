// galaxy-run --calibrate: every rank measures what it can do (runtime/exec/
// calibration.h) and rank 0 writes DEVICES.json (runtime/plan/devices.proto),
// what `galaxyc --auto --devices` plans with.
#pragma once

#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "runtime/backend.h"
#include "runtime/comm/communicator.h"
#include "runtime/exec/launch.h"

namespace galaxy::run {

// The usage text of --calibrate (a section of galaxy-run --help).
extern const char *const kCalibrateUsage;

// Whether the command line asks for --calibrate.
bool isCalibrate(int argc, char **argv);

// What galaxy-run's SPMD path already does and calibration must do alike.
struct CalibrateHooks {
  // --backend cuda: this rank's GPU backend (exits when there is none);
  // `stream` and `device` are for connecting NCCL.
  std::function<std::unique_ptr<rt::Backend>(const rt::LaunchInfo &,
                                             void **stream, int *device)>
      cudaBackend;
  // Gloo, or NCCL on `device` >= 0.
  std::function<absl::StatusOr<std::unique_ptr<comm::Communicator>>(
      const comm::CommOptions &, int device, void *stream)>
      connect;
};

// galaxy-run --calibrate [...]: launches --nproc ranks or runs one rank;
// the exit status. Fails (throws Exit) like the rest of galaxy-run.
int runCalibrate(int argc, char **argv, const CalibrateHooks &hooks);

} // namespace galaxy::run
