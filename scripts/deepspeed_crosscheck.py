#!/usr/bin/env python3
"""Cross-checks Galaxy's static profile against DeepSpeed's flops profiler.

Runs DeepSpeed's FlopsProfiler on Hugging Face's BertForSequenceClassification (or, for a
config with model_type "bart", BartForConditionalGeneration) at the shapes of the Galaxy
JSON (`galaxyc CONFIG --mode serial --profile-json FILE`), once per attention
implementation, and prints every figure side by side. Each difference
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


def bart_galaxy_figures(prof):
    """BART's tree: embedding (encoder and decoder), layer.0 (encoder layer 0),
    layer.E (decoder layer 0, E = encoder layers), head (lm_head and loss)."""
    rank = prof["ranks"][0]
    model = rank["tree"][0]
    groups = {c["name"]: c for c in model["children"]}

    def fwd(node):
        return node["forward"]["flops"], node["forward"]["macs"]

    layers = sorted((c for c in groups if c.startswith("layer.")), key=lambda n: int(n[6:]))
    return {
        "params": rank["params"]["total"],
        "params (trainable)": rank["params"]["trainable"],
        "model": fwd(model),
        "embeddings": fwd(groups["embedding"]),
        "encoder layer": fwd(groups["layer.0"]),
        "decoder layer": fwd(groups[layers[len(layers) // 2]]),
        "head": fwd(groups["head"]),
        "backward_flops": rank["backward"]["flops"],
        "backward_macs": rank["backward"]["macs"],
    }


def bart_shapes(c, prof):
    return {"V": c.get("vocab_size", 50265), "H": c.get("d_model", 1024),
            "E": c.get("encoder_layers", 12), "D": c.get("decoder_layers", 12),
            "NE": c.get("encoder_attention_heads", 16),
            "ND": c.get("decoder_attention_heads", 16),
            "IE": c.get("encoder_ffn_dim", 4096), "ID": c.get("decoder_ffn_dim", 4096),
            "P": c.get("max_position_embeddings", 1024), "B": prof["batch"], "S": prof["seq"],
            "T": c.get("target_pad_size", prof["seq"]),
            "scale_embedding": c.get("scale_embedding", False),
            "act": c.get("activation_function", "gelu")}


def bart_deepspeed_figures(s, attn):
    import torch
    from deepspeed.profiling.flops_profiler.profiler import (FlopsProfiler, get_module_flops,
                                                             get_module_macs)
    from transformers import BartConfig, BartForConditionalGeneration

    torch.manual_seed(0)
    cfg = BartConfig(vocab_size=s["V"], d_model=s["H"], encoder_layers=s["E"],
                     decoder_layers=s["D"], encoder_attention_heads=s["NE"],
                     decoder_attention_heads=s["ND"], encoder_ffn_dim=s["IE"],
                     decoder_ffn_dim=s["ID"], max_position_embeddings=s["P"],
                     activation_function=s["act"], scale_embedding=s["scale_embedding"],
                     attn_implementation=attn)
    model = BartForConditionalGeneration(cfg).train()
    B, S, T = s["B"], s["S"], s["T"]
    batch = {"input_ids": torch.randint(3, s["V"], (B, S)),
             "attention_mask": torch.ones(B, S, dtype=torch.long),
             "labels": torch.randint(3, s["V"], (B, T))}
    prof = FlopsProfiler(model)
    prof.start_profile()
    model(**batch)
    m = model.model

    def fwd(*mods):
        return (sum(get_module_flops(x) for x in mods), sum(get_module_macs(x) for x in mods))

    figures = {
        "params": prof.get_total_params(),
        "params (trainable)": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "model": (prof.get_total_flops(), prof.get_total_macs()),
        "embeddings": fwd(*(x for part in (m.encoder, m.decoder) for x in (
            part.embed_tokens, part.embed_positions, part.layernorm_embedding))),
        "encoder layer": fwd(m.encoder.layers[0]),
        "decoder layer": fwd(m.decoder.layers[0]),
        "head": fwd(model.lm_head),
    }
    prof.end_profile()
    return figures


def bart_expected_differences(s, attn):
    """Galaxy minus DeepSpeed for BART, per figure, as (flops, macs, reasons)."""
    B, S, T, H, V = s["B"], s["S"], s["T"], s["H"], s["V"]
    enc = 2 * B * S * H + B * S * s["IE"]
    dec = 3 * B * T * H + B * T * s["ID"]
    reasons = ["residual adds: Galaxy counts B*len*H per residual (2 per encoder layer, "
               "3 per decoder layer); HF uses `+`, which DeepSpeed does not patch",
               "GELU: HF's activation module stores F.gelu when the model is built, before "
               "DeepSpeed patches it, so DeepSpeed counts 0 (Galaxy: B*len*ffn_dim)"]
    if s["act"] != "gelu":
        sys.exit("the BART cross-check derives its differences for activation_function gelu")
    if attn == "sdpa":
        enc += B * s["NE"] * S * S
        dec += B * s["ND"] * (T * T + T * S)
        reasons = reasons + ["softmax: DeepSpeed's SDPA rule counts the two matmuls only "
                             "(Galaxy: 1/score, self- and cross-attention)"]
    scale = B * (S + T) * H if s["scale_embedding"] else 0
    emb = B * (S + T) * H + scale
    emb_reasons = ["embedding sums: Galaxy counts the token + position add of the encoder "
                   "and the decoder, B*(S+T)*H; HF uses `+`"]
    if scale:
        emb_reasons.append("embed_scale: Galaxy's scale op, B*(S+T)*H; HF uses `*`")
    head = B * T * V
    # The lm_head module itself: Galaxy's head also holds the loss (B*T*V, one per logit),
    # which F.cross_entropy, unpatched, leaves out of DeepSpeed's figures.
    return {
        "params": (V, 0, ["final_logits_bias: a buffer in HF (saved, not a Parameter); a "
                          "frozen parameter in Galaxy"]),
        "params (trainable)": (0, 0, []),
        "embeddings": (emb, 0, emb_reasons),
        "encoder layer": (enc, 0, reasons),
        "decoder layer": (dec, 0, reasons),
        "head": (head, 0, ["cross-entropy: Galaxy 1/logit; F.cross_entropy is not patched "
                           "(the final_logits_bias add is a `+` in HF and a linear bias, "
                           "uncounted, in Galaxy)"]),
        "model": (emb + s["E"] * enc + s["D"] * dec + head, 0, ["sum of the rows above"]),
    }


def bart_main(args, gprof, c):
    g = bart_galaxy_figures(gprof)
    shapes = bart_shapes(c, gprof)
    print("shapes:", shapes)
    ok = True
    keys = ("params", "params (trainable)", "embeddings", "encoder layer", "decoder layer",
            "head", "model")
    for attn in args.attn:
        d = bart_deepspeed_figures(shapes, attn)
        exp = bart_expected_differences(shapes, attn)
        print(f"\n=== attn_implementation={attn} ===")
        print(f"{'figure':<22} {'Galaxy':>16} {'DeepSpeed':>16} {'difference':>14}  explained")
        for key in keys:
            if key.startswith("params"):
                rows = [(key, g[key], d[key], exp[key][0])]
            else:
                rows = [(f"{key} FLOPs", g[key][0], d[key][0], exp[key][0]),
                        (f"{key} MACs", g[key][1], d[key][1], exp[key][1])]
            for name, gv, dv, want in rows:
                diff = gv - dv
                good = diff == want
                ok &= good
                print(f"{name:<22} {gv:>16,} {dv:>16,} {diff:>14,}  "
                      f"{'yes' if good else 'NO (expected ' + format(want, ',') + ')'}")
            for reason in exp[key][2]:
                print(f"{'':<22} - {reason}")
        print(f"backward (Galaxy only; DeepSpeed profiles forward): {g['backward_flops']:,} "
              f"FLOPs = {g['backward_flops'] / g['model'][0]:.3f} x forward; GEMM MACs "
              f"{g['backward_macs']:,} = {g['backward_macs'] / g['model'][1]:.3f} x forward")
    print("\nall differences explained" if ok else "\nUNEXPLAINED DIFFERENCES (see above)")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--galaxy-json", required=True)
    ap.add_argument("--config", required=True, help="the config galaxyc profiled")
    ap.add_argument("--attn", nargs="+", default=["eager", "sdpa"])
    args = ap.parse_args()

    with open(args.config) as f:
        c = json.load(f)
    if c.get("model_type") == "bart":
        with open(args.galaxy_json) as f:
            gprof = json.load(f)
        if gprof["world"] != 1:
            sys.exit(f"{args.galaxy_json}: world {gprof['world']}; profile the serial plan")
        return bart_main(args, gprof, c)
    g, gprof = galaxy_figures(args.galaxy_json)
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
