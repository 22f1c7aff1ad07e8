#!/usr/bin/env bash
# BERT-base training step in every parallel mode over 2 local ranks, against serial (a
# benchmark that prints figures, not a test).
#
#   bench/modes.sh [BUILD_DIR]        (default: build; needs galaxyc and galaxy-run there)
#
# Model: vocab 21128, H 768, 12 layers, 12 heads, I 3072, 10 classes, batch 4, seq 32,
# dropout 0.1, SGD (configs/bert/full.json and its dp/tp/sp/galaxy variants, even splits).
# Every run starts from the same checkpoint (the serial plan's seeded initialisation, saved
# once and loaded with --init). Runs: serial with 1 and with 2 threads; dp, tp, sp,
# galaxy (ATT TP / CON SP / MLP TP) and galaxy2 (TP / SP / SP), each as 2 ranks x 1
# thread. On a 2-core machine the two ranks share the cores, so "2 ranks x 1 thread" uses
# the same cores as "serial, 2 threads": that is the fair comparison; serial with 1 thread
# is what one rank's core alone does. Each rank is launched by hand with
# --rank/--world/--master on PORT, PORT+1, ... Step time = batch / samples_per_s of rank 0's
# --metrics, median of the STEPS steps after WARMUP; ROUNDS rounds go round-robin over the
# runs (so load drift on a shared machine hits all alike) and the spread is printed.
# Communication behind computation: every 2-rank run is profiled (--profile-json; per step,
# after the first step): "comm" is the time collectives took (on the communication thread
# when overlapped, else in place) and "exposed" the time the step waited for them; "hidden"
# = 1 - exposed / comm. The *-sync runs are the same plans with GALAXY_COMM_OVERLAP=0
# (each collective in place, as before the overlap), the baseline: "vs sync" = 1 - exposed
# / the sync run's comm.
# Tile-level overlap: RUNS names <run>-tile<N> (e.g. galaxy-tile2, tp-tile4; <run>-tile is
# <run>-tile$TILES) run <run>'s plan compiled with "comm_overlap_tiles": N (the GEMMs next
# to a collective in N batch tiles, each tile's collective behind the next tile's GEMM;
# compiler/CommTiling.h); their "vs sync" is against <run>-sync, the untiled baseline.
# A/B of two galaxy-run binaries: RUNS names <run>-base (e.g. galaxy-base, galaxy-sync-base)
# to run <run>'s plan with BASELINE_RUN (a galaxy-run built at an older commit) in the same
# rounds; its "vs sync" is against <run>-sync-base when that is in RUNS, else <run>-sync.
# A/B of two compilers: BASELINE_GALAXYC (a galaxyc built at an older commit) compiles the
# <run>-base plans instead (with or without BASELINE_RUN).
# "exposed by collective": rank 0's waits per collective kind (needs protoc to read the
# plans' kernels), to see which collectives stay exposed.
# Bytes per step per rank: galaxyc's plan summary (train_step collectives; convention in
# docs/profiler.md: the buffer a rank hands to or gets from the collective).
# Env: STEPS (8), WARMUP (2), ROUNDS (2), RUNS (all: "serial1 serial2 dp dp-sync tp
#      tp-sync sp galaxy galaxy-sync galaxy2"; also <run>-tile<N>), TILES (2), GEMM (onednn: the same GEMM everywhere; "auto" lets galaxy-run measure),
#      PORT (29631), GALAXYC / GALAXY_RUN (binaries), BASELINE_RUN / BASELINE_GALAXYC (the
#      <run>-base binaries),
#      BENCH_WORKDIR (keep the files there).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-$root/build}
steps=${STEPS:-8}
warmup=${WARMUP:-2}
rounds=${ROUNDS:-2}
runs=${RUNS:-serial1 serial2 dp dp-sync tp tp-sync sp galaxy galaxy-sync galaxy2}
gemm=${GEMM:-onednn}
port=${PORT:-29631}
galaxyc=${GALAXYC:-$build/tools/galaxyc}
galaxy_run=${GALAXY_RUN:-$build/tools/galaxy-run}

