#!/usr/bin/python3
"""The tiny BERT case the oracle tests share: a config and seeded JSONL data.

  tiny_case.py config sgd|adamw OUT.json
  tiny_case.py data OUT.jsonl [--rows 24] [--seed 1]

The data has varied lengths (so the padding mask matters), both token types, rows that
omit mask/types (defaults), and rows that carry their own padding (mask 0, id 0).
Real tokens never use id 0: Hugging Face's embedding freezes the pad row, Galaxy's does
not, and the two must be comparable.
"""

import argparse
import json
import random
import sys

VOCAB = 300  # no demo vocabulary ships with the repository yet
PAD_SIZE = 16


def config(optimizer):
    if optimizer not in ("sgd", "adamw"):
        raise ValueError(f"optimizer {optimizer!r} is not 'sgd' or 'adamw'")
    return {
        "model_type": "bert",
        "vocab_size": VOCAB,
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 128,
        "max_position_embeddings": 64,
        "pad_size": PAD_SIZE,
        "batch_size": 4,
        "num_classes": 10,
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "optimizer": optimizer,
        "learning_rate": 0.05 if optimizer == "sgd" else 1e-3,
        "parallel_mode": "serial",
        "seed": 42,
    }


def rows(n, seed):
    r = random.Random(seed)
    out = []
    for i in range(n):
        length = r.choice([3, 5, 8, 11, 13, PAD_SIZE]) if i % 5 else PAD_SIZE
        ids = [1] + [r.randrange(2, VOCAB) for _ in range(length - 1)]
        split = r.randint(1, length)
        row = {"input_ids": ids, "label": r.randrange(10)}
        kind = i % 3
        if kind != 0:
            row["token_type_ids"] = [0] * split + [1] * (length - split)
        if kind == 1:
            row["attention_mask"] = [1] * length
        elif kind == 2 and length < PAD_SIZE:
            extra = r.randint(1, PAD_SIZE - length)  # explicit padding in the row
            row["input_ids"] += [0] * extra
            row["attention_mask"] = [1] * length + [0] * extra
            row["token_type_ids"] += [0] * extra
        out.append(row)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("config")
    p.add_argument("optimizer")
    p.add_argument("out")
    p = sub.add_parser("data")
    p.add_argument("out")
    p.add_argument("--rows", type=int, default=24)
    p.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    if args.cmd == "config":
        with open(args.out, "w") as f:
            json.dump(config(args.optimizer), f, indent=1)
    else:
        with open(args.out, "w") as f:
            for row in rows(args.rows, args.seed):
                f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
