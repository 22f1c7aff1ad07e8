#!/usr/bin/env bash
# Hugging Face conformance: transformers' BertForSequenceClassification, LlamaForCausalLM
# and LlamaForSequenceClassification (and PEFT's LoRA) vs the oracles (tests/oracle/
# bert_torch.py, llama_torch.py) and, given a run's outputs, vs Galaxy. Not part of CTest:
# it needs PyPI (transformers and peft, about 170 MB, into REPO/.venv-hf the first time).
#
#   scripts/hf_conformance.sh [hf_conformance.py args...]
#   e.g. scripts/hf_conformance.sh --model llama --llama-cases sgd,cls
#        ORACLE_WORKDIR=/tmp/o tests/oracle/run_oracle.sh build llama adamw
#        scripts/hf_conformance.sh --from /tmp/o
#
# The venv sees Debian's python3-torch 1.13 (--system-site-packages); the pins below are
# releases of late 2024 that support torch 1.13, the versions this check was last run
# with (later transformers releases drop torch 1.x). peft and accelerate go in with
# --no-deps: pip reads Debian's "1.13.0a0" as a pre-release that does not satisfy their
# "torch>=1.13" and would pull a multi-GB PyPI torch into the venv.
# Env: GALAXY_VENV (default REPO/.venv-hf), GALAXY_HF_PIP_ARGS (extra pip arguments),
# GALAXY_HF_INSTALL_TIMEOUT (seconds, default 1800).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${GALAXY_VENV:-$root/.venv-hf}
py=$venv/bin/python
pins=(transformers==4.46.3 tokenizers==0.20.3 huggingface_hub==0.36.2 safetensors==0.8.0)
nodeps_pins=(peft==0.13.2 accelerate==1.1.1)

if ! /usr/bin/python3 -c "import torch, numpy, yaml, psutil" 2>/dev/null; then
  echo "hf_conformance: /usr/bin/python3 cannot import torch/numpy/yaml/psutil;" \
    "apt-get install python3-torch python3-numpy python3-yaml python3-psutil" >&2
  exit 1
fi
if [[ ! -x $py ]]; then
  if ! /usr/bin/python3 -c "import ensurepip" 2>/dev/null; then
    echo "hf_conformance: /usr/bin/python3 has no venv support; apt-get install python3-venv" >&2
    exit 1
  fi
  echo "[hf] creating $venv (over Debian's torch)"
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi

want="transformers 4.46.3 peft 0.13.2"
have=$("$py" -c "import transformers, peft; print('transformers', transformers.__version__,
'peft', peft.__version__)" 2>/dev/null || true)
if [[ $have != "$want" ]]; then
  echo "[hf] installing ${pins[*]} ${nodeps_pins[*]} into $venv"
  start=$SECONDS
  # shellcheck disable=SC2086
  timeout "${GALAXY_HF_INSTALL_TIMEOUT:-1800}" "$py" -m pip install --quiet \
    "${pins[@]}" ${GALAXY_HF_PIP_ARGS:-}
  # shellcheck disable=SC2086
  timeout "${GALAXY_HF_INSTALL_TIMEOUT:-1800}" "$py" -m pip install --quiet --no-deps \
    "${nodeps_pins[@]}" ${GALAXY_HF_PIP_ARGS:-}
  echo "[hf] installed in $((SECONDS - start)) s; venv size $(du -sh "$venv" | cut -f1)"
fi

export PYTHONDONTWRITEBYTECODE=1
exec "$py" "$root/tests/oracle/hf_conformance.py" "$@"
