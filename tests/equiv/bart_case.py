#!/usr/bin/python3
"""The tiny BART case of the equivalence and oracle tests: a config and seeded JSONL rows.

2 encoder + 2 decoder layers, d_model 32, 4 heads, FFN 64 (encoder) / 32 (decoder, a
different width so the TP split of each is checked), vocab 64. Sources and targets have
their own varied lengths, so the source padding mask (encoder self-attention and the
cross-attention), the causal mask and the -100 targets all matter.
"""

import random

VOCAB = 64
PAD_SIZE = 12  # source
TARGET_PAD_SIZE = 10
PAD_ID, BOS_ID, EOS_ID = 1, 0, 2
NUM_CLASSES = 3

# tp_intermediate_size_list sums to encoder_ffn_dim; the decoder's FFN is split in the
# same proportion.
# seq_scatter_list splits the source's 12 positions; the target's 10 follow in the same
# proportion, boundaries rounded: [6, 4] and [4, 4, 2].
SPLITS = {
    2: {"heads": [3, 1], "inter": [48, 16], "batch": [4, 2], "seq": [7, 5]},
    3: {"heads": [2, 1, 1], "inter": [32, 16, 16], "batch": [3, 2, 1], "seq": [5, 4, 3]},
}


def config(optimizer, task="seq2seq"):
    cfg = {
        "model_type": "bart",
        "task": task,
        "vocab_size": VOCAB,
        "d_model": 32,
        "encoder_layers": 2,
        "decoder_layers": 2,
        "encoder_attention_heads": 4,
        "decoder_attention_heads": 4,
        "encoder_ffn_dim": 64,
        "decoder_ffn_dim": 32,
        "max_position_embeddings": 32,
        "activation_function": "gelu",
        "dropout": 0.0,
        "attention_dropout": 0.0,
        "activation_dropout": 0.0,
        "classifier_dropout": 0.0,
        "scale_embedding": True,
        "init_std": 0.02,
        "pad_token_id": PAD_ID,
        "bos_token_id": BOS_ID,
        "eos_token_id": EOS_ID,
        "decoder_start_token_id": EOS_ID,
        "pad_size": PAD_SIZE,
        "target_pad_size": TARGET_PAD_SIZE,
        "batch_size": 6,
        "num_classes": NUM_CLASSES,
        "optimizer": optimizer,
        "learning_rate": 0.05 if optimizer == "sgd" else 1e-3,
        "parallel_mode": "serial",
        "seed": 42,
    }
    if task == "classification":  # the decoder reads the shifted input_ids
        del cfg["target_pad_size"]
    return cfg


def _sentence(r, n):
    return [BOS_ID] + [r.randrange(3, VOCAB) for _ in range(n)] + [EOS_ID]


def rows(n, seed, task="seq2seq"):
    r = random.Random(seed)
    out = []
    for i in range(n):
        src = _sentence(r, r.choice([1, 3, 5, 8, PAD_SIZE - 2]) if i % 4 else PAD_SIZE - 2)
        row = {"input_ids": src}
        if task == "classification":
            row["label"] = r.randrange(NUM_CLASSES)
        else:
            tgt = _sentence(r, r.choice([0, 2, 4, 7, TARGET_PAD_SIZE - 2]))
            if i % 5 == 3:  # a target part that is not learned
                tgt[1] = -100
            row["labels"] = tgt
        out.append(row)
    return out
