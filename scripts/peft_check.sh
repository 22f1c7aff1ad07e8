#!/usr/bin/env bash
# Galaxy's PEFT adapter folders against Hugging Face PEFT itself
# (tests/oracle/peft_roundtrip.py): a LoRA trained by galaxy-run opens in
# PeftModel.from_pretrained with Galaxy's logits, and one made by PEFT trains in
# galaxy-run from PEFT's loss; BERT, and LLaMA's CAUSAL_LM and SEQ_CLS
# (--model bert|llama runs one). Not part of CTest: it needs transformers + peft from
# PyPI. Debian's torch 1.13 (/usr/bin/python3's python3-torch) is used, so the
# venv sees the system site-packages and the PyPI packages are pinned to versions
# that support torch 1.13, installed without their dependency resolution (which
# would pull PyPI's torch, several GB).
#
#   scripts/peft_check.sh [peft_roundtrip.py args...]   (default --build REPO/build)
#
# Env: GALAXY_PEFT_VENV (default REPO/.venv-peft).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${GALAXY_PEFT_VENV:-$root/.venv-peft}
py=$venv/bin/python

if [[ ! -x $py ]]; then
  echo "[peft] creating $venv (with the system site-packages: Debian's torch)"
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
if ! "$py" -c "import torch, numpy" 2>/dev/null; then
  echo "peft_check: $py cannot import torch/numpy; apt-get install python3-torch python3-numpy" >&2
  exit 1
fi
if ! "$py" -c "import peft, transformers, jinja2" 2>/dev/null; then
  echo "[peft] installing transformers 4.46.3 + peft 0.13.2 into $venv"
  "$py" -m pip install --quiet --no-deps \
    transformers==4.46.3 tokenizers==0.20.3 huggingface-hub==0.26.5 safetensors==0.4.5 \
    peft==0.13.2 accelerate==0.34.2 tqdm==4.67.1 regex==2024.11.6 filelock==3.16.1 \
    fsspec==2024.10.0 packaging==24.2 Jinja2==3.1.4 MarkupSafe==3.0.2
fi

export PYTHONDONTWRITEBYTECODE=1
exec "$py" -W ignore "$root/tests/oracle/peft_roundtrip.py" "$@"
