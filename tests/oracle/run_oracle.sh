#!/usr/bin/env bash
# End-to-end oracle test: Galaxy's serial BERT run must equal the independent PyTorch
# oracle (bert_torch.py) on the same config, initial weights and data.
#
#   run_oracle.sh BUILD_DIR sgd|adamw|eval
#
# sgd/adamw: 5 training steps, then losses (rtol 1e-4), final weights (atol 1e-3, plus a
# relative check of the updates) and eval logits (atol 1e-4) must match.
# eval: no training (--steps 0), only the eval logits: separates forward from backward bugs.
# Env: GALAXYC / GALAXY_RUN override the binaries (default BUILD_DIR/tools/...),
#      PYTHON the torch interpreter (default /usr/bin/python3: Debian's python3-torch),
#      ORACLE_WORKDIR keeps every file there instead of a temp dir that is removed.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 BUILD_DIR sgd|adamw|eval" >&2
  exit 2
fi
build=$1
mode=$2
case "$mode" in
  sgd | adamw) optimizer=$mode steps=5 ;;
  eval) optimizer=sgd steps=0 ;;
  *)
    echo "run_oracle.sh: mode '$mode' is not sgd, adamw or eval" >&2
    exit 2
    ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-/usr/bin/python3}
galaxyc=${GALAXYC:-$build/tools/galaxyc}
galaxy_run=${GALAXY_RUN:-$build/tools/galaxy-run}
export PYTHONDONTWRITEBYTECODE=1

if [[ -n "${ORACLE_WORKDIR:-}" ]]; then
  work=$ORACLE_WORKDIR
  mkdir -p "$work"
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/galaxy-oracle.XXXXXX")
  trap 'rm -rf "$work"' EXIT
fi

run() {
  echo "+ $*"
  "$@"
}

# Inputs shared by both sides.
run "$py" "$here/tiny_case.py" config "$optimizer" "$work/config.json"
run "$py" "$here/tiny_case.py" data "$work/train.jsonl" --rows 24 --seed 1
run "$py" "$here/tiny_case.py" data "$work/eval.jsonl" --rows 8 --seed 2
run "$py" "$here/bert_torch.py" init "$work/config.json" --seed 1234 \
  --out "$work/init.safetensors"

# The oracle first: its output is useful even when Galaxy fails.
run "$py" "$here/bert_torch.py" train "$work/config.json" \
  --init "$work/init.safetensors" --data "$work/train.jsonl" --steps "$steps" \
  --metrics "$work/oracle_metrics.jsonl" --save "$work/oracle.safetensors" \
  --eval "$work/eval.jsonl" --eval-out "$work/oracle_eval.json"

for bin in "$galaxyc" "$galaxy_run"; do
  if [[ ! -x "$bin" ]]; then
    echo "run_oracle.sh: $bin does not exist; build the galaxyc and galaxy-run" \
      "targets (or set GALAXYC / GALAXY_RUN)" >&2
    exit 1
  fi
done
run "$galaxyc" "$work/config.json" -o "$work/plan"
run "$galaxy_run" "$work/plan" --data "$work/train.jsonl" --steps "$steps" \
  --init "$work/init.safetensors" --save "$work/galaxy.safetensors" \
  --metrics "$work/galaxy_metrics.jsonl" \
  --eval "$work/eval.jsonl" --eval-out "$work/galaxy_eval.json"

status=0
compare=("$py" "$here/compare.py")
if [[ $steps -gt 0 ]]; then
  run "${compare[@]}" losses "$work/galaxy_metrics.jsonl" \
    "$work/oracle_metrics.jsonl" --rtol 1e-4 || status=1
  run "${compare[@]}" weights "$work/galaxy.safetensors" "$work/oracle.safetensors" \
    --atol 1e-3 --init "$work/init.safetensors" || status=1
fi
run "${compare[@]}" logits "$work/galaxy_eval.json" "$work/oracle_eval.json" \
  --atol 1e-4 || status=1

if [[ $status -ne 0 ]]; then
  echo "run_oracle.sh: Galaxy and the oracle disagree ($mode); rerun with" \
    "ORACLE_WORKDIR=DIR to keep the files" >&2
else
  echo "run_oracle.sh: Galaxy matches the oracle ($mode)"
fi
exit $status
