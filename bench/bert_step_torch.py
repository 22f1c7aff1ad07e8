#!/usr/bin/env python3
"""PyTorch baseline for bench/bert_step.sh: the BERT training step in plain torch.

  bert_step_torch.py CONFIG DATA.jsonl --steps N --warmup W [--threads 2] [--autocast-bf16]

Same model as Galaxy's plan (tests/oracle/bert_model.py's parameters and layout) with
dropout where Hugging Face's BertForSequenceClassification has it (embeddings, attention
probabilities, attention output, MLP output, classifier input) and the config's optimizer.
--autocast-bf16 runs forward and loss under torch.autocast("cpu", dtype=torch.bfloat16)
(bf16 matmuls, fp32 master weights), the counterpart of a Galaxy bf16 plan.
Prints one JSON line: torch version, threads, every step time and the median after warm-up.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tests", "oracle"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import bert_config  # noqa: E402
import bert_data  # noqa: E402
import bert_model  # noqa: E402


def forward(cfg, p, ids, mask, types, training=True):
    B, S = ids.shape
    H, n = cfg["hidden_size"], cfg["num_attention_heads"]
    d = H // n
    eps = cfg["layer_norm_eps"]
    ph = cfg["hidden_dropout_prob"]
    pa = cfg["attention_probs_dropout_prob"]

    def drop(t, prob):
        return F.dropout(t, prob, training)

    def lin(t, name):
        return F.linear(t, p[name + ".weight"], p[name + ".bias"])

    def ln(t, name):
        return F.layer_norm(t, (H,), p[name + ".weight"], p[name + ".bias"], eps)

    x = (
        F.embedding(ids, p["bert.embeddings.word_embeddings.weight"],
                    padding_idx=cfg["pad_token_id"])
        + p["bert.embeddings.position_embeddings.weight"][:S].unsqueeze(0)
        + p["bert.embeddings.token_type_embeddings.weight"][types]
    )
    x = drop(ln(x, "bert.embeddings.LayerNorm"), ph)
    add_mask = (1.0 - mask.to(torch.float32))[:, None, None, :] * -10000.0

    def heads(t):
        return t.view(B, S, n, d).transpose(1, 2)

    for i in range(cfg["num_hidden_layers"]):
        pre = f"bert.encoder.layer.{i}."
        q = heads(lin(x, pre + "attention.self.query"))
        k = heads(lin(x, pre + "attention.self.key"))
        v = heads(lin(x, pre + "attention.self.value"))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d) + add_mask
        probs = drop(torch.softmax(scores, dim=-1), pa)
        ctx = torch.matmul(probs, v).transpose(1, 2).reshape(B, S, H)
        att = drop(lin(ctx, pre + "attention.output.dense"), ph)
        h1 = ln(att + x, pre + "attention.output.LayerNorm")
        mid = F.gelu(lin(h1, pre + "intermediate.dense"))
        mlp = drop(lin(mid, pre + "output.dense"), ph)
        x = ln(mlp + h1, pre + "output.LayerNorm")
    pooled = torch.tanh(lin(x[:, 0], "bert.pooler.dense"))
    return lin(drop(pooled, ph), "classifier")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("config")
    ap.add_argument("data")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--autocast-bf16", action="store_true")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = bert_config.load_config(args.config)
    params = bert_model.init_params(cfg, cfg["seed"])
    for t in params.values():
        t.requires_grad_(True)
    lr = cfg["learning_rate"]
    if cfg["optimizer"] == "adamw":
        opt = torch.optim.AdamW(list(params.values()), lr=lr,
                                weight_decay=cfg["weight_decay"])
    else:
        opt = torch.optim.SGD(list(params.values()), lr=lr,
                              weight_decay=cfg["weight_decay"])
    rows = bert_data.load_rows(args.data, cfg)
    B = cfg["batch_size"]
    times, losses = [], []
    for s in range(args.warmup + args.steps):
        ids, mask, types, labels = bert_data.make_batch(
            rows, bert_data.step_indices(s, B, len(rows)))
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.autocast_bf16):
            loss = F.cross_entropy(forward(cfg, params, ids, mask, types), labels)
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
        losses.append(loss.item())
    timed = times[args.warmup:]
    print(json.dumps({
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "autocast_bf16": args.autocast_bf16,
        "step_s": timed,
        "median_s": statistics.median(timed),
        "last_loss": losses[-1],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
