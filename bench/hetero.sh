#!/usr/bin/env bash
# Uneven devices made real on this machine: BERT training over 2 ranks, one of them slowed,
# with the even split, every split tried (the best of them), and the planner's split
# (`galaxyc --auto --devices`, issue 17) against what `galaxy-run --calibrate` measured
# (a benchmark that prints figures, not a test).
#
#   bench/hetero.sh [BUILD_DIR]       (default: build; needs galaxyc and galaxy-run there)
#
# Heterogeneity: rank 0 runs alone on core CORE0, rank 1 on core CORE1, each with
# GALAXY_THREADS=1, and rank 1 is slowed by SLOW:
#   quota  a CPU-quota cgroup (cgroup v1 cpu controller, else v2 cpu.max: needs root or a
#          delegated cgroup) of SHARE of a core (default 0.5: about half speed on an idle
#          machine; on a loaded one the quota binds only below what the rank gets anyway);
#   busy   a busy loop pinned to CORE1 (rank 1 gets about half of its core while both
#          compute, and its core promptly when it wakes from a collective, as a slower
#          device answers at once; with a cgroup the two share one weighted group, without
#          one, no privileges needed but other load shares the cores);
#   none   no slowing (a control: the even split should then be best).
# Default: busy. A quota throttles a rank mid-collective for the rest of its period and
# lets an idle one burst above its rate, so its collectives cost what its load of the
# moment says, not what a slower device's would (the issue-17 figures use busy). The
# same setup holds for the calibration and for every training run.
# Model: CONFIG (configs/bert/full.json: BERT-base, batch 4 x seq 32, SGD) with LAYERS
# layers (12; fewer finish sooner), in MODE tp (ATT and MLP tensor parallel: heads h0 / H-h0
# and intermediate I·h0/H) or galaxy (ATT TP, CON SP, MLP TP: the sequence split in the same
# proportion). The sweep tries h0 = 1 .. H-1 (SWEEP="6 7 8" tries those); the even split is
# h0 = H/2. Every run starts from one saved checkpoint (--init). Step time = batch /
# samples_per_s of rank 0's --metrics, median of the STEPS steps after WARMUP; ROUNDS rounds
# go round-robin over the runs (load drift on a shared machine hits all alike).
# The planner: when `galaxyc --help` lists --auto, `galaxyc CONFIG --auto --devices
# DEVICES.json -o plan_auto` chooses (any mode it likes); its predicted step time is read
# from its output (the first line matching PREDICT_RE, a number with ms or s) and set
# against the measured one. Without --auto in galaxyc the planner's run is skipped (said so).
# Env: CONFIG, LAYERS (12), MODE (tp), SWEEP (all), STEPS (5), WARMUP (1), ROUNDS (1),
#      SLOW (busy|quota|none), SHARE (0.5), ISOLATE (1: weigh the ranks above other load), CORE0 (0), CORE1 (1), PORT (29731),
#      GEMM (onednn; "auto" lets galaxy-run measure), PREDICT_RE, GALAXYC / GALAXY_RUN,
#      BENCH_WORKDIR (keep the files there).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-$root/build}
config=${CONFIG:-$root/configs/bert/full.json}
layers=${LAYERS:-12}
mode=${MODE:-tp}
sweep=${SWEEP:-all}
steps=${STEPS:-5}
warmup=${WARMUP:-1}
rounds=${ROUNDS:-1}
share=${SHARE:-0.5}
core0=${CORE0:-0}
core1=${CORE1:-1}
port=${PORT:-29731}
gemm=${GEMM:-onednn}
predict_re=${PREDICT_RE:-'predicted[^0-9]*step[^0-9]*([0-9.]+) *(ms|s)\b'}
galaxyc=${GALAXYC:-$build/tools/galaxyc}
galaxy_run=${GALAXY_RUN:-$build/tools/galaxy-run}

bench=hetero.sh
# shellcheck source=bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

case "$mode" in tp | galaxy) ;; *)
  echo "hetero.sh: MODE must be tp or galaxy, got '$mode'" >&2
  exit 2
  ;;
esac
if ! command -v taskset >/dev/null; then
  echo "hetero.sh: needs taskset (util-linux) to pin the ranks to cores" >&2
  exit 1
