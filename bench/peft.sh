#!/usr/bin/env bash
# BERT-base training step time and peak memory per PEFT method, serial and Galaxy over 2
# local ranks (a benchmark that prints figures, not a test).
#
#   bench/peft.sh [BUILD_DIR]         (default: build; needs galaxyc and galaxy-run there)
#
# Methods (configs/bert/*.json): full fine-tuning; LoRA r 8 on query/value; Houlsby adapters
# k 16; side-tuning f 8. Model: vocab 21128, H 768, 12 layers, 12 heads, I 3072, batch 4,
# seq 32, dropout 0.1, SGD. Each method runs serial with THREADS threads and in Galaxy mode
# (`galaxyc --mode galaxy --world 2`: ATT TP / CON SP / MLP TP, even splits) as 2 local
# ranks x 1 thread (the ranks share the machine's cores). Every rank runs under
# /usr/bin/time -v: "Maximum resident set size" is its peak RSS. Parameters come from the
# seeded initialisation (not --init: galaxy-run keeps an --init checkpoint mapped, which
# would add its pages to RSS). Step time = batch / samples_per_s of rank 0's --metrics,
# median of the STEPS steps after WARMUP; ROUNDS rounds go round-robin over the runs.
# The static side, per rank, from galaxyc's summary: trainable parameters, parameter MiB,
# activation arena MiB (liveness-packed) and the unshared sum it replaces.
# Env: STEPS (6), WARMUP (2), ROUNDS (2), THREADS (2, serial runs), METHODS (full lora
#      adapter side), OPTIMIZER (default: the configs' sgd, which keeps no state; adamw
#      keeps 2 states per trainable parameter), GEMM (onednn; "auto" lets galaxy-run
#      measure), PORT (29671), GALAXYC / GALAXY_RUN (binaries), BENCH_WORKDIR (keep the
#      files there).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-$root/build}
steps=${STEPS:-6}
warmup=${WARMUP:-2}
rounds=${ROUNDS:-2}
threads=${THREADS:-2}
methods=${METHODS:-full lora adapter side}
optimizer=${OPTIMIZER:-}
gemm=${GEMM:-onednn}
port=${PORT:-29671}
galaxyc=${GALAXYC:-$build/tools/galaxyc}
galaxy_run=${GALAXY_RUN:-$build/tools/galaxy-run}

if [[ ! -x /usr/bin/time ]]; then
  echo "peft.sh: /usr/bin/time is missing (Debian package 'time'): it measures peak RSS" >&2
  exit 1
fi
for m in $methods; do
  if [[ ! -f "$root/configs/bert/$m.json" ]]; then
    echo "peft.sh: METHODS names '$m' but configs/bert/$m.json does not exist:" \
      "use full lora adapter side" >&2
    exit 2
  fi
done
bench=peft.sh
# shellcheck source=bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

python3 - "$work/data.jsonl" <<'EOF'
import json, random, sys
r = random.Random(7)
with open(sys.argv[1], "w") as f:
    for i in range(256):  # full-length rows: every step costs the same
        ids = [101] + [r.randrange(1000, 21128) for _ in range(31)]
        f.write(json.dumps({"input_ids": ids, "label": r.randrange(10)}) + "\n")
EOF

# Run names: METHOD.serial and METHOD.galaxy.
names=()
for m in $methods; do
  python3 - "$root/configs/bert/$m.json" "$work/$m.json" "$optimizer" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
if sys.argv[3]:
    c["optimizer"] = sys.argv[3]
json.dump(c, open(sys.argv[2], "w"), indent=1)
EOF
  for mode in serial galaxy; do
    name=$m.$mode
    names+=("$name")
    flags=()
    [[ $mode == galaxy ]] && flags=(--mode galaxy --world 2)
    "$galaxyc" "$work/$m.json" "${flags[@]}" -o "$work/plan_$name" \
      >"$work/galaxyc_$name.log" 2>&1 || { cat "$work/galaxyc_$name.log" >&2; exit 1; }
    "$galaxyc" "$work/$m.json" "${flags[@]}" >"$work/summary_$name.txt"
  done
done

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1)" \
  "(family $(lscpu | sed -n 's/^CPU family: *//p' | head -1)" \
  "model $(lscpu | sed -n 's/^Model: *//p' | head -1)), $(nproc) cores online;" \
  "$(date -u +%Y-%m-%dT%H:%MZ); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "serial: 1 process x $threads threads; galaxy: 2 local ranks x GALAXY_THREADS=1 sharing" \
  "the $(nproc) cores; optimizer ${optimizer:-sgd (configs)};" \
  "GEMM ${GALAXY_GEMM:-measured}; OMP_WAIT_POLICY=PASSIVE"

