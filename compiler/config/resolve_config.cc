// resolveConfig: the per-key value checks (validate.cc), then the parallel
// resolution (resolve_parallel.cc).
#include "compiler/config/error_text.h"
#include "compiler/config/validate.h"
#include "models/registry.h"

namespace galaxy::config {

absl::StatusOr<GalaxyConfig> resolveConfig(const GalaxyConfig &in,
                                           const ParallelChoice &choice) {
  GalaxyConfig c = in;
  absl::StatusOr<PeftMethod> peft = checkValues(c);
  if (!peft.ok())
    return peft.status();
  c.full_model = *peft == PeftMethod::kFull;
  if (absl::Status s = resolveParallel(c, choice); !s.ok())
    return s;
  // The model's own checks again, now that the parallel mode is the one the
  // command line chose: some refuse a mode (BART: sequence parallelism).
  if (const models::ModelSpec *m = models::findModel(c.model_type);
      m && m->checkValues)
    if (absl::Status s = m->checkValues(c); !s.ok())
      return bad(c, std::string(s.message()));
  return c;
}

absl::Status validate(const GalaxyConfig &c, const ParallelChoice &choice) {
  return resolveConfig(c, choice).status();
}

absl::Status validate(const GalaxyConfig &c, ParallelMode mode, int world) {
  ParallelChoice choice;
  choice.mode = mode;
  choice.world = world;
  return validate(c, choice);
}

} // namespace galaxy::config
