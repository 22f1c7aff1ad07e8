#!/usr/bin/env python3
"""Hugging Face baseline for bench/bert_step.sh: BertForSequenceClassification's training step.

  bert_step_hf.py CONFIG DATA.jsonl --mode eager|compile --steps N --warmup W [--threads 2]

transformers' own BertForSequenceClassification, built from a BertConfig with the Galaxy
config's sizes (random initialisation, attn_implementation "eager": the model's own
attention code, not SDPA), fp32, dropout as configured (train mode); each step: forward
with an all-ones attention mask, token types 0 and the row labels (cross-entropy), backward,
the config's optimizer step (SGD or AdamW), zero_grad() (set_to_none, torch's and the HF
Trainer's default). `--mode compile` runs the model through torch.compile (default mode,
Inductor: forward and backward compiled; the optimizer step stays eager); its warm-up steps
include compilation, reported apart. Prints one JSON line: versions, threads, every timed
step and the median.
"""

import sys

import torch
import transformers

import hf_step


def bert_config(cfg):
    return transformers.BertConfig(
        vocab_size=cfg["vocab_size"],
        hidden_size=cfg["hidden_size"],
        num_hidden_layers=cfg["num_hidden_layers"],
        num_attention_heads=cfg["num_attention_heads"],
        intermediate_size=cfg["intermediate_size"],
        hidden_act=cfg.get("hidden_act", "gelu"),
        hidden_dropout_prob=cfg["hidden_dropout_prob"],
        attention_probs_dropout_prob=cfg["attention_probs_dropout_prob"],
        max_position_embeddings=cfg["max_position_embeddings"],
        type_vocab_size=cfg["type_vocab_size"],
        initializer_range=cfg.get("initializer_range", 0.02),
        layer_norm_eps=cfg["layer_norm_eps"],
        pad_token_id=cfg.get("pad_token_id", 0),
        num_labels=cfg["num_classes"],
        attn_implementation="eager",
    )


def load_rows(path, seq):
    rows = list(hf_step.full_rows(path, seq))
    return (torch.tensor([r["input_ids"] for r in rows], dtype=torch.long),
            torch.tensor([r["label"] for r in rows], dtype=torch.long))


def main(argv=None):
    args = hf_step.parse_args(__doc__, 20, argv)
    cfg = hf_step.load_config(args)
    model = transformers.BertForSequenceClassification(bert_config(cfg)).to(torch.float32)
    lr, wd = cfg["learning_rate"], cfg.get("weight_decay", 0.0)
    if cfg.get("optimizer", "sgd") == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=wd)

    ids_all, labels_all = load_rows(args.data, cfg["pad_size"])

    def inputs(idx):
        ids = ids_all[idx]
        return dict(input_ids=ids, attention_mask=torch.ones_like(ids),
                    token_type_ids=torch.zeros_like(ids), labels=labels_all[idx])

    hf_step.run_steps(args, model, opt, len(ids_all), cfg["batch_size"], inputs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
