#!/usr/bin/python3
"""The tiny LLaMA cases the oracle tests share: configs and seeded JSONL data.

  llama_tiny_case.py config sgd|adamw|cls|lora|lora_cls OUT.json
  llama_tiny_case.py data OUT.jsonl [--task causal_lm|classification] [--rows 24] [--seed 1]

Configs (all GQA: 4 query heads over 2 KV heads, head_dim 8, 2 layers, pad_token_id 3 so
nothing may assume pad 0, rms_norm_eps 1e-5 or 1e-3 so nothing may assume HF's default):
  sgd    causal LM, untied head, SGD, rope_theta 10000
  adamw  causal LM, tie_word_embeddings, AdamW with weight decay, rope_theta 500000,
         rms_norm_eps 1e-3
  cls    classification (5 classes, score on the last non-pad token), AdamW
  lora   causal LM, LoRA on all seven projections, SGD
  lora_cls  classification, LoRA on q_proj/v_proj (the prototype's), score trained, SGD
The data has varied lengths, rows of one token, rows that omit the mask, rows that carry
their own padding (pad id, mask 0) and, for causal LM, rows whose "labels" mask a prompt
with -100 and rows with a masked pad inside (its own target and the next one -100): right
padding alone never reaches a counted query through the causal mask, so only those make
the padding mask matter. Real tokens never use the pad id, and every masked position
holds it (so "mask 0" and "pad id" mean the same): Hugging Face's embedding freezes the
pad row, and under classification a pad id inside a row would move the last non-pad
token (transformers 4.46 takes the token before the first pad, later versions the last
non-pad token: equal on these rows).
"""

import argparse
import json
import random
import sys

VOCAB = 64
PAD_SIZE = 16
PAD_ID = 3
NUM_CLASSES = 5
CASES = ("sgd", "adamw", "cls", "lora", "lora_cls")


def config(case):
    if case not in CASES:
        raise ValueError(f"case {case!r} is not one of {list(CASES)}")
    cfg = {
        "model_type": "llama",
        "task": "classification" if case in ("cls", "lora_cls") else "causal_lm",
        "vocab_size": VOCAB,
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "max_position_embeddings": 64,
        # At HF's 0.02 a model this small attends almost uniformly: RoPE and the padding
        # mask then move the loss by ~1e-5 relative, below the 1e-4 tolerance. At 0.2 a
        # wrong rope_theta or a dropped padding mask moves it by ~1e-3.
        "initializer_range": 0.2,
        "tie_word_embeddings": False,
        "pad_token_id": PAD_ID,
        "attention_dropout": 0.0,
        "pad_size": PAD_SIZE,
        "batch_size": 4,
        "optimizer": "sgd",
        "learning_rate": 0.1,
        "parallel_mode": "serial",
        "seed": 42,
    }
    if case == "adamw":
        # rms_norm_eps 1e-3: at 1e-5 a model that ignored the key (used 1e-6) would
        # still be within the loss tolerance; at 1e-3 it is 1e-3 off.
        cfg.update(tie_word_embeddings=True, optimizer="adamw", learning_rate=1e-3,
                   weight_decay=0.01, rope_theta=500000.0, rms_norm_eps=1e-3)
    elif case == "cls":
        cfg.update(num_classes=NUM_CLASSES, optimizer="adamw", learning_rate=1e-3,
                   rope_theta=1000.0)
    elif case == "lora_cls":
        cfg.update(num_classes=NUM_CLASSES, full_model=False, use_lora=True, lora_dim=4,
                   lora_alpha=8.0, lora_dropout=0.0, lora_target_modules=["q_proj", "v_proj"])
    elif case == "lora":
        cfg.update(
            full_model=False, use_lora=True, lora_dim=4, lora_alpha=8.0, lora_dropout=0.0,
            lora_target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                 "up_proj", "down_proj"],
        )
    return cfg


def _token(r):
    t = r.randrange(VOCAB - 1)
    return t if t < PAD_ID else t + 1  # every id but the pad id


def rows(n, seed, task):
    r = random.Random(seed)
    out = []
    for i in range(n):
        length = r.choice([1, 4, 7, 10, 13, PAD_SIZE]) if i % 5 else PAD_SIZE
        ids = [_token(r) for _ in range(length)]
        row = {"input_ids": ids}
        kind = i % 3
        if kind == 1:
            row["attention_mask"] = [1] * length
        elif kind == 2 and length < PAD_SIZE:
            extra = r.randint(1, PAD_SIZE - length)  # explicit padding in the row
            row["input_ids"] = ids + [PAD_ID] * extra
            row["attention_mask"] = [1] * length + [0] * extra
        if task == "classification":
            row["label"] = r.randrange(NUM_CLASSES)
        elif i % 7 == 6 and length >= 4:  # a masked pad inside: later queries skip it
            hole = r.randrange(1, length - 2)
            row["input_ids"][hole] = PAD_ID
            mask = row.get("attention_mask", [1] * len(row["input_ids"]))
            row["attention_mask"] = mask[:hole] + [0] + mask[hole + 1:]
            # The pad's own query would predict hole + 1: ignore that target too, so the
            # pad row's gradient is zero whether or not an embedding freezes it.
            labels = row.get("labels", list(ids) + [-100] * (len(row["input_ids"]) - length))
            row["labels"] = labels[:hole] + [-100, -100] + labels[hole + 2:]
        elif i % 4 == 3 and length > 2:  # a prompt the loss ignores
            prompt = r.randint(1, length - 2)
            row["labels"] = [-100] * prompt + ids[prompt:]
            row["labels"] += [-100] * (len(row["input_ids"]) - length)
        out.append(row)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("config")
    p.add_argument("case", choices=CASES)
    p.add_argument("out")
    p = sub.add_parser("data")
    p.add_argument("out")
    p.add_argument("--task", choices=("causal_lm", "classification"), default="causal_lm")
    p.add_argument("--rows", type=int, default=24)
    p.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    if args.cmd == "config":
        with open(args.out, "w") as f:
            json.dump(config(args.case), f, indent=1)
    else:
        with open(args.out, "w") as f:
            for row in rows(args.rows, args.seed, args.task):
                f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
