"""Hugging Face's softmax against galaxy-run --predict (run by predict_equiv.py --hf).

  predict_hf.py CONFIG.json WEIGHTS.safetensors ROWS.jsonl PREDICT.jsonl ATOL

Builds BertForSequenceClassification or LlamaForSequenceClassification (eager attention)
from the Galaxy config, loads the weights, runs the rows (padded to pad_size with the pad
id, mask 0 there; BERT's token_type_ids as given) in eval mode and compares
softmax(logits) and argmax with each output row. Exit 0 equal, 1 different.
"""

import json
import sys

import torch
import transformers
from safetensors.torch import load_file


def model_for(cfg):
    common = dict(vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"],
                  num_hidden_layers=cfg["num_hidden_layers"],
                  num_attention_heads=cfg["num_attention_heads"],
                  intermediate_size=cfg["intermediate_size"],
                  max_position_embeddings=cfg["max_position_embeddings"],
                  pad_token_id=cfg.get("pad_token_id", 0), num_labels=cfg["num_classes"])
    if cfg["model_type"] == "bert":
        config = transformers.BertConfig(**common, hidden_act="gelu", hidden_dropout_prob=0.0,
                                         attention_probs_dropout_prob=0.0,
                                         classifier_dropout=0.0,
                                         layer_norm_eps=cfg.get("layer_norm_eps", 1e-12))
        config._attn_implementation = "eager"
        return transformers.BertForSequenceClassification(config)
    config = transformers.LlamaConfig(**common, num_key_value_heads=cfg["num_key_value_heads"],
                                      hidden_act="silu", rms_norm_eps=cfg["rms_norm_eps"],
                                      rope_theta=cfg["rope_theta"], attention_bias=False,
                                      mlp_bias=False, attention_dropout=0.0,
                                      tie_word_embeddings=False)
    config._attn_implementation = "eager"
    return transformers.LlamaForSequenceClassification(config)


def main():
    cfg_path, weights, rows_path, pred_path, atol = sys.argv[1:6]
    cfg = json.load(open(cfg_path))
    model = model_for(cfg)
    state = load_file(weights)
    missing, unexpected = model.load_state_dict(state, strict=False)
    buffers = {n for n, _ in model.named_buffers()}
    missing = [k for k in missing if k not in buffers]
    if missing or unexpected:
        print(f"predict_hf.py: weights do not fit: missing {missing[:4]}, extra {unexpected[:4]}")
        return 1
    model.eval()
    S, pad = cfg["pad_size"], cfg.get("pad_token_id", 0)
    rows = [json.loads(line) for line in open(rows_path) if line.strip()]
    preds = [json.loads(line) for line in open(pred_path)]
    ids, mask, types = [], [], []
    for r in rows:
        n = min(len(r["input_ids"]), S)
        m = r.get("attention_mask", [1] * len(r["input_ids"]))[:n]
        ids.append(r["input_ids"][:n] + [pad] * (S - n))
        mask.append(m + [0] * (S - n))
        types.append(r.get("token_type_ids", [0] * n)[:n] + [0] * (S - n))
    kwargs = dict(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask))
    if cfg["model_type"] == "bert":
        kwargs["token_type_ids"] = torch.tensor(types)
    with torch.no_grad():
        probs = torch.softmax(model(**kwargs).logits.double(), -1)
    diff = max(abs(p - q) for row, pr in zip(preds, probs.tolist())
               for p, q in zip(row["probs"], pr))
    labels_ok = [row["label"] for row in preds] == probs.argmax(-1).tolist()
    ok = diff <= float(atol) and labels_ok and len(preds) == len(rows)
    print(f"hugging face {cfg['model_type']}: max |probs - HF softmax| {diff:.2e}, "
          f"labels {'equal' if labels_ok else 'DIFFERENT'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
