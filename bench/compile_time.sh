#!/usr/bin/env bash
# galaxyc's compile time and peak memory: a LLaMA-70B-shaped config (hidden
# 8192, 80 layers, 64 heads and 64 KV heads, intermediate 28672, vocab 32000,
# pad_size 128) in Galaxy mode over 64 ranks, writing the plans; BERT-base at
# 250/500/1000/2000 layers (serial, writing the plan) to show how the time grows
# with depth. Prints wall s, CPU s (user + sys) and peak RSS per run, ROUNDS
# rounds each (default 3); with BASE=/path/to/other/galaxyc the two binaries
# alternate within each round.
#   bench/compile_time.sh BUILD      (e.g. bench/compile_time.sh build)
set -euo pipefail
bench=compile_time.sh
build=${1:-build}
src=$(cd "$(dirname "$0")/.." && pwd)
galaxyc=${GALAXYC:-$build/tools/galaxyc}
rounds=${ROUNDS:-3}
[[ -x "$galaxyc" ]] || { echo "$bench: $galaxyc is missing: build galaxyc" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/galaxy-compile-time.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$galaxyc" "$work/galaxyc" # a rebuild during the run cannot swap it
bins=("$work/galaxyc")
if [[ -n "${BASE:-}" ]]; then
  cp "$BASE" "$work/galaxyc.base"
  bins+=("$work/galaxyc.base")
fi

python3 - "$src" "$work" <<'PY'
import json, sys
src, work = sys.argv[1], sys.argv[2]
llama = json.load(open(f"{src}/configs/llama/full.json"))
llama.update(vocab_size=32000, hidden_size=8192, intermediate_size=28672,
             num_hidden_layers=80, num_attention_heads=64,
             num_key_value_heads=64, pad_size=128)
json.dump(llama, open(f"{work}/70b.json", "w"), indent=1)
bert = json.load(open(f"{src}/configs/bert/full.json"))
for n in (250, 500, 1000, 2000):
    bert["num_hidden_layers"] = n
    json.dump(bert, open(f"{work}/bert_{n}.json", "w"), indent=1)
PY

run() { # label bin args...
  local label=$1 bin=$2; shift 2
  rm -rf "$work/plan"
  /usr/bin/time -o "$work/time" -f "%e %U %S %M" "$bin" "$@" -o "$work/plan" \
    >/dev/null 2>&1
  read -r wall user sys rss < "$work/time"
  printf '%-28s %-12s wall %6.2f s  cpu %6.2f s  peak %7.0f MB\n' "$label" \
    "$(basename "$bin")" "$wall" "$(echo "$user + $sys" | bc)" "$(echo "$rss / 1024" | bc)"
}

for ((r = 1; r <= rounds; ++r)); do
  echo "round $r"
  for bin in "${bins[@]}"; do
    run "70B-shaped galaxy x64" "$bin" "$work/70b.json" --mode=galaxy --world=64
  done
  for n in 250 500 1000 2000; do
    for bin in "${bins[@]}"; do
      run "BERT-base $n layers" "$bin" "$work/bert_$n.json"
    done
  done
done
