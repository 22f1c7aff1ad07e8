#include "tools/galaxy-run/profile_report.h"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/exec/profiling.h"
#include "tools/galaxy-run/outputs.h"

namespace galaxy::run {

// --profile: every rank's instruction times, gathered; rank 0 prints and
// writes the JSON (merged into galaxyc's tree with --profile-static) and SVG.
void reportProfile(const rt::Executor &ex, const Args &args,
                   comm::Communicator *comm, double measuredS, bool lead) {
  namespace prof = rt::profiling;
  const int64_t runs = ex.timedRuns("train_step");
  auto mine = prof::measureRank(
      ex.plan(), "train_step", ex.instrSeconds("train_step"), runs,
      runs > 0 ? measuredS / runs : 0, ex.commBusySeconds("train_step"));
  if (!mine.ok())
    fail(1, std::string(mine.status().message()));
  auto all = prof::gatherMeasured(comm, *mine);
  if (!all.ok())
    fail(1, absl::StrCat("gathering the profile: ", all.status().message()));
  if (!lead)
    return;
  std::cerr << prof::measuredText(*all);
  auto write = [](const std::string &path, const std::string &text) {
    if (absl::Status s = writeTextAtomically(path, text); !s.ok())
      fail(1, std::string(s.message()));
    std::cerr << "galaxy-run: wrote " << path << "\n";
  };
  if (!args.profileJson.empty()) {
    nlohmann::json j = prof::measuredJson(*all);
    if (!args.profileStatic.empty()) {
      std::ifstream in(args.profileStatic);
      j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded())
        fail(2,
             "--profile-static: '" + args.profileStatic +
                 "' is not JSON (write it with galaxyc CONFIG --profile-json "
                 "FILE)");
      if (absl::Status s = prof::mergeMeasured(j, *all); !s.ok())
        fail(2, absl::StrCat("--profile-static ", args.profileStatic, ": ",
                             s.message()));
    }
    write(args.profileJson, j.dump(1) + "\n");
  }
  if (!args.profileSvg.empty())
    write(args.profileSvg,
          prof::profileSvg(
              *all, absl::StrCat("galaxy-run --profile: ", args.plan, ", ",
                                 all->size(),
                                 all->size() == 1 ? " rank" : " ranks")));
}

// --profile: every rank's busy / idle time and memory, gathered; rank 0
// prints one line per rank.
void reportPipelineProfile(const rt::PipelineDriver &driver,
                           const rt::Executor &ex, comm::Communicator *world,
                           double measuredS, int64_t measuredSteps,
                           bool warmUpDropped, bool lead) {
  const rt::PipelineStats &st = driver.stats();
  constexpr size_t kFields = 9;
  const std::vector<float> mine = {
      float(driver.stage()), float(ex.plan().rank()),
      float(st.busySeconds), float(st.idleSeconds),
      float(measuredS),      float(measuredSteps),
      float(st.peakSlots),   float(ex.stashSlotBytes()),
      float(ex.arenaBytes())};
  const int n = world ? world->size() : 1;
  std::vector<float> all(kFields * n);
  if (world) {
    if (absl::Status s = world->allGatherV(mine.data(), kFields, all.data(),
                                           std::vector<size_t>(n, kFields));
        !s.ok())
      fail(1, absl::StrCat("gathering the profile: ", s.message()));
  } else {
    all = mine;
  }
  if (!lead)
    return;
  auto bytes = [](double b) {
    return b >= 1 << 20 ? absl::StrFormat("%.2f MiB", b / (1 << 20))
           : b >= 1024  ? absl::StrFormat("%.2f KiB", b / 1024)
                        : absl::StrFormat("%.0f B", b);
  };
  std::cerr << absl::StrFormat(
      "pipeline profile: %d measured steps%s\n"
      "  stage rank    busy s    idle s  idle  step ms  activation memory "
      "(peak slots x slot + arena)\n",
      measuredSteps, warmUpDropped ? " (step 1 dropped as warm-up)" : "");
  for (int r = 0; r < n; ++r) {
    const float *f = &all[kFields * r];
    const double busy = f[2], idle = f[3], wall = f[4], steps = f[5];
    const double slots = f[6], slot = f[7], arena = f[8];
    // Idle: blocked on a neighbour stage (the bubble), of the wall time.
    std::cerr << absl::StrFormat(
        "  %5d %4d %9.4f %9.4f %4.0f%% %8.1f  %.0f x %s + %s = %s\n", int(f[0]),
        int(f[1]), busy, idle, wall > 0 ? 100 * idle / wall : 0.0,
        steps > 0 ? 1000 * wall / steps : 0.0, slots, bytes(slot), bytes(arena),
        bytes(slots * slot + arena));
  }
}

} // namespace galaxy::run