bench=modes.sh
# shellcheck source=bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# run name -> "config world threads overlap [tiles]" (overlap: GALAXY_COMM_OVERLAP)
declare -A spec=(
  [serial1]="full.json 1 1 1"
  [serial2]="full.json 1 2 1"
  [dp]="dp/full.json 2 1 1"
  [dp-sync]="dp/full.json 2 1 0"
  [tp]="tp/full.json 2 1 1"
  [tp-sync]="tp/full.json 2 1 0"
  [sp]="sp/full.json 2 1 1"
  [galaxy]="galaxy/full.json 2 1 1"
  [galaxy-sync]="galaxy/full.json 2 1 0"
  [galaxy2]="galaxy/galaxy2.json 2 1 1"
)
declare -A binary=() compiler=()
for name in $runs; do
  if [[ "$name" =~ ^(.+)-base$ && -n "${spec[${BASH_REMATCH[1]}]:-}" ]]; then
    [[ -x "${BASELINE_RUN:-}" || -x "${BASELINE_GALAXYC:-}" ]] ||
      { echo "modes.sh: $name needs BASELINE_RUN (a galaxy-run) or BASELINE_GALAXYC" >&2; exit 2; }
    spec[$name]=${spec[${BASH_REMATCH[1]}]}
    if [[ -n "${BASELINE_RUN:-}" ]]; then binary[$name]=$BASELINE_RUN; fi
    if [[ -n "${BASELINE_GALAXYC:-}" ]]; then compiler[$name]=$BASELINE_GALAXYC; fi
  fi
  if [[ "$name" =~ ^(.+)-tile([0-9]*)$ && -n "${spec[${BASH_REMATCH[1]}]:-}" ]]; then
    read -r cfg world threads overlap <<<"${spec[${BASH_REMATCH[1]}]}"
    spec[$name]="$cfg $world $threads $overlap ${BASH_REMATCH[2]:-${TILES:-2}}"
  fi
  if [[ -z "${spec[$name]:-}" ]]; then
    echo "modes.sh: RUNS names '$name': use ${!spec[*]} (or RUN-tileN, RUN-base)" >&2
    exit 2
  fi
done

python3 - "$work/data.jsonl" <<'EOF'
import json, random, sys
r = random.Random(7)
with open(sys.argv[1], "w") as f:
    for i in range(256):  # full-length rows: every step costs the same
        ids = [101] + [r.randrange(1000, 21128) for _ in range(31)]
        f.write(json.dumps({"input_ids": ids, "label": r.randrange(10)}) + "\n")
EOF

for name in $runs; do
  read -r cfg world threads overlap tiles <<<"${spec[$name]}"
  config=$root/configs/bert/$cfg
  if [[ -n "$tiles" ]]; then # the same config, tiled
    config=$work/config_$name.json
    python3 -c 'import json, sys; c = json.load(open(sys.argv[1])); c["comm_overlap_tiles"] = int(sys.argv[2]); json.dump(c, open(sys.argv[3], "w"))' \
      "$root/configs/bert/$cfg" "$tiles" "$config"
  fi
  "${compiler[$name]:-$galaxyc}" "$config" -o "$work/plan_$name" >"$work/galaxyc_$name.log" 2>&1 ||
    { cat "$work/galaxyc_$name.log" >&2; exit 1; }
  "${compiler[$name]:-$galaxyc}" "$config" >"$work/summary_$name.txt"
done

# Every run starts from one saved checkpoint: loading it takes ~1 s where seeded random
# initialisation of 102 M parameters takes ~6 CPU-seconds per process.
if ! { "$galaxyc" "$root/configs/bert/full.json" -o "$work/plan_init" &&
  GALAXY_THREADS=2 "$galaxy_run" "$work/plan_init" --data "$work/data.jsonl" --steps 0 \
    --save "$work/init.safetensors"; } >"$work/init.log" 2>&1; then
  cat "$work/init.log" >&2
  exit 1
fi

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1)" \
  "(family $(lscpu | sed -n 's/^CPU family: *//p' | head -1)" \
  "model $(lscpu | sed -n 's/^Model: *//p' | head -1)), $(nproc) cores online;" \
  "$(date -u +%Y-%m-%dT%H:%MZ); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "2-rank runs: 2 local ranks x GALAXY_THREADS=1 share the $(nproc) cores;" \
  "serial runs with 1 and 2 threads; GEMM ${GALAXY_GEMM:-measured}; OMP_WAIT_POLICY=PASSIVE"

