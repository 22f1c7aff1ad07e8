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

import argparse
import json
import statistics
import sys
import time

import torch
import transformers


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
    ids, labels = [], []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            row = json.loads(line)
            if len(row["input_ids"]) != seq:
                sys.exit(f"{path}:{n}: {len(row['input_ids'])} ids, expected full-length "
                         f"rows of {seq}")
            ids.append(row["input_ids"])
            labels.append(row["label"])
    return torch.tensor(ids, dtype=torch.long), torch.tensor(labels, dtype=torch.long)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("config")
    ap.add_argument("data")
    ap.add_argument("--mode", choices=("eager", "compile"), default="eager")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    cfg = json.load(open(args.config))
    torch.manual_seed(cfg.get("seed", 42))
    model = transformers.BertForSequenceClassification(bert_config(cfg)).to(torch.float32)
    model.train()
    lr, wd = cfg["learning_rate"], cfg.get("weight_decay", 0.0)
    if cfg.get("optimizer", "sgd") == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=wd)
    run = torch.compile(model) if args.mode == "compile" else model

    ids_all, labels_all = load_rows(args.data, cfg["pad_size"])
    B = cfg["batch_size"]
    times, losses = [], []
    for s in range(args.warmup + args.steps):
        idx = [(s * B + i) % len(ids_all) for i in range(B)]
        ids, labels = ids_all[idx], labels_all[idx]
        mask = torch.ones_like(ids)
        types = torch.zeros_like(ids)
        t0 = time.perf_counter()
        loss = run(input_ids=ids, attention_mask=mask, token_type_ids=types,
                   labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - t0)
        losses.append(loss.item())
    timed = times[args.warmup:]
    print(json.dumps({
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "mode": args.mode,
        "threads": torch.get_num_threads(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "warmup_s": times[:args.warmup],
        "step_s": timed,
        "median_s": statistics.median(timed),
        "first_loss": losses[0],
        "last_loss": losses[-1],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