fi
if ((core0 >= $(nproc) || core1 >= $(nproc))); then
  echo "hetero.sh: cores $core0 and $core1 must exist ($(nproc) online)" >&2
  exit 1
fi

# --- the slowed rank's setup -------------------------------------------------------------
cgroup="" busy_pid=""
make_quota_group() {
  # A short period (the kernel's smallest quota is 1 ms): a rank throttled for most of a
  # long period stalls its peers' collectives for up to that period at a time, latencies
  # a device that is merely slower would not have.
  local period quota
  read -r period quota < <(python3 -c "
p = max(2000, int(1000 / $share + 0.999)); print(p, max(1000, int(p * $share)))")
  local v1=/sys/fs/cgroup/cpu/galaxy-hetero-$$
  if mkdir "$v1" 2>/dev/null; then
    if echo "$period" >"$v1/cpu.cfs_period_us" && echo "$quota" >"$v1/cpu.cfs_quota_us"; then
      cgroup=$v1
      make_weighted_group /sys/fs/cgroup/cpu/galaxy-hetero-fast-$$ cpu.shares 262144
      return 0
    fi
    rmdir "$v1"
  fi
  local v2=/sys/fs/cgroup/galaxy-hetero-$$
  if [[ -f /sys/fs/cgroup/cgroup.controllers ]] && mkdir "$v2" 2>/dev/null; then
    if echo "$quota $period" >"$v2/cpu.max" 2>/dev/null; then
      cgroup=$v2
      make_weighted_group /sys/fs/cgroup/galaxy-hetero-fast-$$ cpu.weight 10000
      return 0
    fi
    rmdir "$v2"
  fi
  return 1
}
# SLOW=busy|none with ISOLATE=1: rank 1 (and its busy loop) in one weighted group (no
# quota), rank 0 in another, so other load on the machine takes neither core; inside rank
# 1's group the two split core 1: rank 1 runs at about half speed while both compute, and
# when it wakes in a collective the scheduler runs it within about a millisecond (a
# sleeper's lag puts it ahead of the loop), as a slower device answers at once. No group
# (no cgroup v1/v2 rights): the loop and the ranks share with everything.
make_isolated_groups() {
  [[ "${ISOLATE:-1}" == 1 ]] || return 1
  local v1=/sys/fs/cgroup/cpu/galaxy-hetero-$$ v2=/sys/fs/cgroup/galaxy-hetero-$$
  if mkdir "$v1" 2>/dev/null; then
    cgroup=$v1
    make_weighted_group /sys/fs/cgroup/cpu/galaxy-hetero-fast-$$ cpu.shares 262144
    return 0
  fi
  if [[ -f /sys/fs/cgroup/cgroup.controllers ]] && mkdir "$v2" 2>/dev/null; then
    cgroup=$v2
    make_weighted_group /sys/fs/cgroup/galaxy-hetero-fast-$$ cpu.weight 10000
    return 0
  fi
  return 1
}
# ISOLATE=1 (the default with a quota group): rank 0's group, and rank 1's quota group, weigh
# far above every other process, so on a machine shared with other work rank 0 still has its
# core to itself and rank 1 gets its whole quota: the speeds the calibration measured hold
# for the training runs (without it, other load takes a varying part of either core and a
# rank that sleeps often gets more of it than one that computes without pause).
fast_cgroup=""
make_weighted_group() {
  local dir=$1 knob=$2 weight=$3
  [[ "${ISOLATE:-1}" == 1 ]] || return 0
  echo "$weight" >"$cgroup/$knob" 2>/dev/null || true
  if mkdir "$dir" 2>/dev/null; then
    if echo "$weight" >"$dir/$knob" 2>/dev/null; then
      fast_cgroup=$dir
    else
      rmdir "$dir"
    fi
  fi
}
cleanup() {
  set +e
  if [[ -n "$busy_pid" ]]; then
    kill "$busy_pid" 2>/dev/null
    wait "$busy_pid" 2>/dev/null
  fi
  if [[ -n "$cgroup" ]]; then rmdir "$cgroup" 2>/dev/null; fi
  if [[ -n "$fast_cgroup" ]]; then rmdir "$fast_cgroup" 2>/dev/null; fi
  if [[ -z "${BENCH_WORKDIR:-}" ]]; then rm -rf "$work"; fi
  return 0
}
trap cleanup EXIT

slow=${SLOW:-busy}
if [[ "$slow" == quota ]]; then
  make_quota_group || {
    echo "hetero.sh: SLOW=quota: cannot make a CPU-quota cgroup here (root or a" \
      "delegated cgroup needed); use SLOW=busy" >&2
    exit 1
  }
fi
case "$slow" in
quota)
  setup="rank 1 under a CPU quota of $share of a core ($cgroup: $(cat "$cgroup/cpu.cfs_quota_us" "$cgroup/cpu.cfs_period_us" 2>/dev/null | paste -sd/ || cat "$cgroup/cpu.max") us)"
  if [[ -n "$fast_cgroup" ]]; then setup+="; both ranks weighted above other load (ISOLATE=1)"; fi
  ;;
