#!/usr/bin/env bash
# Cross-checks galaxyc's static profile against DeepSpeed's flops profiler on Hugging
# Face's BERT-base, or for a BART config (model_type "bart") BartForConditionalGeneration
# (same shapes), and fails on any difference docs/profiler.md does not explain. Needs the project's .venv with torch, transformers and deepspeed
# (.venv/bin/pip install deepspeed) and a built galaxyc.
#   scripts/deepspeed_crosscheck.sh [CONFIG]      (default configs/bert/full.json)
# Env: GALAXYC (default build/tools/galaxyc), PYTHON (default .venv/bin/python).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
config=${1:-$root/configs/bert/full.json}
galaxyc=${GALAXYC:-$root/build/tools/galaxyc}
python=${PYTHON:-$root/.venv/bin/python}

[[ -x $galaxyc ]] || { echo "no galaxyc at $galaxyc; build it or set GALAXYC" >&2; exit 2; }
[[ -x $python ]] || { echo "no $python; run scripts/setup.sh or set PYTHON" >&2; exit 2; }
if ! "$python" -c 'import deepspeed, transformers, torch' 2>/dev/null; then
  echo "$python cannot import deepspeed/transformers/torch; try: $python -m pip install deepspeed" >&2
  exit 2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$galaxyc" "$config" --mode serial --world 1 --profile-json "$tmp/galaxy.json"
# DeepSpeed logs its accelerator choice on stderr; keep the figures on stdout.
"$python" "$root/scripts/deepspeed_crosscheck.py" --galaxy-json "$tmp/galaxy.json" \
  --config "$config"
