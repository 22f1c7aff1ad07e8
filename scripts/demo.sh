#!/usr/bin/env bash
# Sets up, then compiles the embedded tiny BERT for Galaxy mode (ATT tensor-
# parallel, CON sequence-parallel, MLP tensor-parallel) over 2 local ranks,
# prints the collectives the compiler inserted, trains on the shipped demo
# dataset and evaluates. GALAXY_DEMO_MODE / GALAXY_DEMO_WORLD pick another mode.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/setup.sh"
cd "$here"
out=${GALAXY_DEMO_OUT:-build/demo}
mode=${GALAXY_DEMO_MODE:-galaxy}
world=${GALAXY_DEMO_WORLD:-2}
mkdir -p "$out"
build/tools/galaxyc configs/bert/tiny.json --mode "$mode" --world "$world" -o "$out/plan"
build/tools/galaxy-run "$out/plan" --nproc "$world" --data configs/data/demo/train.tsv \
  --vocab configs/data/demo/vocab.txt --steps "${GALAXY_DEMO_STEPS:-150}" \
  --eval configs/data/demo/dev.tsv --metrics "$out/metrics.jsonl" --save "$out/weights.safetensors"
