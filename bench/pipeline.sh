#!/usr/bin/env bash
# BERT-base as a pipeline of 2 and 4 stages against serial: step time, the bubble
# measured against the (p-1)/m formula, activation memory per stage (a benchmark that
# prints figures, not a test).
#
#   bench/pipeline.sh [BUILD_DIR]     (default: build; needs galaxyc and galaxy-run there)
#
# Model: configs/bert/full.json (vocab 21128, H 768, 12 layers, SGD, dropout 0.1) with
# batch 8, seq 32, split into M microbatches. Runs: serial (1 rank, THREADS threads), and
# pp2 = stages [6,6], pp4 = [3,3,3,3], each under gpipe and 1f1b, 1 thread per rank, all
# ranks on this machine (galaxy-run --nproc). From rank 0's `galaxy-run --profile`
# (STEPS steps, the first dropped as warm-up): step time, per stage busy and idle seconds,
# the idle fraction (the measured bubble; the formula for equal stages is
# (p-1)/(m+p-1) of the step, i.e. (p-1)/m of the busy time), and activation memory
# (peak stash slots in use x slot bytes + arena). More ranks than cores oversubscribe the
# CPU: then idle time also holds waiting for a core, and the bubble reads high.
# Env: M (4), STEPS (4), THREADS (1), RUNS ("serial pp2-gpipe pp2-1f1b pp4-gpipe pp4-1f1b"),
#      GEMM (onednn), GALAXYC / GALAXY_RUN, BENCH_WORKDIR (keep the files there).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-$root/build}
m=${M:-4}
steps=${STEPS:-4}
threads=${THREADS:-1}
runs=${RUNS:-serial pp2-gpipe pp2-1f1b pp4-gpipe pp4-1f1b}
gemm=${GEMM:-onednn}
galaxyc=${GALAXYC:-$build/tools/galaxyc}
galaxy_run=${GALAXY_RUN:-$build/tools/galaxy-run}

bench=pipeline.sh
# shellcheck source=bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

python3 - "$work" "$root/configs/bert/full.json" "$m" <<'PY'
import json, random, sys
work, base, m = sys.argv[1], sys.argv[2], int(sys.argv[3])
r = random.Random(7)
with open(f"{work}/data.jsonl", "w") as f:
    for i in range(128):  # full-length rows: every step costs the same
        ids = [101] + [r.randrange(1000, 21128) for _ in range(31)]
        f.write(json.dumps({"input_ids": ids, "label": r.randrange(10)}) + "\n")
cfg = json.load(open(base))
cfg.update({"batch_size": 8, "pad_size": 32})
json.dump(cfg, open(f"{work}/serial.json", "w"))
for p, layers in ((2, [6, 6]), (4, [3, 3, 3, 3])):
    for sched in ("gpipe", "1f1b"):
        c = dict(cfg, parallel_mode="pp", stage_num_hidden_layers_list=layers,
                 num_microbatches=m, pp_schedule=sched)
        json.dump(c, open(f"{work}/pp{p}-{sched}.json", "w"))
PY

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores;" \
  "$(date -u +%Y-%m-%dT%H:%MZ); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "BERT-base, batch 8, seq 32, $m microbatches; $threads thread(s) per rank;" \
  "GEMM ${GALAXY_GEMM:-measured}; OMP_WAIT_POLICY=PASSIVE"
for name in $runs; do
  "$galaxyc" "$work/$name.json" -o "$work/plan_$name" >"$work/galaxyc_$name.log" 2>&1 ||
    { cat "$work/galaxyc_$name.log" >&2; exit 1; }
  extra=()
  [[ $name == serial ]] || extra=(--nproc "${name:2:1}" --profile)
  GALAXY_THREADS=$threads OMP_NUM_THREADS=$threads "$galaxy_run" "$work/plan_$name" \
    --data "$work/data.jsonl" --steps "$steps" "${extra[@]}" --timeout 600 \
    --metrics "$work/metrics_$name.jsonl" >"$work/run_$name.log" 2>&1 ||
    { tail -20 "$work/run_$name.log" >&2; exit 1; }
  echo "== $name"
  python3 - "$work/metrics_$name.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])][1:]  # step 1 warms up
ms = [8 / r["samples_per_s"] * 1000 for r in rows]
print(f"  step time: median {statistics.median(ms):.0f} ms over {len(ms)} steps"
      f" (min {min(ms):.0f}, max {max(ms):.0f})")
PY
  if [[ $name != serial ]]; then
    sed -n '/pipeline profile/,$p' "$work/run_$name.log" | sed 's/^\[rank 0\] /  /'
    p=${name:2:1}
    python3 - "$work/run_$name.log" "$p" "$m" <<'PY'
import re, sys
log, p, m = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
idle = [int(x) for x in re.findall(r"^\[rank 0\]\s+\d+\s+\d+\s+[\d.]+\s+[\d.]+\s+(\d+)%",
                                   open(log).read(), re.M)]
if idle:
    print(f"  bubble: measured idle {sum(idle) / len(idle):.0f}% of the step (mean over stages,"
          f" min {min(idle)}%, max {max(idle)}%); formula (p-1)/(m+p-1) ="
          f" {100 * (p - 1) / (m + p - 1):.0f}%")
PY
  fi
done