busy)
  make_isolated_groups || true
  (
    [[ -n "$cgroup" ]] && echo $BASHPID >"$cgroup/cgroup.procs"
    exec taskset -c "$core1" sh -c 'while :; do :; done'
  ) &
  busy_pid=$!
  setup="rank 1 sharing core $core1 with a busy loop"
  if [[ -n "$cgroup" ]]; then setup+=" (one group); both ranks weighted above other load (ISOLATE=1)"; fi
  ;;
none)
  make_isolated_groups || true
  setup="no rank slowed (control)"
  if [[ -n "$cgroup" ]]; then setup+="; both ranks weighted above other load (ISOLATE=1)"; fi
  ;;
*)
  echo "hetero.sh: SLOW must be quota, busy or none, got '$slow'" >&2
  exit 2
  ;;
esac

# Starts rank K of 2 in the background (PID in $rank_pid): pinned, slowed when K = 1.
rank_pid=""
start_rank() {
  local k=$1 log=$2
  shift 2
  if ((k == 0)); then
    (
      [[ -n "$fast_cgroup" ]] && echo $BASHPID >"$fast_cgroup/cgroup.procs"
      GALAXY_THREADS=1 OMP_NUM_THREADS=1 exec taskset -c "$core0" "$@"
    ) >"$log" 2>&1 &
  else
    (
      [[ -n "$cgroup" ]] && echo $BASHPID >"$cgroup/cgroup.procs"
      GALAXY_THREADS=1 OMP_NUM_THREADS=1 exec taskset -c "$core1" "$@"
    ) >"$log" 2>&1 &
  fi
  rank_pid=$!
}
# Runs galaxy-run ARGS... as 2 ranks on the next port; fails naming the log.
run_pair() {
  local name=$1
  shift
  local pids=() k
  for k in 0 1; do
    start_rank "$k" "$work/log_${name}_$k.txt" "$galaxy_run" "$@" \
      --rank "$k" --world 2 --master "127.0.0.1:$port"
    pids+=("$rank_pid")
  done
  port=$((port + 1))
  for k in 0 1; do
    wait "${pids[$k]}" || {
      echo "hetero.sh: $name: rank $k failed:" >&2
      cat "$work/log_${name}_$k.txt" >&2
      exit 1
    }
  done
}
export GALAXY_JOB_TOKEN=hetero-bench-$$

# --- configs: the serial base, the even split and the sweep --------------------------------
python3 - "$work" "$config" "$layers" "$mode" "$sweep" <<'PY'
import json, random, sys
work, base, layers, mode, sweep = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
cfg = json.load(open(base))
cfg.update(num_hidden_layers=layers, parallel_mode="serial")
for k in ("world_size", "tp_num_attention_heads_list", "tp_intermediate_size_list",
          "seq_scatter_list", "att_parallel_method", "con_parallel_method",
          "mlp_parallel_method"):
    cfg.pop(k, None)