total=$((warmup + steps))
: >"$work/runs.tsv"
for r in $(seq 1 "$rounds"); do
  for name in "${names[@]}"; do
    if [[ $name == *.galaxy ]]; then world=2 thr=1; else world=1 thr=$threads; fi
    load=$(cut -d' ' -f1 /proc/loadavg)
    pids=()
    for ((k = 0; k < world; k++)); do
      rankargs=()
      ((world > 1)) && rankargs=(--rank "$k" --world "$world" --master "127.0.0.1:$port")
      GALAXY_THREADS=$thr OMP_NUM_THREADS=$thr /usr/bin/time -v \
        -o "$work/time_${name}_${r}_$k.txt" "$galaxy_run" "$work/plan_$name" \
        --data "$work/data.jsonl" --steps "$total" "${rankargs[@]}" \
        --metrics "$work/metrics_${name}_$r.jsonl" >"$work/log_${name}_${r}_$k.txt" 2>&1 &
      pids+=($!)
    done
    port=$((port + 1))
    for ((k = 0; k < world; k++)); do
      wait "${pids[$k]}" || {
        echo "peft.sh: $name round $r rank $k failed:" >&2
        cat "$work/log_${name}_${r}_$k.txt" >&2
        exit 1
      }
    done
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$r" "$world" "$load" \
      "$(cut -d' ' -f1 /proc/loadavg)" >>"$work/runs.tsv"
  done
  echo "round $r/$rounds done (load average $(cut -d' ' -f1-3 /proc/loadavg))"
done
grep -m1 "GEMM:" "$work/log_${names[0]}_1_0.txt" | sed 's/^galaxy-run: //'

python3 - "$work" "$warmup" "$root/configs/bert/full.json" <<'EOF'
import collections, json, re, statistics, sys
work, warmup = sys.argv[1], int(sys.argv[2])
B = json.load(open(sys.argv[3]))["batch_size"]

def static(name):
    """Rank 0's trainable parameters, parameter MiB, arena MiB and unshared MiB."""
    text = open(f"{work}/summary_{name}.txt").read()
    p = re.search(r"parameters: \d+ tensors, \d+ elements \(([\d.]+) MiB\), (\d+) trainable",
                  text)
    a = re.search(r"activation arena ([\d.]+) MiB with liveness reuse vs ([\d.]+) MiB", text)
    return {"params_mib": float(p.group(1)), "trainable": int(p.group(2)),
            "arena": float(a.group(1)), "unshared": float(a.group(2))}

def rss_mib(path):
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(path).read())
    return int(m.group(1)) / 1024

by = collections.OrderedDict()
for name, r, world, load0, load1 in (l.rstrip("\n").split("\t") for l in open(f"{work}/runs.tsv")):
    d = by.setdefault(name, {"world": int(world), "steps": [], "rss": [], "load": []})
    m = [json.loads(l) for l in open(f"{work}/metrics_{name}_{r}.jsonl")]
    d["steps"].append(statistics.median(B / x["samples_per_s"] for x in m[warmup:]))
    d["rss"].append([rss_mib(f"{work}/time_{name}_{r}_{k}.txt") for k in range(int(world))])
    d["load"] += [float(load0), float(load1)]

print(f"{'run':15} {'trainable':>10} {'median step':>12} {'rounds min..max':>16} "
      f"{'peak RSS/rank MiB':>18} {'RSS spread':>11} {'params MiB':>10} "
      f"{'arena MiB':>9} {'unshared':>9} {'load':>9}")
rss_of = {}
for name, d in by.items():
    s = static(name)
    med = statistics.median(d["steps"])
    per_rank = [max(rr[k] for rr in d["rss"]) for k in range(d["world"])]
    flat = [x for rr in d["rss"] for x in rr]
    rss_of[name] = max(per_rank)
    print(f"{name:15} {s['trainable']:>10} {med * 1e3:9.0f} ms "
          f"{min(d['steps']) * 1e3:7.0f}..{max(d['steps']) * 1e3:<6.0f} "
          f"{'/'.join(f'{x:.0f}' for x in per_rank):>18} "
          f"{min(flat):5.0f}..{max(flat):<5.0f} {s['params_mib']:10.1f} "
          f"{s['arena']:9.2f} {s['unshared']:9.2f} {min(d['load']):4.1f}-{max(d['load']):<4.1f}")
for mode in ("serial", "galaxy"):
    full = f"full.{mode}"
    if full not in by:
        continue
    for m in ("lora", "adapter", "side"):
        name = f"{m}.{mode}"
        if name not in by:
            continue
        sf, sm = static(full), static(name)
        beyond = (rss_of[name] - sm["params_mib"]) / (rss_of[full] - sf["params_mib"])
        print(f"{name:15} vs full: peak RSS -{100 * (1 - rss_of[name] / rss_of[full]):.0f}%, "
              f"activation arena -{100 * (1 - sm['arena'] / sf['arena']):.0f}%, "
              f"RSS beyond parameters -{100 * (1 - beyond):.0f}%"
              f" (LST, T5 on GLUE: -69% side-tuning, -26% other PETL)")
print("step = batch / samples_per_s of rank 0, median after warm-up; 'rounds' = spread of the "
      "per-round medians; peak RSS per rank = max over rounds (spread over all rounds and "
      "ranks next to it); params/arena/unshared = galaxyc's rank-0 summary; load = 1-min "
      "load average at the start/end of the runs")
EOF
