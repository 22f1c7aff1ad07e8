#!/usr/bin/env python3
"""Cross-checks Galaxy's static profile against DeepSpeed's flops profiler.

Runs DeepSpeed's FlopsProfiler on Hugging Face's BertForSequenceClassification at the
shapes of the Galaxy JSON (`galaxyc CONFIG --mode serial --profile-json FILE`), once
per attention implementation, and prints every figure side by side. Each difference
must equal the one docs/profiler.md explains, derived here from the shapes alone;
any other difference fails the run (exit 1).
"""
import argparse
import json
import sys


def galaxy_figures(path):
    with open(path) as f:
        prof = json.load(f)
    if prof["world"] != 1:
        sys.exit(f"{path}: world {prof['world']}; profile the serial plan "
                 "(galaxyc CONFIG --mode serial --world 1 --profile-json FILE)")
    rank = prof["ranks"][0]
    model = rank["tree"][0]
    groups = {c["name"]: c for c in model["children"]}

    def fwd(node):
        return node["forward"]["flops"], node["forward"]["macs"]

    layer0 = groups["layer.0"]
    return {
        "params": rank["params"]["total"],
        "model": fwd(model),
        "embeddings": fwd(groups["embedding"]),
        "layer.0": fwd(layer0),
        "pooler": fwd(groups["pooler"]),
        "head": fwd(groups["head"]),
        "backward_flops": rank["backward"]["flops"],
        "backward_macs": rank["backward"]["macs"],
    }, prof


def deepspeed_figures(shapes, attn):
    import torch
    from deepspeed.profiling.flops_profiler.profiler import (FlopsProfiler, get_module_flops,
                                                             get_module_macs)
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=shapes["V"], hidden_size=shapes["H"],
                     num_hidden_layers=shapes["L"], num_attention_heads=shapes["NH"],
                     intermediate_size=shapes["I"], max_position_embeddings=512,
                     type_vocab_size=2, num_labels=shapes["C"], attn_implementation=attn)
    model = BertForSequenceClassification(cfg).train()
    B, S = shapes["B"], shapes["S"]
    batch = {
        "input_ids": torch.randint(1, shapes["V"], (B, S)),
        "attention_mask": torch.ones(B, S, dtype=torch.long),
        "token_type_ids": torch.zeros(B, S, dtype=torch.long),
        "labels": torch.randint(0, shapes["C"], (B,)),
    }
    prof = FlopsProfiler(model)
    prof.start_profile()
    model(**batch)
    bert = model.bert

    def fwd(m):
        return get_module_flops(m), get_module_macs(m)

    figures = {
        "params": prof.get_total_params(),
        "model": (prof.get_total_flops(), prof.get_total_macs()),
        "embeddings": fwd(bert.embeddings),
        "layer.0": fwd(bert.encoder.layer[0]),
        "pooler": fwd(bert.pooler),
        "head": fwd(model.classifier),
    }
    prof.end_profile()
    return figures


def expected_differences(s, attn):
    """Galaxy minus DeepSpeed, per figure, as (flops, macs, reasons)."""
    B, S, H, I, L, NH, C = (s[k] for k in ("B", "S", "H", "I", "L", "NH", "C"))
    act = B * S * H
    layer_flops = 2 * act + B * S * I
    layer_reasons = ["residual adds: Galaxy counts 2 x B*S*H per layer; HF uses `+`, "
                     "which DeepSpeed does not patch",
                     "GELU: HF's GELUActivation stores F.gelu when the model is built, "
                     "before DeepSpeed patches it, so DeepSpeed counts 0 (Galaxy: B*S*I)"]
    if attn == "sdpa":
        layer_flops += B * NH * S * S  # softmax inside F.scaled_dot_product_attention
        layer_reasons.append("softmax: DeepSpeed's SDPA rule counts the two matmuls only")
    return {
        "params": (0, 0, []),
        "embeddings": (2 * act, 0, ["embedding sum: Galaxy counts 2 adds x B*S*H; HF uses `+`"]),
        "layer.0": (layer_flops, 0, layer_reasons),
        "pooler": (B * H, 0, ["tanh: Galaxy 1/element; nn.Tanh calls torch.tanh, not patched"]),
        "head": (B * C, 0, ["cross-entropy: Galaxy 1/logit; F.cross_entropy is not patched"]),
        "model": (2 * act + L * layer_flops + B * H + B * C, 0, ["sum of the rows above"]),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--galaxy-json", required=True)
    ap.add_argument("--config", required=True, help="the config galaxyc profiled")
    ap.add_argument("--attn", nargs="+", default=["eager", "sdpa"])
    args = ap.parse_args()

    g, gprof = galaxy_figures(args.galaxy_json)
    with open(args.config) as f:
        c = json.load(f)
    shapes = {"V": c.get("vocab_size", 21128), "H": c.get("hidden_size", 768),
              "L": c.get("num_hidden_layers", 12), "NH": c.get("num_attention_heads", 12),
              "I": c.get("intermediate_size", 3072), "C": c.get("num_classes", 10),
              "B": gprof["batch"], "S": gprof["seq"]}
    print("shapes:", shapes)
    ok = True
    for attn in args.attn:
        d = deepspeed_figures(shapes, attn)
        exp = expected_differences(shapes, attn)
        print(f"\n=== attn_implementation={attn} ===")
        print(f"{'figure':<12} {'Galaxy':>16} {'DeepSpeed':>16} {'difference':>14}  explained")
        for key in ("params", "embeddings", "layer.0", "pooler", "head", "model"):
            if key == "params":
                rows = [("params", g["params"], d["params"], exp[key][0])]
            else:
                rows = [(f"{key} FLOPs", g[key][0], d[key][0], exp[key][0]),
                        (f"{key} MACs", g[key][1], d[key][1], exp[key][1])]
            for name, gv, dv, want in rows:
                diff = gv - dv
                good = diff == want
                ok &= good
                print(f"{name:<18} {gv:>16,} {dv:>16,} {diff:>14,}  "
                      f"{'yes' if good else 'NO (expected ' + format(want, ',') + ')'}")
            for reason in exp[key][2]:
                print(f"{'':<18} - {reason}")
        print(f"backward (Galaxy only; DeepSpeed profiles forward): {g['backward_flops']:,} "
              f"FLOPs = {g['backward_flops'] / g['model'][0]:.3f} x forward; GEMM MACs "
              f"{g['backward_macs']:,} = {g['backward_macs'] / g['model'][1]:.3f} x forward")
    print("\nall differences explained" if ok else "\nUNEXPLAINED DIFFERENCES (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
