#!/usr/bin/env bash
# BERT-base training step, Galaxy against PyTorch on this machine, in one run (a benchmark
# that prints figures, not a test).
#
#   bench/bert_step.sh [BUILD_DIR]          (default: build; needs galaxyc, galaxy-run and
#                                            cpu_kernels_bench built there)
#
# Model: vocab 21128, H 768, 12 layers, 12 heads, I 3072, 10 classes, batch 4, seq 32,
# dropout 0.1, SGD (configs/bert/full.json). Both sides run THREADS threads with
# OMP_WAIT_POLICY=PASSIVE, WARMUP untimed steps then STEPS timed ones, ROUNDS times
# alternately (the machine may be shared: the spread across rounds is printed).
# Env: STEPS (20), WARMUP (3), ROUNDS (3), THREADS (2), PYTHON (default: the project's
#      .venv python if it imports torch, else /usr/bin/python3 with Debian's torch),
#      GALAXYC / GALAXY_RUN / KERNELS_BENCH (binaries), BENCH_WORKDIR (keep the files there).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-$root/build}
steps=${STEPS:-20}
warmup=${WARMUP:-3}
rounds=${ROUNDS:-3}
threads=${THREADS:-2}
galaxyc=${GALAXYC:-$build/tools/galaxyc}
galaxy_run=${GALAXY_RUN:-$build/tools/galaxy-run}
kernels_bench=${KERNELS_BENCH:-$build/runtime/cpu/cpu_kernels_bench}
export PYTHONDONTWRITEBYTECODE=1

for bin in "$galaxyc" "$galaxy_run" "$kernels_bench"; do
  if [[ ! -x "$bin" ]]; then
    echo "bert_step.sh: $bin is missing: build the galaxyc, galaxy-run and" \
      "cpu_kernels_bench targets in $build (or set GALAXYC / GALAXY_RUN / KERNELS_BENCH)" >&2
    exit 1
  fi
done
if [[ ! -x /usr/bin/time ]]; then
  echo "bert_step.sh: /usr/bin/time is missing (Debian package 'time'): it measures peak RSS" >&2
  exit 1
fi
if [[ -n "${PYTHON:-}" ]]; then
  py=$PYTHON
elif [[ -x "$root/.venv/bin/python" ]] && "$root/.venv/bin/python" -c 'import torch' 2>/dev/null; then
  py=$root/.venv/bin/python
else
  py=/usr/bin/python3
fi
if ! "$py" -c 'import torch' 2>/dev/null; then
  echo "bert_step.sh: $py cannot import torch: install python3-torch or set PYTHON" >&2
  exit 1
fi

if [[ -n "${BENCH_WORKDIR:-}" ]]; then
  work=$BENCH_WORKDIR
  mkdir -p "$work"
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/galaxy-bench.XXXXXX")
  trap 'rm -rf "$work"' EXIT
fi

# Both sides: the same thread count, no spinning OpenMP threads (on a shared machine they
# steal the cores the other threads need).
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=$threads GALAXY_THREADS=$threads

cp "$root/configs/bert/full.json" "$work/config.json"
"$py" - "$work/data.jsonl" <<'EOF'
import json, random, sys
r = random.Random(7)
with open(sys.argv[1], "w") as f:
    for i in range(256):  # full-length rows: every step costs the same
        ids = [101] + [r.randrange(1000, 21128) for _ in range(31)]
        f.write(json.dumps({"input_ids": ids, "label": r.randrange(10)}) + "\n")
EOF
"$galaxyc" "$work/config.json" -o "$work/plan" >"$work/galaxyc.log" 2>&1

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores online;" \
  "threads $threads; $(date -u +%Y-%m-%dT%H:%MZ); load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$kernels_bench" --sgemm-peak >"$work/peak.txt"
peak=$(sed -n 's/^sgemm_peak_gflops \([0-9.]*\).*/\1/p' "$work/peak.txt")
echo "sgemm peak: $(grep sgemm_peak_gflops "$work/peak.txt" | cut -d' ' -f2-)"

