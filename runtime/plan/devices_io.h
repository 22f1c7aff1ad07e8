// DEVICES.json <-> galaxy::plan::Devices (runtime/plan/devices.proto).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "runtime/plan/devices.pb.h"

namespace galaxy::plan {

// Parses and checks a device description: at least one device, every gflops,
// elementwise_gbps (when given) and memory_gib positive and finite, network
// figures positive when more than one device, links naming ranks in range.
// Errors are InvalidArgument naming `origin` (the file) and the key.
absl::StatusOr<Devices> parseDevices(const std::string &json,
                                     const std::string &origin);
absl::StatusOr<Devices> readDevicesFile(const std::string &path);

// Pretty-printed JSON with the .proto's field names.
std::string devicesToJson(const Devices &devices);

} // namespace galaxy::plan