json.dump(cfg, open(f"{work}/serial.json", "w"), indent=1)
H, I, S = cfg.get("num_attention_heads", 12), cfg.get("intermediate_size", 3072), cfg.get("pad_size", 32)
V = cfg.get("vocab_size", 21128)
r = random.Random(7)
with open(f"{work}/data.jsonl", "w") as f:
    for i in range(256):  # full-length rows: every step costs the same
        ids = [101] + [r.randrange(min(1000, V - 1), V) for _ in range(S - 1)]
        f.write(json.dumps({"input_ids": ids, "label": r.randrange(cfg.get("num_classes", 10))}) + "\n")
h0s = range(1, H) if sweep == "all" else [int(x) for x in sweep.split()]
with open(f"{work}/splits.tsv", "w") as out:
    for h0 in h0s:
        i0 = round(I * h0 / H)
        c = dict(cfg, parallel_mode=mode, world_size=2,
                 tp_num_attention_heads_list=[h0, H - h0],
                 tp_intermediate_size_list=[i0, I - i0])
        if mode == "galaxy":
            s0 = min(max(round(S * h0 / H), 1), S - 1)
            c.update(att_parallel_method="TP", con_parallel_method="SP",
                     mlp_parallel_method="TP", seq_scatter_list=[s0, S - s0])
        name = f"h{h0}"
        json.dump(c, open(f"{work}/{name}.json", "w"), indent=1)
        label = f"heads {h0}/{H - h0}, I {i0}/{I - i0}" + (
            f", seq {c['seq_scatter_list'][0]}/{c['seq_scatter_list'][1]}" if mode == "galaxy" else "")
        out.write(f"{name}\t{h0}\t{label}\n")
