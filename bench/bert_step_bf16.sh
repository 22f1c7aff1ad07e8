#!/usr/bin/env bash
# BERT-base training step in bf16: Galaxy's bf16 plan against Galaxy's fp32 plan and
# PyTorch under torch.autocast("cpu", dtype=torch.bfloat16), in one run (a benchmark that
# prints figures, not a test).
#
#   bench/bert_step_bf16.sh [BUILD_DIR]     (default: build; needs galaxyc and galaxy-run)
#
# Model as bench/bert_step.sh (configs/bert/full.json: H 768, 12 layers, I 3072, batch 4,
# seq 32, dropout 0.1, SGD); the bf16 plan is the same config with "dtype": "bf16". All
# three run THREADS threads, OpenMP waiting as each side's libraries do by default (unless
# OMP_WAIT_POLICY is set: then every side waits so), WARMUP untimed steps then STEPS
# timed ones, ROUNDS times alternately (the order rotates each round, so a slow spell on a
# shared machine does not always hit the same side); the spread across rounds is printed.
# Targets (issue 18): Galaxy bf16 <= 0.65x Galaxy fp32 and <= 0.5x PyTorch autocast.
# Env: STEPS (20), WARMUP (3), ROUNDS (3), THREADS (2), PYTHON (default: the project's
#      .venv python if it imports torch, else /usr/bin/python3), GALAXYC / GALAXY_RUN,
#      BENCH_WORKDIR (keep the files there), GALAXY_BF16=emulate (the emulated bf16 path),
#      BASELINE_RUN (another galaxy-run binary, e.g. built at an older commit: its bf16 step
#      joins the rounds as a fourth side, for a before/after in one run), BASELINE_GALAXYC
#      (the galaxyc of that commit, which compiles the baseline's plan: needed when the plan
#      format changed in between).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-$root/build}
galaxyc=${GALAXYC:-$build/tools/galaxyc}
galaxy_run=${GALAXY_RUN:-$build/tools/galaxy-run}
export PYTHONDONTWRITEBYTECODE=1

bench=bert_step_bf16.sh
gemm=auto
# shellcheck source=bench/common.sh
source "$here/common.sh"
bench_own_wait_defaults
bench_torch_python
bench_rounds_env

"$py" - "$root/configs/bert/full.json" "$work" <<'EOF2'
import json, sys
cfg = json.load(open(sys.argv[1]))
for dtype in ("fp32", "bf16"):
    json.dump(dict(cfg, dtype=dtype), open(f"{sys.argv[2]}/{dtype}.json", "w"), indent=1)
EOF2
bench_bert_rows "$work/data.jsonl"
for dtype in fp32 bf16; do
  "$galaxyc" "$work/$dtype.json" -o "$work/$dtype.plan" >"$work/galaxyc_$dtype.log" 2>&1 ||
    { cat "$work/galaxyc_$dtype.log" >&2; exit 1; }
done

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores online," \
  "bf16 flags: $(grep -o -w 'avx512_bf16\|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')" \
  "threads $threads; OpenMP wait: ${OMP_WAIT_POLICY:+OMP_WAIT_POLICY=}${OMP_WAIT_POLICY:-every side at its default};" \
  "$(date -u +%Y-%m-%dT%H:%MZ); load average $(cut -d' ' -f1-3 /proc/loadavg)"

total=$((warmup + steps))
sides=(fp32 bf16 torch)
if [[ -n "${BASELINE_RUN:-}" ]]; then
  cp "$BASELINE_RUN" "$work/bin/galaxy-run-baseline"
  "${BASELINE_GALAXYC:-$galaxyc}" "$work/bf16.json" -o "$work/base.plan" >"$work/galaxyc_base.log" 2>&1 ||
    { cat "$work/galaxyc_base.log" >&2; exit 1; }
  sides+=(base)
