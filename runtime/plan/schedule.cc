#include "runtime/plan/schedule.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace galaxy::plan {

std::vector<PipeOp> stageSchedule(const std::string &kind, int stage,
                                  int stages, int m) {
  std::vector<PipeOp> ops;
  if (kind == "1f1b") {
    const int warm = std::min(stages - stage - 1, m);
    for (int i = 0; i < warm; ++i)
      ops.push_back({true, i});
    for (int i = 0; i + warm < m; ++i) {
      ops.push_back({true, warm + i});
      ops.push_back({false, i});
    }
    for (int i = std::max(m - warm, 0); i < m; ++i)
      ops.push_back({false, i});
    return ops;
  }
  for (int i = 0; i < m; ++i)
    ops.push_back({true, i});
  for (int i = 0; i < m; ++i)
    ops.push_back({false, i});
  return ops;
}

int stashSlots(const std::string &kind, int stage, int stages, int m) {
  if (kind == "1f1b")
    return std::max(1, std::min(stages - stage, m));
  return std::max(1, m);
}

Timeline simulate(const std::string &kind, int stages, int m, double fwdCost,
                  double bwdCost) {
  Timeline t;
  t.fwdCost = fwdCost;
  t.bwdCost = bwdCost;
  t.ops.resize(stages);
  t.start.resize(stages);
  for (int s = 0; s < stages; ++s) {
    t.ops[s] = stageSchedule(kind, s, stages, m);
    t.start[s].assign(t.ops[s].size(), -1);
  }
  // done[f/b][stage][mb]: finish time, or -1 while not yet scheduled.
  std::vector<std::vector<double>> fDone(stages, std::vector<double>(m, -1)),
      bDone(stages, std::vector<double>(m, -1));
  std::vector<size_t> next(stages, 0);
  std::vector<double> free(stages, 0);
  bool progress = true;
  while (progress) {
    progress = false;
    for (int s = 0; s < stages; ++s) {
      while (next[s] < t.ops[s].size()) {
        const PipeOp op = t.ops[s][next[s]];
        double ready = free[s];
        if (op.forward && s > 0) {
          if (fDone[s - 1][op.microbatch] < 0)
            break;
          ready = std::max(ready, fDone[s - 1][op.microbatch]);
        }
        if (!op.forward) {
          double dep = s + 1 < stages ? bDone[s + 1][op.microbatch]
                                      : fDone[s][op.microbatch];
          if (dep < 0)
            break;
          ready = std::max(ready, dep);
        }
        t.start[s][next[s]] = ready;
        free[s] = ready + (op.forward ? fwdCost : bwdCost);
        (op.forward ? fDone : bDone)[s][op.microbatch] = free[s];
        ++next[s];
        progress = true;
      }
    }
  }
  t.makespan = *std::max_element(free.begin(), free.end());
  const double busy = m * (fwdCost + bwdCost);
  const double idle = t.makespan - busy; // per stage, equal stages
  t.bubbleFraction = t.makespan > 0 ? idle / t.makespan : 0;
  t.bubbleOverBusy = busy > 0 ? idle / busy : 0;
  return t;
}

std::string renderTimeline(const Timeline &t,
                           const std::vector<std::string> &labels) {
  size_t width = 0;
  for (const std::string &l : labels)
    width = std::max(width, l.size());
  std::string out;
  for (size_t s = 0; s < t.ops.size(); ++s) {
    std::string head =
        s < labels.size() ? labels[s] : "stage " + std::to_string(s);
    head.resize(std::max(width, head.size()), ' ');
    out += head + " |";
    double clock = 0;
    for (size_t i = 0; i < t.ops[s].size(); ++i) {
      for (; clock + 1e-9 < t.start[s][i]; clock += 1)
        out += " ..";
      const PipeOp op = t.ops[s][i];
      const int units =
          static_cast<int>(std::lround(op.forward ? t.fwdCost : t.bwdCost));
      char cell[16];
      std::snprintf(cell, sizeof cell, " %c%d", op.forward ? 'F' : 'B',
                    op.microbatch);
      for (int u = 0; u < units; ++u)
        out += cell;
      clock += units;
    }
    for (; clock + 1e-9 < t.makespan; clock += 1)
      out += " ..";
    out += "\n";
  }
  return out;
}

} // namespace galaxy::plan
