#!/usr/bin/python3
"""galaxy-run --save-adapter / --init-adapter: PEFT adapter folders (issue 14).

  run_peft_adapter.py BUILD_DIR

- --save-adapter after 3 steps writes PEFT's layout: adapter_config.json (peft_type
  LORA, r, lora_alpha, target_modules, task_type SEQ_CLS, modules_to_save classifier)
  and adapter_model.safetensors holding exactly base_model.model.<LoRA factor or
  classifier tensor>, equal to the --save output;
- round trip: --init BASE (no LoRA factors, no classifier) --init-adapter DIR trains
  with the same losses and eval logits as --init of the full save;
- target_modules tell the MLP's output.dense from the attention's;
- two data-parallel ranks and two pipeline stages write the same folder as one rank
  (1e-6), and the stages train from it with serial's losses;
- refusals (exit 2, naming the key and the fix): another r, other targets, a missing
  or misshapen tensor, another task_type, --init-adapter without --init,
  --save-adapter on a plan without LoRA or onto a file.
The real PEFT check (PeftModel.from_pretrained) is scripts/peft_check.sh.
PEFT_WORKDIR=DIR keeps the files."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np

import peft_case
import peft_run_util as u
import safetensors_io
import tiny_case

PREFIX = "base_model.model."


def metrics(path):
    with open(path) as f:
        return [json.loads(line)["loss"] for line in f]


def refused(c, what, cmd, *needles):
    print("+ " + " ".join(cmd), flush=True)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 2:
        raise u.Failed(f"{what}: exit {r.returncode}, expected 2:\n{r.stdout[-2000:]}")
    for n in needles:
        if n not in r.stdout:
            raise u.Failed(f"{what}: the message does not say {n!r}:\n{r.stdout[-2000:]}")
    print(f"  refused: {r.stdout.strip().splitlines()[-1][:160]}")


def copy_adapter(src, dst, edit_config=None, edit_tensors=None):
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    if edit_config:
        with open(os.path.join(dst, "adapter_config.json")) as f:
            cfg = json.load(f)
        edit_config(cfg)
        with open(os.path.join(dst, "adapter_config.json"), "w") as f:
            json.dump(cfg, f)
    if edit_tensors:
        path = os.path.join(dst, "adapter_model.safetensors")
        t = safetensors_io.load(path)
        edit_tensors(t)
        safetensors_io.save(path, t, {"format": "pt"})
    return dst


def test():
    c = u.Case(sys.argv[1], "peft-adapter")
    c.data()
    lora = peft_case.config("lora", "sgd")
    paths = {
        "lora": c.config("lora", lora),
        "r8": c.config("r8", {**lora, "lora_dim": 8}),
        "qkv": c.config("qkv", {**lora, "lora_target_modules": ["query", "key", "value"]}),
        "mlp": c.config("mlp", {**lora, "lora_target_modules": ["output", "attention_output"]}),
        "mlp_only": c.config("mlp_only", {**lora, "lora_target_modules": ["output"]}),
        "full": c.config("full", {**tiny_case.config("sgd"), "full_model": True}),
    }
    plans = {k: c.compile(v, k + ".plan") for k, v in paths.items()}
    init = c.init(paths["lora"], "init.safetensors")
    data = ["--data", c.p("train.jsonl")]
    ev = ["--eval", c.p("eval.jsonl")]

    # Train, save both ways.
    c.galaxy(plans["lora"], "--init", init, *data, "--steps", "3", "--save",
             c.p("trained.safetensors"), "--save-adapter", c.p("adapter"), *ev,
             "--eval-out", c.p("trained.eval.json"))
    with open(c.p("adapter/adapter_config.json")) as f:
        cfg = json.load(f)
    want = {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "lora_dropout": 0.0,
            "bias": "none", "fan_in_fan_out": False, "task_type": "SEQ_CLS",
            "target_modules": ["query", "value"], "modules_to_save": ["classifier"],
            "use_rslora": False, "use_dora": False}
    for k, v in want.items():
        if cfg.get(k) != v:
            raise u.Failed(f"adapter_config.json: {k} is {cfg.get(k)!r}, expected {v!r}")
    trained = u.load(c.p("trained.safetensors"))
    adapter = u.load(c.p("adapter/adapter_model.safetensors"))
    expect = {PREFIX + k: v for k, v in trained.items()
              if ".lora_" in k or k.startswith("classifier.")}
    if sorted(adapter) != sorted(expect):
        raise u.Failed(f"adapter tensors {sorted(adapter)[:4]}... differ from "
                       f"{sorted(expect)[:4]}...: {sorted(set(adapter) ^ set(expect))[:4]}")
    for k in expect:
        if not np.array_equal(adapter[k], expect[k]):
            raise u.Failed(f"{k} differs from the --save output")
    lora_a = [k for k in adapter if k.endswith("query.lora_A.weight")][0]
    if adapter[lora_a].shape != (4, 64):
        raise u.Failed(f"{lora_a} is {adapter[lora_a].shape}, PEFT's lora_A is [r, in]")
    print(f"adapter: {len(adapter)} tensors, config as PEFT writes it")

    # Round trip: base without LoRA or head + adapter == the full save.
    safetensors_io.save(c.p("base.safetensors"),
                        {k: v for k, v in safetensors_io.load(c.p("trained.safetensors")).items()
                         if ".lora_" not in k and not k.startswith("classifier.")})
    c.galaxy(plans["lora"], "--init", c.p("base.safetensors"), "--init-adapter",
             c.p("adapter"), *data, "--steps", "3", "--metrics", c.p("m_adapter.jsonl"),
             *ev, "--eval-out", c.p("adapter.eval.json"))
    c.galaxy(plans["lora"], "--init", c.p("trained.safetensors"), *data, "--steps", "3",
             "--metrics", c.p("m_full.jsonl"), *ev, "--eval-out", c.p("full.eval.json"))
    la, lf = metrics(c.p("m_adapter.jsonl")), metrics(c.p("m_full.jsonl"))
    if la != lf:
        raise u.Failed(f"losses from the adapter {la} differ from the full save's {lf}")
    u.close("eval logits, adapter vs full save", u.logits(c.p("adapter.eval.json")),
            u.logits(c.p("full.eval.json")), atol=0)
    print(f"round trip: same losses {la}")
    # The adapter wins over LoRA factors in --init too (the init's own differ).
    c.galaxy(plans["lora"], "--init", init, "--init-adapter", c.p("adapter"), *ev,
             "--eval-out", c.p("over.eval.json"))
    u.close("eval logits, adapter over init vs full save", u.logits(c.p("over.eval.json")),
            u.logits(c.p("trained.eval.json")), atol=0)

    # target_modules that PEFT resolves to exactly the plan's modules.
    for name, targets in (("mlp", ["output.dense"]),
                          ("mlp_only", ["0.output.dense", "1.output.dense"])):
        c.galaxy(plans[name], "--init", c.init(paths[name], name + ".init.safetensors"),
                 *ev, "--save-adapter", c.p(name + "_adapter"))
        with open(c.p(name + "_adapter/adapter_config.json")) as f:
            got = json.load(f)["target_modules"]
        if got != targets:
            raise u.Failed(f"{name}: target_modules {got}, expected {targets}")
    print("target_modules: output.dense / per-layer 0.output.dense as PEFT needs")

    # Two data-parallel ranks: gathered and written once, like one rank.
    dp = c.compile(paths["lora"], "lora_dp.plan", "dp", 2)
    c.galaxy(dp, "--init", init, *data, "--steps", "3", "--save-adapter",
             c.p("adapter_dp"), world=2)
    got = u.load(c.p("adapter_dp/adapter_model.safetensors"))
    if sorted(got) != sorted(adapter):
        raise u.Failed("dp w2 adapter holds other tensors")
    for k in adapter:
        u.close(f"dp w2 {k}", got[k], adapter[k], atol=1e-6)

    # Two pipeline stages: every stage's share gathered into one folder (the
    # task head lives on the last stage), and read back by both stages.
    pp = c.compile(c.config("pp", {**lora, "parallel_mode": "pp",
                                   "stage_num_hidden_layers_list": [1, 1]}), "pp.plan",
                   "pp", 2)
    c.galaxy(pp, "--init", init, *data, "--steps", "3", "--save-adapter",
             c.p("adapter_pp"), world=2)
    got = u.load(c.p("adapter_pp/adapter_model.safetensors"))
    if sorted(got) != sorted(adapter):
        raise u.Failed("pp adapter holds other tensors")
    for k in adapter:
        u.close(f"pp {k}", got[k], adapter[k], atol=1e-6)
    with open(c.p("adapter_pp/adapter_config.json")) as f:
        if json.load(f) != cfg:
            raise u.Failed("pp adapter_config.json differs from serial's")
    c.galaxy(pp, "--init", c.p("base.safetensors"), "--init-adapter", c.p("adapter"),
             *data, "--steps", "3", "--metrics", c.p("m_pp.jsonl"), world=2)
    u.close("pp losses from the adapter vs serial", metrics(c.p("m_pp.jsonl")), la,
            rtol=1e-5)

    # Refusals.
    run = [c.galaxy_run]
    base = ["--init", c.p("base.safetensors")]
    refused(c, "another r", [*run, plans["r8"], *base, "--init-adapter", c.p("adapter"), *ev],
            "r is 4", "lora_dim is 8", "compile the plan with lora_dim 4")
    refused(c, "other targets", [*run, plans["qkv"], *base, "--init-adapter",
                                 c.p("adapter"), *ev],
            "target_modules", "bert.encoder.layer.0.attention.self.key")
    bad = copy_adapter(c.p("adapter"), c.p("bad_targets"),
                       edit_config=lambda j: j.update(target_modules=["query", "value", "key"]))
    refused(c, "config targets more than the tensors",
            [*run, plans["lora"], *base, "--init-adapter", bad, *ev], "target_modules", "key")
    missing = PREFIX + "bert.encoder.layer.1.attention.self.value.lora_B.weight"
    bad = copy_adapter(c.p("adapter"), c.p("bad_missing"),
                       edit_tensors=lambda t: t.pop(missing))
    refused(c, "a missing tensor", [*run, plans["lora"], *base, "--init-adapter", bad, *ev],
            missing)
    bad = copy_adapter(c.p("adapter"), c.p("bad_shape"), edit_tensors=lambda t: t.update(
        {lora_a: np.zeros((4, 32), np.float32)}))
    refused(c, "a misshapen tensor", [*run, plans["lora"], *base, "--init-adapter", bad, *ev],
            lora_a, "[4, 32]", "[4, 64]")
    extra = PREFIX + "bert.encoder.layer.0.attention.self.key.lora_A.weight"
    bad = copy_adapter(c.p("adapter"), c.p("bad_extra"), edit_tensors=lambda t: t.update(
        {extra: np.zeros((4, 64), np.float32)}))
    refused(c, "an extra LoRA tensor", [*run, plans["lora"], *base, "--init-adapter", bad,
                                        *ev], extra, "no LoRA on")
    bad = copy_adapter(c.p("adapter"), c.p("bad_task"),
                       edit_config=lambda j: j.update(task_type="CAUSAL_LM"))
    refused(c, "another task", [*run, plans["lora"], *base, "--init-adapter", bad, *ev],
            "task_type is CAUSAL_LM")
    bad = copy_adapter(c.p("adapter"), c.p("bad_alpha"),
                       edit_config=lambda j: j.update(lora_alpha=16))
    refused(c, "another alpha", [*run, plans["lora"], *base, "--init-adapter", bad, *ev],
            "lora_alpha is 16")
    refused(c, "no --init", [*run, plans["lora"], "--init-adapter", c.p("adapter"), *ev],
            "--init FILE")
    refused(c, "a plan without LoRA", [*run, plans["full"], *ev, "--save-adapter",
                                       c.p("never")], "use_lora")
    refused(c, "onto a file", [*run, plans["lora"], "--init", init, *ev, "--save-adapter",
                               c.p("train.jsonl")], "is a file")
    if os.path.exists(c.p("never")):
        raise u.Failed("a refused --save-adapter created its folder")
    leftovers = [os.path.join(d, f) for d, _, files in os.walk(c.work) for f in files
                 if ".tmp" in f]
    if leftovers:
        raise u.Failed(f"temporary files left behind: {leftovers}")


if __name__ == "__main__":
    sys.exit(u.main(test))
