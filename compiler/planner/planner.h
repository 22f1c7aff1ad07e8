// galaxyc --auto: chooses the parallel configuration for a set of unequal
// devices (runtime/plan/devices.proto) and compiles it. See README.md.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "compiler/config/galaxy_config.h"
#include "runtime/plan/devices.pb.h"
#include "runtime/plan/plan.pb.h"

namespace galaxy::planner {

struct Options {
  bool latency = false; // --objective latency: the forward pass, not a step
  bool explain = false; // list every candidate in the report
};

struct Result {
  config::GalaxyConfig chosen;   // resolved: what the plans were compiled from
  std::vector<plan::Plan> plans; // by world rank
  std::string report;            // the choice, per-rank times, runner-up
  std::string chosenJson;        // PLAN/chosen-config.json
  // Seconds per step (or forward): from the compiled plans' cost rules, and
  // what the search estimated for the same choice.
  double predicted = 0, estimated = 0;
};

// `loaded`: the user's config as parsed (its parallel keys are replaced);
// world = the number of devices. Errors: InvalidArgument for what cannot be
// planned, ResourceExhausted (galaxyc exits 2) when no candidate fits the
// devices' memory, naming the device and the memory it lacks.
absl::StatusOr<Result> planAuto(const config::GalaxyConfig &loaded,
                                const plan::Devices &devices,
                                const Options &opts);

// `galaxyc CONFIG --devices DEVICES.json` without --auto: the same
// prediction for the configuration the user chose (`resolved`, world = the
// number of devices), e.g. to set an even split beside the planned one.
// `chosen` is `resolved`; memory beyond a device is reported, not refused.
absl::StatusOr<Result> predictConfig(const config::GalaxyConfig &resolved,
                                     const plan::Devices &devices,
                                     const Options &opts);

} // namespace galaxy::planner
