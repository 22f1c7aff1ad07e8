#!/usr/bin/python3
"""The PyTorch oracle for Galaxy's LLaMA: same config, weights and data in, losses/weights out.

  llama_torch.py init CONFIG --seed S --out W.safetensors [--spec-init]
  llama_torch.py train CONFIG [--init W.safetensors] --data D.jsonl --steps N
      [--optimizer sgd|adamw] [--lr X] [--metrics M.jsonl] [--save OUT.safetensors]
      [--eval E.jsonl --eval-out LOGITS.json]
  llama_torch.py eval CONFIG --init W.safetensors --eval E.jsonl --eval-out LOGITS.json
  llama_torch.py params CONFIG     (JSON: method, task, total/trainable counts, trainable regex)

Runs with Debian's python3-torch (use /usr/bin/python3). float32, 2 threads, dropout off.
The command line, the training loop and the optimizers (torch's SGD and AdamW over the
trainable set: what Galaxy's sgd/adamw compute) are oracle_common.py's, shared with
bert_torch.py.
"""

import os
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import llama_config  # noqa: E402
import llama_data  # noqa: E402
import llama_model  # noqa: E402
import oracle_common  # noqa: E402


def batch_loss(cfg, params, rows, indices):
    ids, mask, labels = llama_data.make_batch(rows, indices)
    return llama_model.loss_fn(cfg, llama_model.forward(cfg, params, ids, mask), labels)


def evaluate(cfg, params, rows):
    """Logits of every row and the loss over all rows as one batch; accuracy is over
    rows (classification) or counted next-token targets (causal LM)."""
    with torch.no_grad():
        ids, mask, labels = llama_data.make_batch(rows, range(len(rows)))
        logits = llama_model.forward(cfg, params, ids, mask)
        loss = llama_model.loss_fn(cfg, logits, labels).item()
        if cfg["task"] == "classification":
            acc = (logits.argmax(dim=-1) == labels).float().mean().item()
        else:
            target = labels[:, 1:]
            counted = target != llama_data.IGNORE_INDEX
            hits = (logits[:, :-1].argmax(dim=-1) == target) & counted
            acc = (hits.sum() / counted.sum()).item()
    return {"loss": loss, "accuracy": acc, "logits": logits.tolist()}


ORACLE = oracle_common.Oracle(
    "llama_torch.py",
    "Hugging Face's init (unit RMSNorm weights, LoRA B zero) instead of perturbed norms "
    "and LoRA B",
    types.SimpleNamespace(
        load_config=llama_config.load_config,
        check_no_dropout=llama_config.check_no_dropout,
        trainable_regex=llama_config.trainable_regex,
        init_params=llama_model.init_params,
        check_params=llama_model.check_params,
        is_trainable=llama_model.is_trainable,
        param_counts=llama_model.param_counts,
        load_rows=llama_data.load_rows,
        batch_loss=batch_loss,
        evaluate=evaluate,
        params_extra=lambda cfg: {"task": cfg["task"]},
    ),
)


def main(argv=None):
    return ORACLE.main(__doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
