#!/usr/bin/env bash
# BERT-base training step, Galaxy against PyTorch on this machine, in one run (a benchmark
# that prints figures, not a test).
#
#   bench/bert_step.sh [BUILD_DIR]          (default: build; needs galaxyc, galaxy-run and
#                                            cpu_kernels_bench built there)
#
# Model: vocab 21128, H 768, 12 layers, 12 heads, I 3072, 10 classes, batch 4, seq 32,
# dropout 0.1, SGD (configs/bert/full.json). Every side runs THREADS threads, its OpenMP
# threads waiting as its libraries do by default (unless OMP_WAIT_POLICY is set: then
# every side waits so), WARMUP untimed steps then STEPS timed ones, ROUNDS times
# alternately (the machine may be shared: the spread across rounds is printed). The sides:
# Galaxy (galaxy-run), our plain-torch transcription (bert_step_torch.py) and, when PYTHON
# imports transformers, Hugging Face's BertForSequenceClassification eager and under
# torch.compile (bert_step_hf.py).
# Env: STEPS (20), WARMUP (3), ROUNDS (3), THREADS (2), PYTHON (default: the project's
#      .venv python if it imports torch, else /usr/bin/python3 with Debian's torch),
#      HF (1: run the Hugging Face sides; 0 skips them), COMPILE_WARMUP (torch.compile's
#      untimed steps, compilation included: max(WARMUP, 3)), FUSE_AB (1: also run a plan
#      compiled with galaxyc --no-fuse, galaxy-fuse off, in every round: its effect in one run),
#      B_RUN (another galaxy-run binary, e.g. one built before a change) and/or B_ENV
#      (settings for env(1), e.g. "GOMP_SPINCOUNT=20000"): also run the plan with that binary
#      and those settings in every round, as side B_LABEL (default "B"): a change's effect
#      in one alternating run; B_GALAXYC (that commit's galaxyc) compiles side B's plan when
#      the plan format changed in between,
#      GALAXYC / GALAXY_RUN / KERNELS_BENCH (binaries), BENCH_WORKDIR (keep the files there).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-$root/build}
galaxyc=${GALAXYC:-$build/tools/galaxyc}
galaxy_run=${GALAXY_RUN:-$build/tools/galaxy-run}
kernels_bench=${KERNELS_BENCH:-$build/runtime/cpu/cpu_kernels_bench}
export PYTHONDONTWRITEBYTECODE=1

if [[ ! -x "$kernels_bench" ]]; then
  echo "bert_step.sh: $kernels_bench is missing: build the cpu_kernels_bench target in" \
    "$build (or set KERNELS_BENCH)" >&2
  exit 1
fi
if [[ ! -x /usr/bin/time ]]; then
  echo "bert_step.sh: /usr/bin/time is missing (Debian package 'time'): it measures peak RSS" >&2
  exit 1
fi
bench=bert_step.sh
gemm=auto
# shellcheck source=bench/common.sh
source "$here/common.sh"
bench_own_wait_defaults
bench_torch_python
bench_rounds_env

hf=${HF:-1}
if [[ "$hf" != 0 ]] && ! "$py" -c 'import transformers' 2>/dev/null; then
  echo "bert_step.sh: $py cannot import transformers: the Hugging Face sides are skipped" >&2
  hf=0
fi
compile_warmup=${COMPILE_WARMUP:-$((warmup > 3 ? warmup : 3))}

cp "$root/configs/bert/full.json" "$work/config.json"
bench_bert_rows "$work/data.jsonl"
"$galaxyc" "$work/config.json" -o "$work/plan" >"$work/galaxyc.log" 2>&1
fuse_ab=${FUSE_AB:-0}
if [[ "$fuse_ab" != 0 ]]; then
  "$galaxyc" "$work/config.json" --no-fuse -o "$work/plan_unfused" \
    >"$work/galaxyc_unfused.log" 2>&1
fi

b_run=${B_RUN:-}
b_env=${B_ENV:-}
b_label=${B_LABEL:-B}
b_side=0
if [[ -n "$b_run" || -n "$b_env" ]]; then
  b_side=1
  if [[ -n "$b_run" ]]; then
    cp "$b_run" "$work/bin/galaxy-run-b" # a snapshot, as common.sh does for ours
    b_run=$work/bin/galaxy-run-b
  else
    b_run=$galaxy_run
  fi
  "${B_GALAXYC:-$galaxyc}" "$work/config.json" -o "$work/plan_b" >"$work/galaxyc_b.log" 2>&1 ||
    { cat "$work/galaxyc_b.log" >&2; exit 1; }