fi
run_side() { # side round
  case $1 in
  fp32 | bf16)
    "$galaxy_run" "$work/$1.plan" --data "$work/data.jsonl" --steps "$total" \
      --metrics "$work/$1_$2.jsonl" >"$work/$1_$2.log" 2>&1 || { cat "$work/$1_$2.log" >&2; exit 1; } ;;
  base)
    "$work/bin/galaxy-run-baseline" "$work/base.plan" --data "$work/data.jsonl" --steps "$total" \
      --metrics "$work/$1_$2.jsonl" >"$work/$1_$2.log" 2>&1 || { cat "$work/$1_$2.log" >&2; exit 1; } ;;
  torch)
    "$py" "$here/bert_step_torch.py" "$work/fp32.json" "$work/data.jsonl" --steps "$steps" \
      --warmup "$warmup" --threads "$threads" --autocast-bf16 >"$work/torch_$2.json" \
      2>"$work/torch_$2.log" || { cat "$work/torch_$2.log" >&2; exit 1; } ;;
  esac
}
for r in $(seq 1 "$rounds"); do
  for i in "${!sides[@]}"; do
    run_side "${sides[$(((i + r - 1) % ${#sides[@]}))]}" "$r"
  done
  echo "round $r/$rounds done"
done
grep -m1 "GEMM:" "$work/bf16_1.log" | sed 's/^galaxy-run: //'
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other processes' load skews every side)"

"$py" - "$work" "$rounds" "$warmup" <<'EOF2'
import json, statistics, sys
work, rounds, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
B = json.load(open(f"{work}/fp32.json"))["batch_size"]

def galaxy(side, r):
    rows = [json.loads(l) for l in open(f"{work}/{side}_{r}.jsonl")]
    return statistics.median(B / row["samples_per_s"] for row in rows[warmup:])

import os
rs = range(1, rounds + 1)
t = {"Galaxy fp32": [galaxy("fp32", r) for r in rs],
     "Galaxy bf16": [galaxy("bf16", r) for r in rs],
     "PyTorch autocast bf16": [json.load(open(f"{work}/torch_{r}.json"))["median_s"] for r in rs]}
base = os.path.exists(f"{work}/base_1.jsonl")
if base:
    t["bf16, BASELINE_RUN"] = [galaxy("base", r) for r in rs]
print(f"{'':22} {'median step':>12} {'rounds (min..max)':>20}")
for name, v in t.items():
    print(f"{name:22} {statistics.median(v) * 1e3:9.0f} ms {min(v) * 1e3:9.0f}..{max(v) * 1e3:.0f} ms")
torch_v = json.load(open(f"{work}/torch_1.json"))["torch"]
print(f"PyTorch: torch {torch_v} ({sys.executable})")
# Ratios per round (the sides of one round ran back to back), then their median.
vs32 = [b / f for b, f in zip(t["Galaxy bf16"], t["Galaxy fp32"])]
vsto = [b / p for b, p in zip(t["Galaxy bf16"], t["PyTorch autocast bf16"])]
print(f"Galaxy bf16 / Galaxy fp32: {statistics.median(vs32):.2f} (per round "
      f"{', '.join(f'{x:.2f}' for x in vs32)}; target <= 0.65)")
print(f"Galaxy bf16 / PyTorch autocast bf16: {statistics.median(vsto):.2f} (per round "
      f"{', '.join(f'{x:.2f}' for x in vsto)}; target <= 0.5)")
if base:
    for name, key in (("fp32", "Galaxy fp32"), ("autocast", "PyTorch autocast bf16")):
        v = [b / f for b, f in zip(t["bf16, BASELINE_RUN"], t[key])]
        print(f"BASELINE_RUN bf16 / {name}: {statistics.median(v):.2f} (per round "
              f"{', '.join(f'{x:.2f}' for x in v)})")
    v = [n / b for n, b in zip(t["Galaxy bf16"], t["bf16, BASELINE_RUN"])]
    print(f"Galaxy bf16 / BASELINE_RUN bf16: {statistics.median(v):.2f} (per round "
          f"{', '.join(f'{x:.2f}' for x in v)})")
EOF2
