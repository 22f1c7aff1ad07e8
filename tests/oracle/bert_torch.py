#!/usr/bin/python3
"""The PyTorch oracle for Galaxy's BERT: same config, weights and data in, losses/weights out.

  bert_torch.py init CONFIG --seed S --out W.safetensors
  bert_torch.py train CONFIG [--init W.safetensors] --data D.jsonl --steps N
      [--optimizer sgd|adamw] [--lr X] [--metrics M.jsonl] [--save OUT.safetensors]
      [--eval E.jsonl --eval-out LOGITS.json]
  bert_torch.py eval CONFIG --init W.safetensors --eval E.jsonl --eval-out LOGITS.json
  bert_torch.py params CONFIG     (JSON: method, total/trainable counts, trainable regex)

Runs with Debian's python3-torch (use /usr/bin/python3). float32, 2 threads, dropout off.
The config's PEFT method (use_lora / use_adapter / use_side) decides the parameter set
init writes and the trainable set train updates; frozen tensors are saved bit-unchanged.
The command line and the training loop are oracle_common.py's, shared with llama_torch.py.
"""

import os
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import bert_config  # noqa: E402
import bert_data  # noqa: E402
import bert_model  # noqa: E402
import oracle_common  # noqa: E402


def batch_loss(cfg, params, rows, indices):
    ids, mask, types_, labels = bert_data.make_batch(rows, indices)
    return bert_model.loss_fn(bert_model.forward(cfg, params, ids, mask, types_), labels)


def evaluate(cfg, params, rows):
    """Logits of every row, mean cross-entropy over rows, accuracy (rows are independent)."""
    with torch.no_grad():
        ids, mask, types_, labels = bert_data.make_batch(rows, range(len(rows)))
        logits = bert_model.forward(cfg, params, ids, mask, types_)
        loss = bert_model.loss_fn(logits, labels).item()
        acc = (logits.argmax(dim=-1) == labels).float().mean().item()
    return {"loss": loss, "accuracy": acc, "logits": logits.tolist()}


ORACLE = oracle_common.Oracle(
    "bert_torch.py",
    "Galaxy's own init (zero biases, unit LayerNorm, LoRA B and adapter up zero) instead "
    "of small noise",
    types.SimpleNamespace(
        load_config=bert_config.load_config,
        check_no_dropout=bert_config.check_no_dropout,
        trainable_regex=bert_config.trainable_regex,
        init_params=bert_model.init_params,
        check_params=bert_model.check_params,
        is_trainable=bert_model.is_trainable,
        param_counts=bert_model.param_counts,
        load_rows=bert_data.load_rows,
        batch_loss=batch_loss,
        evaluate=evaluate,
        params_extra=lambda cfg: {},
    ),
)


def main(argv=None):
    return ORACLE.main(__doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
