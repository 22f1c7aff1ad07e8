#!/usr/bin/env bash
# Sets up, then compiles the embedded tiny BERT config and trains it on the
# shipped demo dataset, printing the IR summary, the loss and the eval accuracy.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/setup.sh"
cd "$here"
out=${GALAXY_DEMO_OUT:-build/demo}
mkdir -p "$out"
build/tools/galaxyc configs/bert/tiny.json -o "$out/plan"
build/tools/galaxy-run "$out/plan" --data configs/data/demo/train.tsv \
  --vocab configs/data/demo/vocab.txt --steps "${GALAXY_DEMO_STEPS:-150}" \
  --eval configs/data/demo/dev.tsv --metrics "$out/metrics.jsonl" --save "$out/weights.safetensors"