total=$((warmup + steps))
: >"$work/runs.tsv"
for r in $(seq 1 "$rounds"); do
  for name in $runs; do
    read -r cfg world threads overlap tiles <<<"${spec[$name]}"
    load=$(cut -d' ' -f1 /proc/loadavg)
    pids=()
    for ((k = 0; k < world; k++)); do
      rankargs=()
      ((world > 1)) && rankargs=(--rank "$k" --world "$world" --master "127.0.0.1:$port"
        --profile-json "$work/profile_${name}_$r.json")
      GALAXY_COMM_OVERLAP=$overlap GALAXY_THREADS=$threads OMP_NUM_THREADS=$threads \
        "${binary[$name]:-$galaxy_run}" "$work/plan_$name" \
        --data "$work/data.jsonl" --steps "$total" --init "$work/init.safetensors" \
        "${rankargs[@]}" --metrics "$work/metrics_${name}_$r.jsonl" \
        >"$work/log_${name}_${r}_$k.txt" 2>&1 &
      pids+=($!)
    done
    port=$((port + 1))
    for ((k = 0; k < world; k++)); do
      wait "${pids[$k]}" || {
        echo "modes.sh: $name round $r rank $k failed:" >&2
        cat "$work/log_${name}_${r}_$k.txt" >&2
        exit 1
      }
    done
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$r" "$world" "$threads" "$load" \
      "$(cut -d' ' -f1 /proc/loadavg)" >>"$work/runs.tsv"
  done
  echo "round $r/$rounds done (load average $(cut -d' ' -f1-3 /proc/loadavg))"
done
grep -m1 "GEMM:" "$work/log_${runs%% *}_1_0.txt" | sed 's/^galaxy-run: //'

python3 - "$work" "$warmup" "$root/configs/bert/full.json" "$root" <<'EOF'
import collections, json, os, re, statistics, sys
work, warmup, ROOT = sys.argv[1], int(sys.argv[2]), sys.argv[4]
B = json.load(open(sys.argv[3]))["batch_size"]
UNIT = {"B": 1 / 2**20, "KiB": 1 / 1024, "MiB": 1, "GiB": 1024}

def comm_mib(name):
    """Per rank: {kind (dir): MiB} of train_step's collectives in galaxyc's summary."""
    ranks, cur, in_train = [], None, False
    for line in open(f"{work}/summary_{name}.txt"):
        if line.startswith("plan v"):
            cur = collections.OrderedDict()
            ranks.append(cur)
        elif cur is not None and line.strip().startswith(("train_step", "eval_step")):
            in_train = line.strip().startswith("train_step")
        elif cur is not None and in_train:
            m = re.match(r"\s+(\w+ \(\w+\))\s+x(\d+)\s+([\d.]+) (B|KiB|MiB|GiB) per step", line)
            if m:
                cur[m.group(1)] = float(m.group(3)) * UNIT[m.group(4)]
    return ranks

def static_mib(name):
    """Per rank: parameters + activation arena (MiB) from galaxyc's summary."""
    text = open(f"{work}/summary_{name}.txt").read()
    params = [float(x) for x in re.findall(r"parameters: .*\(([\d.]+) MiB\)", text)]
    arena = [float(x) for x in re.findall(r"activation arena ([\d.]+) MiB", text)]
    return [p + a for p, a in zip(params, arena)]

rows = [l.rstrip("\n").split("\t") for l in open(f"{work}/runs.tsv")]
by = collections.OrderedDict()
for name, r, world, threads, load0, load1 in rows:
    d = by.setdefault(name, {"world": int(world), "threads": int(threads), "steps": [],
                             "load": []})
    m = [json.loads(l) for l in open(f"{work}/metrics_{name}_{r}.jsonl")]
    d["steps"].append(statistics.median(B / x["samples_per_s"] for x in m[warmup:]))
    d["load"] += [float(load0), float(load1)]

def comm_ms(name):
    """Rank-mean (comm, exposed) ms per step over the rounds' profiles; None when unprofiled."""
    comm, exposed = [], []
    for r in sorted({row[1] for row in rows if row[0] == name}):
        try:
            ranks = json.load(open(f"{work}/profile_{name}_{r}.json"))["ranks"]
        except OSError:
            return None
        e = statistics.mean(x["comm_seconds"] for x in ranks)
        busy = statistics.mean(x.get("comm_busy_seconds", 0) for x in ranks)
        exposed.append(1e3 * e)
        comm.append(1e3 * (busy if busy > 0 else e))
    return statistics.median(comm), statistics.median(exposed)

base = statistics.median(by["serial2"]["steps"]) if "serial2" in by else None
print(f"{'run':12} {'ranks x thr':>11} {'median step':>12} {'rounds min..max':>16} "
      f"{'vs serial 2t':>12} {'comm MiB/step/rank':>19} {'params+arena MiB':>17} {'load':>9}")
