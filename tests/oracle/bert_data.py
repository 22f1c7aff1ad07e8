"""JSONL classification data for the oracle, padded exactly as Galaxy's runtime pads it.

Row: {"input_ids": [...], "attention_mask": [...], "token_type_ids": [...], "label": k};
mask defaults to 1s and types to 0s; rows shorter than pad_size get id 0, mask 0, type 0.
"""

import torch

from oracle_common import DataError, load_jsonl_rows, step_indices  # noqa: F401


def load_rows(path, cfg):
    """Parses and validates every row; returns a list of (ids, mask, types, label)."""
    return load_jsonl_rows(path, cfg, _parse_row)


def _parse_row(obj, cfg, where):
    if not isinstance(obj, dict) or "input_ids" not in obj or "label" not in obj:
        raise DataError(f"{where}: a row needs 'input_ids' and 'label'")
    ids = obj["input_ids"]
    n, S = len(ids), cfg["pad_size"]
    if n == 0 or n > S:
        raise DataError(f"{where}: {n} tokens; rows need 1..pad_size={S} tokens")
    mask = obj.get("attention_mask", [1] * n)
    types = obj.get("token_type_ids", [0] * n)
    for key, vals in (("attention_mask", mask), ("token_type_ids", types)):
        if len(vals) != n:
            raise DataError(f"{where}: '{key}' has {len(vals)} entries, input_ids {n}")
    V, T, C = cfg["vocab_size"], cfg["type_vocab_size"], cfg["num_classes"]
    if any(not 0 <= t < V for t in ids):
        raise DataError(f"{where}: an input id is outside [0, vocab_size={V})")
    if any(not 0 <= t < T for t in types):
        raise DataError(f"{where}: a token type is outside [0, type_vocab_size={T})")
    if any(m not in (0, 1) for m in mask):
        raise DataError(f"{where}: attention_mask entries must be 0 or 1")
    label = obj["label"]
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < C:
        raise DataError(f"{where}: label {label!r} is outside [0, num_classes={C})")
    pad = S - n
    return (
        list(ids) + [0] * pad,
        list(mask) + [0] * pad,
        list(types) + [0] * pad,
        label,
    )


def make_batch(rows, indices):
    """Tensors (input_ids, attention_mask, token_type_ids, labels) for rows[indices]."""
    sel = [rows[i] for i in indices]
    return (
        torch.tensor([r[0] for r in sel], dtype=torch.long),
        torch.tensor([r[1] for r in sel], dtype=torch.long),
        torch.tensor([r[2] for r in sel], dtype=torch.long),
        torch.tensor([r[3] for r in sel], dtype=torch.long),
    )

