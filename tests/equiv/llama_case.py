#!/usr/bin/python3
"""The tiny LLaMA case of the equivalence tests: a config and seeded JSONL rows.

Grouped-query attention is on (8 query heads over 4 KV heads: uneven TP splits such as
[6, 2] or [4, 2, 2] keep whole groups); rows have varied lengths, so padding and the
causal mask both matter; some rows carry explicit padding or their own labels with -100.
"""

import random

VOCAB = 96
PAD_SIZE = 16
PAD_ID = 0

# Uneven splits per world size; heads in whole KV groups of 2.
SPLITS = {
    2: {"heads": [6, 2], "inter": [64, 32], "seq": [10, 6], "batch": [4, 2]},
    3: {"heads": [4, 2, 2], "inter": [48, 32, 16], "seq": [8, 5, 3], "batch": [3, 2, 1]},
}


def config(optimizer, task="causal_lm"):
    return {
        "model_type": "llama",
        "task": task,
        "vocab_size": VOCAB,
        "hidden_size": 64,
        "intermediate_size": 96,
        "num_hidden_layers": 2,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
        "max_position_embeddings": 64,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "pad_token_id": PAD_ID,
        "pad_size": PAD_SIZE,
        "batch_size": 6,
        "num_classes": 5,
        "optimizer": optimizer,
        "learning_rate": 0.05 if optimizer == "sgd" else 1e-3,
        "parallel_mode": "serial",
        "seed": 42,
    }


def rows(n, seed, task="causal_lm"):
    r = random.Random(seed)
    out = []
    for i in range(n):
        length = r.choice([2, 4, 7, 9, 12, PAD_SIZE]) if i % 4 else PAD_SIZE
        ids = [r.randrange(1, VOCAB) for _ in range(length)]
        row = {"input_ids": ids}
        if i % 3 == 1 and length < PAD_SIZE:  # explicit padding in the row
            extra = r.randint(1, PAD_SIZE - length)
            row["input_ids"] = ids + [PAD_ID] * extra
            row["attention_mask"] = [1] * length + [0] * extra
        if task == "classification":
            row["label"] = r.randrange(5)
        elif i % 3 == 2:  # own labels: a prompt part that is not learned
            cut = r.randint(0, length - 1)
            row["labels"] = [-100] * cut + ids[cut:]
        out.append(row)
    return out