for name, d in by.items():
    med = statistics.median(d["steps"])
    comm = comm_mib(name)
    tot = [sum(c.values()) for c in comm]
    comm_s = "/".join(sorted({f"{t:.2f}" for t in tot}))
    mem = "/".join(sorted({f"{m:.0f}" for m in static_mib(name)}))
    rel = f"{med / base:.2f}x" if base else "-"
    print(f"{name:12} {d['world']:>5} x {d['threads']:<3} {med * 1e3:9.0f} ms "
          f"{min(d['steps']) * 1e3:7.0f}..{max(d['steps']) * 1e3:<6.0f} {rel:>12} "
          f"{comm_s:>19} {mem:>17} {min(d['load']):4.1f}-{max(d['load']):<4.1f}")
print("communication per step (profiled, mean over ranks, median over rounds):")
print(f"  {'run':12} {'step ms':>8} {'comm ms':>8} {'exposed ms':>10} {'hidden':>7} {'vs sync':>8}")
for name, d in by.items():
    c = comm_ms(name)
    if not c:
        continue
    base = re.sub(r"-tile\d*$", "", name)
    if name.endswith(("-sync", "-sync-base")):
        sync = None
    elif name.endswith("-base"):  # against the baseline binary's sync run when there is one
        b = name[: -len("-base")]
        sync = next((comm_ms(s) for s in (b + "-sync-base", b + "-sync") if s in by), None)
    else:
        sync = comm_ms(base + "-sync") if base + "-sync" in by else None
    vs = f"{100 * (1 - c[1] / sync[0]):6.1f}%" if sync and sync[0] > 0 else "-"
    hidden = f"{100 * (1 - c[1] / c[0]):6.1f}%" if c[0] > 0 else "-"
    print(f"  {name:12} {statistics.median(d['steps']) * 1e3:8.0f} {c[0]:8.1f} {c[1]:10.1f} "
          f"{hidden:>7} {vs:>8}")
def exposed_by_kind(name):
    """{kind (dir): exposed ms per step} of rank 0's train_step, median over rounds (the
    plan's kernels decoded with protoc; None without it)."""
    import shutil, subprocess
    proto = os.path.join(ROOT, "runtime", "plan")
    if not shutil.which("protoc"):
        return None
    with open(f"{work}/plan_{name}/rank0.plan.pb", "rb") as f:
        text = subprocess.run(["protoc", "-I", proto, os.path.join(proto, "plan.proto"),
                               "--decode=galaxy.plan.Plan"], stdin=f, capture_output=True,
                              text=True).stdout
    prog = [p for p in re.split(r"\nprograms \{", text)[1:]
            if re.search(r'^\s*name: "train_step"', p, re.M)]
    if not prog:
        return None
    kinds = []
    for i in re.findall(r"\n  instrs \{\n(.*?)\n  \}", prog[0], re.S):
        k = re.search(r'kernel: "(\w+)"', i).group(1)
        kinds.append(f"{k} ({'bwd' if 'backward: true' in i else 'fwd'})"
                     if k in ("all_gather", "reduce_scatter", "all_reduce") else None)
    per_round = collections.defaultdict(list)
    for r in sorted({row[1] for row in rows if row[0] == name}):
        try:
            rank0 = json.load(open(f"{work}/profile_{name}_{r}.json"))["ranks"][0]
        except (OSError, KeyError, IndexError):
            return None
        sums = collections.Counter()
        for k, t in zip(kinds, rank0.get("instr_seconds", [])):
            if k:
                sums[k] += 1e3 * t
        for k, v in sums.items():
            per_round[k].append(v)
    return {k: statistics.median(v) for k, v in sorted(per_round.items())}

print("exposed by collective (rank 0, train_step, ms per step, median over rounds):")
for name in by:
    e = exposed_by_kind(name)
    if e:
        print(f"  {name:12} " + ", ".join(f"{k} {v:.1f}" for k, v in e.items()))
print("comm by collective (rank 0, train_step, MiB per step):")
for name in by:
    comm = comm_mib(name)
    if comm and comm[0]:
        print(f"  {name:8} " + ", ".join(f"{k} {v:.2f}" for k, v in comm[0].items()))
print("step = batch / samples_per_s of rank 0, median of the steps after warm-up; "
      "'rounds' = the spread of the per-round medians; load = 1-min load average "
      "at the start/end of the runs; params+arena = galaxyc's per-rank parameter "
      "and activation-arena bytes (peak RSS: bench/peft.sh)")
EOF
