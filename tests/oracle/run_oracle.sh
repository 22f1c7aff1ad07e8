#!/usr/bin/env bash
# End-to-end oracle test: Galaxy's serial run must equal the independent PyTorch oracle of
# the model (bert_torch.py; llama_torch.py, itself checked against transformers by
# scripts/hf_conformance.sh) on the same config, initial weights and data.
#
#   run_oracle.sh BUILD_DIR bert sgd|adamw|eval
#   run_oracle.sh BUILD_DIR llama sgd|adamw|cls|lora|lora_cls
#
# BERT (tiny_case.py): sgd/adamw train 5 steps; eval trains none (--steps 0) and compares
# only the eval logits, which separates forward from backward bugs.
# LLaMA (llama_tiny_case.py: GQA, padding, pad id 3): sgd and adamw train a causal LM
# (adamw with tied embeddings and weight decay), cls a classifier on the last non-pad token
# (AdamW), lora a causal LM with LoRA on all seven projections (SGD), lora_cls the
# classifier with LoRA on q_proj/v_proj and score trained (SGD).
# After training: losses (rtol 1e-4) and final weights (atol 1e-3, plus the relative check
# of the updates) must match; LoRA modes also check that every frozen tensor is
# bit-unchanged; classifiers also compare the eval logits (atol 1e-4).
# Env: GALAXYC / GALAXY_RUN override the binaries (default BUILD_DIR/tools/...),
#      PYTHON the torch interpreter (default /usr/bin/python3: Debian's python3-torch),
#      ORACLE_WORKDIR keeps every file there instead of a temp dir that is removed
#      (scripts/hf_conformance.sh --from DIR then checks the same run against HF).
set -euo pipefail

usage="usage: $0 BUILD_DIR bert sgd|adamw|eval | BUILD_DIR llama sgd|adamw|cls|lora|lora_cls"
if [[ $# -ne 3 ]]; then
  echo "$usage" >&2
  exit 2
fi
build=$1
model=$2
mode=$3
steps=5
case "$model:$mode" in
  bert:sgd | bert:adamw) case_args=(config "$mode") task=classification ;;
  bert:eval) case_args=(config sgd) task=classification steps=0 ;;
  llama:sgd | llama:adamw | llama:lora) case_args=(config "$mode") task=causal_lm ;;
  llama:cls | llama:lora_cls) case_args=(config "$mode") task=classification ;;
  *)
    echo "run_oracle.sh: '$model $mode' is not a case; $usage" >&2
    exit 2
    ;;
esac
case $model in
  bert) case_py=tiny_case.py data_args=() ;;
  llama) case_py=llama_tiny_case.py data_args=(--task "$task") ;;
esac
oracle_py=${model}_torch.py

here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-/usr/bin/python3}
galaxyc=${GALAXYC:-$build/tools/galaxyc}
galaxy_run=${GALAXY_RUN:-$build/tools/galaxy-run}
export PYTHONDONTWRITEBYTECODE=1

if [[ -n "${ORACLE_WORKDIR:-}" ]]; then
  work=$ORACLE_WORKDIR
  mkdir -p "$work"
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/galaxy-oracle-$model.XXXXXX")
  trap 'rm -rf "$work"' EXIT
fi

run() {
  echo "+ $*"
  "$@"
}

# Inputs shared by both sides.
run "$py" "$here/$case_py" "${case_args[@]}" "$work/config.json"
run "$py" "$here/$case_py" data "$work/train.jsonl" "${data_args[@]}" --rows 24 --seed 1
run "$py" "$here/$case_py" data "$work/eval.jsonl" "${data_args[@]}" --rows 8 --seed 2
run "$py" "$here/$oracle_py" init "$work/config.json" --seed 1234 \
  --out "$work/init.safetensors"

eval_args=()
galaxy_eval_args=()
if [[ $task == classification ]]; then
  eval_args=(--eval "$work/eval.jsonl" --eval-out "$work/oracle_eval.json")
  galaxy_eval_args=(--eval "$work/eval.jsonl" --eval-out "$work/galaxy_eval.json")
fi

# The oracle first: its output is useful even when Galaxy fails.
run "$py" "$here/$oracle_py" train "$work/config.json" \
  --init "$work/init.safetensors" --data "$work/train.jsonl" --steps "$steps" \
  --metrics "$work/oracle_metrics.jsonl" --save "$work/oracle.safetensors" \
  "${eval_args[@]}"

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
  --metrics "$work/galaxy_metrics.jsonl" "${galaxy_eval_args[@]}"

status=0
compare=("$py" "$here/compare.py")
if [[ $steps -gt 0 ]]; then
  run "${compare[@]}" losses "$work/galaxy_metrics.jsonl" \
    "$work/oracle_metrics.jsonl" --rtol 1e-4 || status=1
  run "${compare[@]}" weights "$work/galaxy.safetensors" "$work/oracle.safetensors" \
    --atol 1e-3 --init "$work/init.safetensors" || status=1
fi
if [[ $mode == lora* ]]; then
  regex=$("$py" "$here/$oracle_py" params "$work/config.json" |
    "$py" -c 'import json, sys; print(json.load(sys.stdin)["trainable_regex"])')
  run "${compare[@]}" frozen "$work/galaxy.safetensors" "$work/init.safetensors" \
    --trainable "$regex" || status=1
fi
if [[ $task == classification ]]; then
  run "${compare[@]}" logits "$work/galaxy_eval.json" "$work/oracle_eval.json" \
    --atol 1e-4 || status=1
fi

if [[ $status -ne 0 ]]; then
  echo "run_oracle.sh: Galaxy and the oracle disagree ($model $mode); rerun with" \
    "ORACLE_WORKDIR=DIR to keep the files" >&2
else
  echo "run_oracle.sh: Galaxy matches the oracle ($model $mode)"
fi
exit $status
