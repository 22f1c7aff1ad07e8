#!/usr/bin/env bash
# Hugging Face conformance: transformers' BertForSequenceClassification vs the oracle
# (tests/oracle/bert_torch.py) and, given its outputs, vs Galaxy. Not part of CTest: it
# needs PyPI (torch + transformers in the project's .venv, several GB the first time).
#
#   scripts/hf_conformance.sh [hf_conformance.py args...]
#   e.g. ORACLE_WORKDIR=/tmp/o tests/oracle/run_oracle.sh build sgd
#        scripts/hf_conformance.sh --from /tmp/o
#
# Env: GALAXY_VENV (default REPO/.venv), GALAXY_HF_PIP_ARGS (extra pip arguments, e.g.
# version pins), GALAXY_HF_INSTALL_TIMEOUT (seconds, default 1800).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${GALAXY_VENV:-$root/.venv}
py=$venv/bin/python

if [[ ! -x $py ]]; then
  if ! /usr/bin/python3 -c "import ensurepip" 2>/dev/null; then
    echo "hf_conformance: /usr/bin/python3 has no venv support; apt-get install python3-venv" >&2
    exit 1
  fi
  echo "[hf] creating $venv"
  /usr/bin/python3 -m venv "$venv"
fi

if ! "$py" -c "import torch, transformers, numpy" 2>/dev/null; then
  # PyPI's Linux torch wheel is the CUDA build: it pulls the NVIDIA runtime wheels
  # (cuDNN, cuBLAS, NCCL, ...), several GB. There is no CPU-only wheel on PyPI.
  echo "[hf] installing torch + transformers from PyPI into $venv (several GB)"
  start=$SECONDS
  # shellcheck disable=SC2086
  timeout "${GALAXY_HF_INSTALL_TIMEOUT:-1800}" "$py" -m pip install --quiet \
    torch transformers numpy ${GALAXY_HF_PIP_ARGS:-}
  echo "[hf] installed in $((SECONDS - start)) s; venv size $(du -sh "$venv" | cut -f1)"
fi

export PYTHONDONTWRITEBYTECODE=1
exec "$py" "$root/tests/oracle/hf_conformance.py" "$@"
