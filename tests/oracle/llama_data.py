"""JSONL data for the LLaMA oracle, right-padded with pad_token_id to pad_size.

Row: {"input_ids": [...], "attention_mask": [...], "labels": [...], "label": k}.
attention_mask defaults to 1s. Causal LM: "labels" (same length as input_ids, ids or
-100) defaults to input_ids; every position whose mask is 0, and the padding, becomes
-100 (ignored); the model shifts by one (position s predicts labels[s + 1]).
Classification: "label" in [0, num_classes); the model reads the last position whose
input id is not pad_token_id.
"""

import torch

from oracle_common import DataError, load_jsonl_rows, step_indices  # noqa: F401

IGNORE_INDEX = -100


def load_rows(path, cfg):
    """Parses and validates every row; returns a list of (ids, mask, labels, label)
    padded to pad_size (labels is None for classification, label None for causal LM)."""
    return load_jsonl_rows(path, cfg, _parse_row)


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _parse_row(obj, cfg, where):
    if not isinstance(obj, dict) or "input_ids" not in obj:
        raise DataError(f"{where}: a row needs 'input_ids'")
    ids = obj["input_ids"]
    n, S, V, pad = len(ids), cfg["pad_size"], cfg["vocab_size"], cfg["pad_token_id"]
    if n == 0 or n > S:
        raise DataError(f"{where}: {n} tokens; rows need 1..pad_size={S} tokens")
    if any(not _is_int(t) or not 0 <= t < V for t in ids):
        raise DataError(f"{where}: an input id is outside [0, vocab_size={V})")
    mask = obj.get("attention_mask", [1] * n)
    if len(mask) != n:
        raise DataError(f"{where}: 'attention_mask' has {len(mask)} entries, input_ids {n}")
    if any(m not in (0, 1) for m in mask):
        raise DataError(f"{where}: attention_mask entries must be 0 or 1")
    padded_ids = list(ids) + [pad] * (S - n)
    padded_mask = list(mask) + [0] * (S - n)

    if cfg["task"] == "classification":
        label = obj.get("label")
        C = cfg["num_classes"]
        if not _is_int(label) or not 0 <= label < C:
            raise DataError(f"{where}: label {label!r} is outside [0, num_classes={C})")
        if all(t == pad for t in ids):
            raise DataError(f"{where}: every input id is pad_token_id; nothing to classify")
        return padded_ids, padded_mask, None, label

    labels = obj.get("labels", ids)
    if len(labels) != n:
        raise DataError(f"{where}: 'labels' has {len(labels)} entries, input_ids {n}")
    if any(not _is_int(t) or not (0 <= t < V or t == IGNORE_INDEX) for t in labels):
        raise DataError(f"{where}: a label is neither -100 nor in [0, vocab_size={V})")
    labels = [t if m else IGNORE_INDEX for t, m in zip(labels, mask)]
    labels += [IGNORE_INDEX] * (S - n)
    return padded_ids, padded_mask, labels, None


def make_batch(rows, indices):
    """Tensors (input_ids, attention_mask, labels) for rows[indices]: labels [B, S] for
    causal LM, [B] for classification."""
    sel = [rows[i] for i in indices]
    ids = torch.tensor([r[0] for r in sel], dtype=torch.long)
    mask = torch.tensor([r[1] for r in sel], dtype=torch.long)
    if sel[0][2] is not None:
        labels = torch.tensor([r[2] for r in sel], dtype=torch.long)
    else:
        labels = torch.tensor([r[3] for r in sel], dtype=torch.long)
    return ids, mask, labels

