// The config layer galaxyc and galaxy-run share (compiler/config, no MLIR):
// parseConfig on any bytes, then resolveConfig under each parallel mode.
// Properties: no crash or UB; what parses is written back by toJson and
// re-read to the same JSON (to_json.h promises parseConfig(toJson(c)) == c).
#include <cstddef>
#include <cstdint>
#include <string>

#include "compiler/config/parse.h"
#include "compiler/config/to_json.h"
#include "compiler/config/validate.h"
#include "tests/fuzz/fuzz_file.h"

using namespace galaxy::config;

namespace {
void roundTrip(const GalaxyConfig &c, const char *stage) {
  const std::string json = toJson(c);
  absl::StatusOr<GalaxyConfig> back = parseConfig(json, "round-trip");
  if (!back.ok())
    galaxy::fuzz::violated(std::string(stage) +
                           ": toJson output not read back: " +
                           std::string(back.status().message()) + "\n" + json);
  if (toJson(*back) != json)
    galaxy::fuzz::violated(std::string(stage) +
                           ": toJson changed on a round trip:\n" + json +
                           "\n---\n" + toJson(*back));
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const std::string text(reinterpret_cast<const char *>(data), size);
  absl::StatusOr<GalaxyConfig> c = parseConfig(text, "fuzz.json");
  if (!c.ok())
    return 0;
  roundTrip(*c, "parsed");
  // The config's own mode and world, then each mode at 2 and 4 ranks (what
  // galaxyc --parallel MODE --world N asks).
  ParallelChoice choices[] = {
      {},
      {ParallelMode::kSerial, 1},
      {ParallelMode::kDP, 2},
      {ParallelMode::kTP, 2},
      {ParallelMode::kSP, 2},
      {ParallelMode::kGalaxy, 4},
      {ParallelMode::kPP, 2},
      {ParallelMode::kPP, 4, ParallelMode::kTP},
  };
  for (const ParallelChoice &choice : choices) {
    absl::StatusOr<GalaxyConfig> r = resolveConfig(*c, choice);
    if (r.ok())
      roundTrip(*r, "resolved");
  }
  return 0;
}