PY
heads=$(python3 -c "import json; print(json.load(open('$work/serial.json')).get('num_attention_heads', 12))")
even=h$((heads / 2))
[[ -f "$work/$even.json" ]] || {
  # The even split is always run, swept or not.
  python3 - "$work" "$even" <<'PY'
import json, sys, glob
work, even = sys.argv[1], sys.argv[2]
some = sorted(glob.glob(f"{work}/h*.json"))[0]
c = json.load(open(some))
H = c["num_attention_heads"]; I = c["intermediate_size"]; S = c.get("pad_size", 32)
h0 = int(even[1:]); i0 = round(I * h0 / H)
c.update(tp_num_attention_heads_list=[h0, H - h0], tp_intermediate_size_list=[i0, I - i0])
if "seq_scatter_list" in c:
    c["seq_scatter_list"] = [S // 2, S - S // 2]
json.dump(c, open(f"{work}/{even}.json", "w"), indent=1)
open(f"{work}/splits.tsv", "a").write(f"{even}\t{h0}\theads {h0}/{H-h0}, I {i0}/{I-i0} (even)\n")
PY
}
runs=$(cut -f1 "$work/splits.tsv" | tr '\n' ' ')

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores;" \
  "$(date -u +%Y-%m-%dT%H:%MZ); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "setup: rank 0 alone on core $core0, rank 1 on core $core1; $setup;" \
  "1 thread per rank; GEMM ${GALAXY_GEMM:-measured}; OMP_WAIT_POLICY=PASSIVE"
echo "model: $(basename "$config") with $layers layers, mode $mode; sweep: $runs"

# --- calibrate ---------------------------------------------------------------------------
run_pair calibrate --calibrate "$work/serial.json" -o "$work/devices.json"
sed -n '/^device /,/^galaxy-run: wrote/p' "$work/log_calibrate_0.txt"

# --- plans -------------------------------------------------------------------------------
has_auto=""
if "$galaxyc" --help 2>&1 | grep -q -- '--auto'; then has_auto=1; fi
for name in $runs; do
  "$galaxyc" "$work/$name.json" -o "$work/plan_$name" >"$work/galaxyc_$name.log" 2>&1 ||
    { cat "$work/galaxyc_$name.log" >&2; exit 1; }
  # The planner's prediction for this split on the calibrated devices (predict_NAME.log).
  if [[ -n "$has_auto" ]]; then
    "$galaxyc" "$work/$name.json" --devices "$work/devices.json" >"$work/predict_$name.log" 2>&1 ||
      { cat "$work/predict_$name.log" >&2; exit 1; }
  fi
done
planned=""
if [[ -n "$has_auto" ]]; then
  if "$galaxyc" "$work/serial.json" --auto --devices "$work/devices.json" \
    -o "$work/plan_auto" >"$work/auto.log" 2>&1; then
    planned=auto
    echo "planner (galaxyc --auto --devices):"
    sed 's/^/  /' "$work/auto.log"
  else
    echo "hetero.sh: galaxyc --auto failed:" >&2
    cat "$work/auto.log" >&2
    exit 1
  fi
else
  echo "planner: skipped (this galaxyc has no --auto yet; rerun after merging the planner)"
fi

# One initialisation for every run (seeded init of BERT-base costs seconds per process).
if ! { "$galaxyc" "$work/serial.json" -o "$work/plan_init" &&
  GALAXY_THREADS=2 "$galaxy_run" "$work/plan_init" --data "$work/data.jsonl" --steps 0 \
    --save "$work/init.safetensors"; } >"$work/init.log" 2>&1; then
  cat "$work/init.log" >&2
  exit 1
fi

# --- training runs, round-robin ------------------------------------------------------------
total=$((warmup + steps))
for r in $(seq 1 "$rounds"); do
  for name in $runs $planned; do
    run_pair "${name}_$r" "$work/plan_$name" --data "$work/data.jsonl" --steps "$total" \
      --init "$work/init.safetensors" --metrics "$work/metrics_${name}_$r.jsonl"
  done
  echo "round $r/$rounds done (load average $(cut -d' ' -f1-3 /proc/loadavg))"
done

python3 - "$work" "$warmup" "$rounds" "$even" "$planned" "$predict_re" <<'PY'
import json, os, re, statistics, sys
work, warmup, rounds, even, planned, predict_re = sys.argv[1:7]
warmup, rounds = int(warmup), int(rounds)
B = json.load(open(f"{work}/serial.json")).get("batch_size", 4)

def predicted_s(log):
    try:
        for line in open(log):
            m = re.search(predict_re, line, re.I)
            if m:
                return float(m.group(1)) * (1e-3 if m.group(2) == "ms" else 1)
    except OSError:
        pass
    return None

def step_s(name):
    per = []
    for r in range(1, rounds + 1):
        m = [json.loads(l) for l in open(f"{work}/metrics_{name}_{r}.jsonl")]
        per.append(statistics.median(B / x["samples_per_s"] for x in m[warmup:]))
    return statistics.median(per), min(per), max(per)

splits = [l.rstrip("\n").split("\t") for l in open(f"{work}/splits.tsv")]
dev = json.load(open(f"{work}/devices.json"))["devices"]
g = [d["gflops"] for d in dev]
print(f"calibrated: rank 0 {g[0]:.1f} GFLOP/s, rank 1 {g[1]:.1f} GFLOP/s "
      f"(rank 0's share of the compute by speed: {g[0] / sum(g):.0%})")
res = {name: step_s(name) for name, _, _ in splits}
t_even = res[even][0]
best = min(res, key=lambda n: res[n][0])
print(f"{'run':6} {'split':40} {'step ms':>9} {'rounds':>13} {'vs even':>8} "
      f"{'pred ms':>8} {'error':>7}")
for name, h0, label in sorted(splits, key=lambda s: int(s[1])):
    med, lo, hi = res[name]
    tag = " <- even" if name == even else (" <- best" if name == best else "")
    p = predicted_s(f"{work}/predict_{name}.log")
    pcol = f"{p * 1e3:8.0f} {p / med - 1:+7.1%}" if p else f"{'-':>8} {'':>7}"
    print(f"{name:6} {label:40} {med * 1e3:9.0f} {lo * 1e3:6.0f}..{hi * 1e3:<6.0f} "
          f"{t_even / med:7.2f}x {pcol}{tag}")
print(f"best split tried: {best} ({res[best][0] * 1e3:.0f} ms), "
      f"{t_even / res[best][0]:.2f}x faster than even ({t_even * 1e3:.0f} ms)")
if not planned:
    print("planned split: skipped (galaxyc without --auto)")
    sys.exit(0)
med, lo, hi = step_s(planned)
chosen = {}
try:
    chosen = json.load(open(f"{work}/plan_auto/chosen-config.json"))
except OSError:
    pass
keys = ("parallel_mode", "tp_num_attention_heads_list", "tp_intermediate_size_list",
        "seq_scatter_list", "dp_batch_list", "stage_num_hidden_layers_list")
print("planned: " + (", ".join(f"{k} {chosen[k]}" for k in keys if chosen.get(k))
                     or "(no chosen-config.json)"))
print(f"planned split measured {med * 1e3:.0f} ms ({lo * 1e3:.0f}..{hi * 1e3:.0f}): "
      f"{t_even / med:.2f}x faster than even, {med / res[best][0] - 1:+.1%} vs the best tried")
pred = predicted_s(f"{work}/auto.log")
if pred is None:
    print(f"predicted step: not found in galaxyc's output (PREDICT_RE='{predict_re}'; "
          f"see {work}/auto.log)")
else:
    print(f"predicted step {pred * 1e3:.0f} ms vs measured {med * 1e3:.0f} ms: "
          f"error {pred / med - 1:+.1%}")

# The model by its parts (GALAXY_PROFILE=1 in the environment): each rank's kernel time per
# step against the planner's predicted compute, and its training GEMMs' GFLOP/s (linears:
# profile FLOPs / time) against the calibrated rate at the rows they ran at.
def profile_of(log):
    gemm_ms = gemm_gf = total = 0.0
    seen = False
    for line in open(log):
        if line.startswith("GALAXY_PROFILE:"):
            seen = True
        m = re.match(r"^(linear\S*(?: \(bwd\))?)\s+\d+\s+([\d.]+)\s+[\d.]+\s+[\d.]+\s+([\d.]+)\s*$", line)
        if seen and m:
            gemm_ms += float(m.group(2))
            gemm_gf += float(m.group(2)) * float(m.group(3)) * 1e-3
        m = re.match(r"^total\s+([\d.]+)\s", line)
        if seen and m:
            total = float(m.group(1))
    return (total, gemm_ms, gemm_gf) if seen else None

def predicted_compute(log):
    out = {}
    for line in open(log):
        m = re.match(r"^\s*(\d+)\s+\S+\s+[\d.]+\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", line)
        if m:
            out[int(m.group(1))] = float(m.group(2))
    return out

def calibrated_at(d, rows):
    pts = [(int(p["rows"]), p["gflops"]) for p in d.get("gemmAtRows", d.get("gemm_at_rows", []))]
    if not pts or rows <= pts[0][0]:
        return pts[0][1] if pts else d["gflops"]
    import math
    for (r0, g0), (r1, g1) in zip(pts, pts[1:]):
        if rows <= r1:
            f = (math.log(rows) - math.log(r0)) / (math.log(r1) - math.log(r0))
            return g0 + f * (g1 - g0)
    return pts[-1][1]

total_steps = len([l for l in open(f"{work}/metrics_{even}_1.jsonl")])
S = json.load(open(f"{work}/serial.json")).get("pad_size", 32)
shown = [(even, f"{work}/predict_{even}.log"), (best, f"{work}/predict_{best}.log")]
if planned:
    shown.append((planned, f"{work}/auto.log"))
header = False
for name, plog in shown:
    mb = 1
    if name == planned:
        mb = chosen.get("num_microbatches", 1) if chosen.get("parallel_mode") == "pp" else 1
    pc = predicted_compute(plog) if os.path.exists(plog) else {}
    for k in (0, 1):
        prof = profile_of(f"{work}/log_{name}_1_{k}.txt")
        if not prof:
            continue
        if not header:
            print(f"parts (GALAXY_PROFILE, round 1, per step): {'run':6} rank {'kernels ms':>10} "
                  f"{'pred compute':>12} {'GEMM GF/s':>9} {'calib':>6} rows")
            header = True
        total, gms, ggf = prof
        rows = B * S // mb
        pcs = f"{pc[k]:12.0f}" if k in pc else f"{'-':>12}"
        print(f"{'':42} {name:6} {k:4} {total / total_steps:10.0f} {pcs} "
              f"{ggf / (gms * 1e-3) if gms else 0:9.1f} {calibrated_at(dev[k], rows):6.1f} {rows}")

PY
