#!/bin/bash
# galaxyc --auto's search and compile time (compiler/planner): BERT-base over 4
# unequal devices, and a 70B-shaped LLaMA (hidden 8192, 80 layers, 64 heads,
# intermediate 28672, vocab 32000, pad 128, batch 8; with 64 and with 8 KV heads)
# over 64 devices of four speeds, step and latency objectives. Prints the
# planner's own line (candidates, probe compiles, seconds), the choice and
# /usr/bin/time's wall / CPU / peak RSS for the whole galaxyc run (plans written).
#   bench/planner_search.sh BUILD_DIR
set -euo pipefail
BUILD=${1:?usage: bench/planner_search.sh BUILD_DIR}
GALAXYC=$(realpath "$BUILD/tools/galaxyc")
SRC=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/planner-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

python3 - "$SRC" "$WORK" <<'PY'
import json, sys
src, work = sys.argv[1], sys.argv[2]
bert = json.load(open(f"{src}/configs/bert/full.json"))
json.dump(bert, open(f"{work}/bert-base.json", "w"))
llama = json.load(open(f"{src}/configs/llama/full.json"))
llama.update(hidden_size=8192, num_hidden_layers=80, num_attention_heads=64,
             num_key_value_heads=64, intermediate_size=28672, vocab_size=32000,
             pad_size=128, batch_size=8)
json.dump(llama, open(f"{work}/70b.json", "w"))
llama["num_key_value_heads"] = 8
json.dump(llama, open(f"{work}/70b-gqa.json", "w"))
net = {"bandwidth_gbps": 10, "latency_us": 50}
json.dump({"devices": [dict(name=n, gflops=g, memory_gib=8) for n, g in
                       (("fast", 300), ("b", 100), ("c", 100), ("d", 100))],
           "network": net}, open(f"{work}/dev4.json", "w"))
json.dump({"devices": [dict(name=f"gpu{i}", gflops=[30000, 15000, 10000, 20000][i % 4],
                            memory_gib=80) for i in range(64)],
           "network": {"bandwidth_gbps": 100, "latency_us": 10}},
          open(f"{work}/dev64.json", "w"))
PY

run() {
  local name=$1; shift
  echo "== $name"
  /usr/bin/time -f "   galaxyc: %e s wall, %U s CPU, %M KB peak" \
    "$GALAXYC" "$@" -o "$WORK/plan" 2>&1 | grep -E "^(galaxyc --auto|chosen|predicted|runner-up|   galaxyc:)" | cut -c1-240
  rm -rf "$WORK/plan"
}
run "BERT-base, 4 devices (300/100/100/100 GFLOPS), step" "$WORK/bert-base.json" --auto --devices "$WORK/dev4.json"
run "70B-shaped (64 KV heads), 64 devices, step" "$WORK/70b.json" --auto --devices "$WORK/dev64.json"
run "70B-shaped (8 KV heads), 64 devices, step" "$WORK/70b-gqa.json" --auto --devices "$WORK/dev64.json"
run "70B-shaped (8 KV heads), 64 devices, latency (--inference)" "$WORK/70b-gqa.json" --auto --devices "$WORK/dev64.json" --objective latency --inference
