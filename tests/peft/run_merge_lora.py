#!/usr/bin/python3
"""LoRA merge_weights and galaxy-run --save-merged (issue 5).

  run_merge_lora.py BUILD_DIR

From one init with non-zero LoRA factors (bert_torch.py init):
  - eval logits of a merge_weights plan equal the unmerged plan's (1e-5), for [out, in]
    and fan_in_fan_out [in, out] base weights, serial and TP over 2 ranks;
  - after 3 training steps, --save-merged holds no lora_A/lora_B tensors, its base
    weights are W + (alpha/r)·B·A of the --save output (numpy), and a full-model plan
    (no LoRA) loading it gives the LoRA plan's eval logits (1e-5);
  - with 2 data-parallel ranks (rank 0 writes) --save-merged equals the numpy fold.
PEFT_WORKDIR=DIR keeps the files."""

import sys

import numpy as np

import peft_case
import peft_run_util as u
import tiny_case

ALL = ["query", "key", "value", "attention_output", "intermediate", "output"]


def fold(weights, cfg):
    s = cfg["lora_alpha"] / cfg["lora_dim"]
    out = {}
    for name, w in weights.items():
        if ".lora_" in name:
            continue
        mod = name[: -len(".weight")]
        a = weights.get(mod + ".lora_A.weight")
        if a is not None:
            d = s * (weights[mod + ".lora_B.weight"] @ a)
            w = w + (d.T if cfg.get("fan_in_fan_out") else d)
        out[name] = w
    return out


def check_merged_file(what, path, reference):
    got = u.load(path)
    lora = [k for k in got if ".lora_" in k]
    if lora:
        raise u.Failed(f"{what}: --save-merged kept LoRA tensors {lora[:3]}")
    if sorted(got) != sorted(reference):
        raise u.Failed(f"{what}: tensor names differ: {sorted(set(got) ^ set(reference))[:5]}")
    for k in reference:
        u.close(f"{what} {k}", got[k], reference[k], atol=1e-6)


def test():
    c = u.Case(sys.argv[1], "merge-lora")
    c.data()
    lora = {**peft_case.config("lora", "sgd"), "lora_target_modules": ALL,
            "tp_num_attention_heads_list": [1, 1], "tp_intermediate_size_list": [96, 32],
            "dp_batch_list": [3, 1]}
    fan = {**lora, "fan_in_fan_out": True}
    cfgs = {
        "lora": lora,
        "lora_merged": {**lora, "merge_weights": True},
        "fan": fan,
        "fan_merged": {**fan, "merge_weights": True},
        "full": {**tiny_case.config("sgd"), "full_model": True},
    }
    paths = {k: c.config(k, v) for k, v in cfgs.items()}
    init = c.init(paths["lora"], "init.safetensors")
    init_fan = c.init(paths["fan"], "init_fan.safetensors")
    ev = ["--eval", c.p("eval.jsonl")]

    # merge_weights changes eval_step only: same logits from the same weights.
    for base, ini in (("lora", init), ("fan", init_fan)):
        for name in (base, base + "_merged"):
            plan = c.compile(paths[name], name + ".plan")
            c.galaxy(plan, "--init", ini, *ev, "--eval-out", c.p(name + ".eval.json"))
        u.close(f"{base}: merged vs unmerged eval logits", u.logits(c.p(base + "_merged.eval.json")),
                u.logits(c.p(base + ".eval.json")), atol=1e-5)
    plan = c.compile(paths["lora_merged"], "lora_merged_tp.plan", "tp", 2)
    c.galaxy(plan, "--init", init, *ev, "--eval-out", c.p("tp.eval.json"), world=2)
    u.close("TP w2 merged vs serial unmerged eval logits", u.logits(c.p("tp.eval.json")),
            u.logits(c.p("lora.eval.json")), atol=1e-5)

    # Train, export merged, load into a plan without LoRA.
    c.galaxy(c.p("lora.plan"), "--init", init, "--data", c.p("train.jsonl"), "--steps", "3",
             "--save", c.p("trained.safetensors"), "--save-merged", c.p("merged.safetensors"),
             *ev, "--eval-out", c.p("trained.eval.json"))
    check_merged_file("serial", c.p("merged.safetensors"),
                      fold(u.load(c.p("trained.safetensors")), lora))
    full = c.compile(paths["full"], "full.plan")
    c.galaxy(full, "--init", c.p("merged.safetensors"), *ev, "--eval-out", c.p("full.eval.json"))
    u.close("full-model plan on --save-merged vs LoRA plan eval logits",
            u.logits(c.p("full.eval.json")), u.logits(c.p("trained.eval.json")), atol=1e-5)

    # Two data-parallel ranks: gathered, folded and written once.
    dp = c.compile(paths["lora"], "lora_dp.plan", "dp", 2)
    c.galaxy(dp, "--init", init, "--eval", c.p("eval.jsonl"), "--save-merged",
             c.p("merged_dp.safetensors"), world=2)
    check_merged_file("dp w2", c.p("merged_dp.safetensors"), fold(u.load(init), lora))
    if not np.isfinite(u.logits(c.p("full.eval.json"))).all():
        raise u.Failed("non-finite logits")


if __name__ == "__main__":
    sys.exit(u.main(test))