total=$((warmup + steps))
peaks=("$peak")
for r in $(seq 1 "$rounds"); do
  # The peak again before each round: on a VM the host can halve a core's
  # speed for minutes; the highest reading is the machine's peak.
  p=$("$kernels_bench" --sgemm-peak | sed -n 's/^sgemm_peak_gflops \([0-9.]*\).*/\1/p')
  peaks+=("$p")
  /usr/bin/time -v -o "$work/galaxy_time_$r.txt" "$galaxy_run" "$work/plan" \
    --data "$work/data.jsonl" --steps "$total" --metrics "$work/galaxy_metrics_$r.jsonl" \
    >"$work/galaxy_$r.log" 2>&1 || { cat "$work/galaxy_$r.log" >&2; exit 1; }
  /usr/bin/time -v -o "$work/torch_time_$r.txt" "$py" "$here/bert_step_torch.py" \
    "$work/config.json" "$work/data.jsonl" --steps "$steps" --warmup "$warmup" \
    --threads "$threads" >"$work/torch_$r.json" 2>"$work/torch_$r.log" ||
    { cat "$work/torch_$r.log" >&2; exit 1; }
  echo "round $r/$rounds done"
done
grep -m1 "GEMM:" "$work/galaxy_1.log" | sed 's/^galaxy-run: //'
echo "sgemm peak readings (start, then before each round): ${peaks[*]} GFLOP/s"
peak=$(printf '%s\n' "${peaks[@]}" | sort -g | tail -1)
echo "sgemm peak used: $peak GFLOP/s (the highest reading)"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other processes' load skews both sides)"

"$py" - "$work" "$rounds" "$warmup" "$peak" <<'EOF'
import json, re, statistics, sys
work, rounds, warmup, peak = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
cfg = json.load(open(f"{work}/config.json"))
B, S, H, I = cfg["batch_size"], cfg["pad_size"], cfg["hidden_size"], cfg["intermediate_size"]
L, n, C = cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["num_classes"]
T = B * S
# Forward matmul FLOPs (2 per multiply-add): Q, K, V, output projection, the MLP's two
# linears, QK^T and PV per layer; pooler and classifier once. Training = 3x forward
# (the input and the weight gradient each cost one forward's worth).
layer = 2 * T * (4 * H * H + 2 * H * I) + 2 * 2 * B * n * S * S * (H // n)
fwd = L * layer + 2 * B * H * H + 2 * B * H * C
step_flops = 3 * fwd

def rss_mib(path):
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(path).read())
    return int(m.group(1)) / 1024

def galaxy_round(r):
    rows = [json.loads(l) for l in open(f"{work}/galaxy_metrics_{r}.jsonl")]
    return statistics.median(B / row["samples_per_s"] for row in rows[warmup:])

g = [galaxy_round(r) for r in range(1, rounds + 1)]
t_rows = [json.load(open(f"{work}/torch_{r}.json")) for r in range(1, rounds + 1)]
t = [row["median_s"] for row in t_rows]
g_rss = max(rss_mib(f"{work}/galaxy_time_{r}.txt") for r in range(1, rounds + 1))
t_rss = max(rss_mib(f"{work}/torch_time_{r}.txt") for r in range(1, rounds + 1))
gm, tm = statistics.median(g), statistics.median(t)
print(f"step FLOPs: {step_flops / 1e9:.1f} GFLOP (3x forward matmuls)")
print(f"{'':10} {'median step':>12} {'rounds (min..max)':>20} {'GFLOP/s':>9} {'% peak':>7} {'peak RSS':>9}")
for name, m, v, rss in (("Galaxy", gm, g, g_rss), (f"PyTorch", tm, t, t_rss)):
    print(f"{name:10} {m * 1e3:9.0f} ms {min(v) * 1e3:9.0f}..{max(v) * 1e3:.0f} ms"
          f" {step_flops / m / 1e9:9.1f} {100 * step_flops / m / 1e9 / peak:6.0f}% {rss:6.0f} MiB")
print(f"PyTorch: torch {t_rows[0]['torch']}, {t_rows[0]['threads']} threads ({sys.executable})")
print(f"Galaxy / PyTorch step time: {gm / tm:.2f} (target <= 0.6); Galaxy at "
      f"{100 * step_flops / gm / 1e9 / peak:.0f}% of the sgemm peak (target >= 60%)")
EOF
