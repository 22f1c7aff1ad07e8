#!/usr/bin/env bash
# End-to-end PEFT oracle test: Galaxy's serial BERT with one PEFT method must equal the
# PyTorch oracle (tests/oracle/bert_torch.py) on the same config, weights and data.
#
#   run_peft_oracle.sh BUILD_DIR METHOD sgd|adamw
#
# METHOD: lora | lora-all-targets-fanin | adapter-gelu_new | adapter-gelu | adapter-relu |
#         adapter-swish | side
# (peft_case.py holds the configs). 5 steps, then:
#   - Galaxy's saved weights hold every initial tensor (the method's LoRA/adapter/side
#     parameters included) and its frozen tensors are bit-identical to the init;
#   - losses (rtol 1e-4), final weights (atol 1e-3, plus the relative update check) and
#     eval logits (atol 1e-4) match the oracle.
# The initial weights give LoRA B and adapter up small random values (not the spec's
# zeros), so the first steps exercise LoRA A and adapter down too.
# Env: GALAXYC / GALAXY_RUN override the binaries (default BUILD_DIR/tools/...),
#      PYTHON the torch interpreter (default /usr/bin/python3: Debian's python3-torch),
#      ORACLE_WORKDIR keeps every file there instead of a temp dir that is removed.
set -euo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 BUILD_DIR METHOD sgd|adamw" >&2
  exit 2
fi
build=$1
method=$2
optimizer=$3
steps=5
here=$(cd "$(dirname "$0")" && pwd)
oracle=$here/../oracle
py=${PYTHON:-/usr/bin/python3}
galaxyc=${GALAXYC:-$build/tools/galaxyc}
galaxy_run=${GALAXY_RUN:-$build/tools/galaxy-run}
export PYTHONDONTWRITEBYTECODE=1

if [[ -n "${ORACLE_WORKDIR:-}" ]]; then
  work=$ORACLE_WORKDIR
  mkdir -p "$work"
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/galaxy-peft-oracle.XXXXXX")
  trap 'rm -rf "$work"' EXIT
fi

run() {
  echo "+ $*"
  "$@"
}

# Inputs shared by both sides (peft_case.py rejects an unknown METHOD or optimizer).
run "$py" "$here/peft_case.py" config "$method" "$optimizer" "$work/config.json"
run "$py" "$oracle/tiny_case.py" data "$work/train.jsonl" --rows 24 --seed 1
run "$py" "$oracle/tiny_case.py" data "$work/eval.jsonl" --rows 8 --seed 2
run "$py" "$oracle/bert_torch.py" init "$work/config.json" --seed 1234 \
  --out "$work/init.safetensors"
trainable=$("$py" "$here/peft_case.py" trainable "$work/config.json")
echo "trainable tensors: /$trainable/"

# The oracle first: its output is useful even when Galaxy fails.
run "$py" "$oracle/bert_torch.py" train "$work/config.json" \
  --init "$work/init.safetensors" --data "$work/train.jsonl" --steps "$steps" \
  --metrics "$work/oracle_metrics.jsonl" --save "$work/oracle.safetensors" \
  --eval "$work/eval.jsonl" --eval-out "$work/oracle_eval.json"
compare=("$py" "$oracle/compare.py")
run "${compare[@]}" frozen "$work/oracle.safetensors" "$work/init.safetensors" \
  --trainable "$trainable"

for bin in "$galaxyc" "$galaxy_run"; do
  if [[ ! -x "$bin" ]]; then
    echo "run_peft_oracle.sh: $bin does not exist; build the galaxyc and galaxy-run" \
      "targets (or set GALAXYC / GALAXY_RUN)" >&2
    exit 1
  fi
done
if ! run "$galaxyc" "$work/config.json" -o "$work/plan"; then
  echo "run_peft_oracle.sh: galaxyc rejected the $method config (above); does the" \
    "compiler implement this PEFT method yet?" >&2
  exit 1
fi
if ! run "$galaxy_run" "$work/plan" --data "$work/train.jsonl" --steps "$steps" \
  --init "$work/init.safetensors" --save "$work/galaxy.safetensors" \
  --metrics "$work/galaxy_metrics.jsonl" \
  --eval "$work/eval.jsonl" --eval-out "$work/galaxy_eval.json"; then
  echo "run_peft_oracle.sh: galaxy-run failed on the $method plan with" \
    "$work/init.safetensors, which holds the method's parameters (names: issue 5)" >&2
  exit 1
fi

# First: does Galaxy's output have the method's parameters at all, with the frozen ones
# untouched? A compiler that ignores the PEFT keys fails here, by name.
if ! run "${compare[@]}" frozen "$work/galaxy.safetensors" "$work/init.safetensors" \
  --trainable "$trainable"; then
  echo "run_peft_oracle.sh: Galaxy's saved weights lack the $method parameters or" \
    "changed frozen ones (see MISMATCH above)" >&2
  exit 1
fi
status=0
run "${compare[@]}" losses "$work/galaxy_metrics.jsonl" \
  "$work/oracle_metrics.jsonl" --rtol 1e-4 || status=1
run "${compare[@]}" weights "$work/galaxy.safetensors" "$work/oracle.safetensors" \
  --atol 1e-3 --init "$work/init.safetensors" || status=1
run "${compare[@]}" logits "$work/galaxy_eval.json" "$work/oracle_eval.json" \
  --atol 1e-4 || status=1

if [[ $status -ne 0 ]]; then
  echo "run_peft_oracle.sh: Galaxy and the oracle disagree ($method, $optimizer);" \
    "rerun with ORACLE_WORKDIR=DIR to keep the files" >&2
else
  echo "run_peft_oracle.sh: Galaxy matches the oracle ($method, $optimizer)"
fi
exit $status