fi

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores online;" \
  "threads $threads; OpenMP wait: ${OMP_WAIT_POLICY:+OMP_WAIT_POLICY=}${OMP_WAIT_POLICY:-every side at its default};" \
  "$(date -u +%Y-%m-%dT%H:%MZ); load average $(cut -d' ' -f1-3 /proc/loadavg)"
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
  if [[ "$fuse_ab" != 0 ]]; then
    /usr/bin/time -v -o "$work/unfused_time_$r.txt" "$galaxy_run" "$work/plan_unfused" \
      --data "$work/data.jsonl" --steps "$total" --metrics "$work/unfused_metrics_$r.jsonl" \
      >"$work/unfused_$r.log" 2>&1 || { cat "$work/unfused_$r.log" >&2; exit 1; }
  fi
  if [[ "$b_side" != 0 ]]; then
    # shellcheck disable=SC2086  # B_ENV is a list of settings
    /usr/bin/time -v -o "$work/b_time_$r.txt" env $b_env "$b_run" "$work/plan_b" \
      --data "$work/data.jsonl" --steps "$total" --metrics "$work/b_metrics_$r.jsonl" \
      >"$work/b_$r.log" 2>&1 || { cat "$work/b_$r.log" >&2; exit 1; }
  fi
  /usr/bin/time -v -o "$work/torch_time_$r.txt" "$py" "$here/bert_step_torch.py" \
    "$work/config.json" "$work/data.jsonl" --steps "$steps" --warmup "$warmup" \
    --threads "$threads" >"$work/torch_$r.json" 2>"$work/torch_$r.log" ||
    { cat "$work/torch_$r.log" >&2; exit 1; }
  if [[ "$hf" != 0 ]]; then
    for mode in eager compile; do
      w=$warmup
      [[ $mode == compile ]] && w=$compile_warmup
      /usr/bin/time -v -o "$work/hf_${mode}_time_$r.txt" "$py" "$here/bert_step_hf.py" \
        "$work/config.json" "$work/data.jsonl" --mode "$mode" --steps "$steps" \
        --warmup "$w" --threads "$threads" >"$work/hf_${mode}_$r.json" \
        2>"$work/hf_${mode}_$r.log" || { cat "$work/hf_${mode}_$r.log" >&2; exit 1; }
    done
  fi
  echo "round $r/$rounds done"
done
grep -m1 "GEMM:" "$work/galaxy_1.log" | sed 's/^galaxy-run: //'
echo "sgemm peak readings (start, then before each round): ${peaks[*]} GFLOP/s"
peak=$(printf '%s\n' "${peaks[@]}" | sort -g | tail -1)
echo "sgemm peak used: $peak GFLOP/s (the highest reading)"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other processes' load skews both sides)"

if [[ "$b_side" != 0 ]]; then
  echo "side $b_label: ${B_RUN:-the same galaxy-run}${b_env:+ with $b_env}"
fi

"$py" - "$work" "$rounds" "$warmup" "$peak" "$hf" "$fuse_ab" "$b_side" "$b_label" <<'EOF'
import json, re, statistics, sys
work, rounds, warmup, peak = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
hf, fuse_ab = sys.argv[5] != "0", sys.argv[6] != "0"
b_side, b_label = sys.argv[7] != "0", sys.argv[8]
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

def galaxy_round(r, prefix="galaxy"):
    rows = [json.loads(l) for l in open(f"{work}/{prefix}_metrics_{r}.jsonl")]
    return statistics.median(B / row["samples_per_s"] for row in rows[warmup:])

def side(prefix):
    rows = [json.load(open(f"{work}/{prefix}_{r}.json")) for r in range(1, rounds + 1)]
    rss = max(rss_mib(f"{work}/{prefix}_time_{r}.txt") for r in range(1, rounds + 1))
    return [row["median_s"] for row in rows], rss, rows[0]

g = [galaxy_round(r) for r in range(1, rounds + 1)]
g_rss = max(rss_mib(f"{work}/galaxy_time_{r}.txt") for r in range(1, rounds + 1))
sides = [("Galaxy", g, g_rss)]
if fuse_ab:
    u = [galaxy_round(r, "unfused") for r in range(1, rounds + 1)]
    sides.append(("unfused", u, max(rss_mib(f"{work}/unfused_time_{r}.txt")
                                     for r in range(1, rounds + 1))))
if b_side:
    bb = [galaxy_round(r, "b") for r in range(1, rounds + 1)]
    sides.append((b_label[:11], bb, max(rss_mib(f"{work}/b_time_{r}.txt")
                                        for r in range(1, rounds + 1))))
t, t_rss, t_row = side("torch")
sides.append(("torch", t, t_rss))
if hf:
    e, e_rss, e_row = side("hf_eager")
    c, c_rss, c_row = side("hf_compile")
    sides += [("HF eager", e, e_rss), ("HF compile", c, c_rss)]
gm = statistics.median(g)
print(f"step FLOPs: {step_flops / 1e9:.1f} GFLOP (3x forward matmuls)")
print(f"{'':11} {'median step':>12} {'rounds (min..max)':>20} {'GFLOP/s':>9} {'% peak':>7}"
      f" {'peak RSS':>9} {'Galaxy/this':>11}")
for name, v, rss in sides:
    m = statistics.median(v)
    print(f"{name:11} {m * 1e3:9.0f} ms {min(v) * 1e3:9.0f}..{max(v) * 1e3:.0f} ms"
          f" {step_flops / m / 1e9:9.1f} {100 * step_flops / m / 1e9 / peak:6.0f}%"
          f" {rss:6.0f} MiB {gm / m:11.2f}")
print(f"torch: our transcription (bert_step_torch.py), torch {t_row['torch']}, "
      f"{t_row['threads']} threads ({sys.executable})")
if hf:
    print(f"HF: BertForSequenceClassification, transformers {e_row['transformers']}; "
          f"torch.compile's warm-up (compilation included): {sum(c_row['warmup_s']):.1f} s")
    print(f"Galaxy / HF eager: {gm / statistics.median(e):.2f} (target <= 0.5); "
          f"Galaxy / HF torch.compile: {gm / statistics.median(c):.2f} (target <= 0.6)")
print(f"Galaxy / torch transcription: {gm / statistics.median(t):.2f}; Galaxy at "
      f"{100 * step_flops / gm / 1e9 / peak:.0f}% of the sgemm peak (target >= 80%)")
EOF
