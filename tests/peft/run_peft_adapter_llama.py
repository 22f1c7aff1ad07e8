#!/usr/bin/python3
"""galaxy-run --save-adapter / --init-adapter for LLaMA (issue 14), no Hugging Face needed.

  run_peft_adapter_llama.py BUILD_DIR

The tiny LLaMA of tests/equiv/llama_case.py (GQA 8 query / 4 KV heads, padded rows),
LoRA on q/k/v/o_proj and gate/up/down_proj, for both tasks:
- the folder as PEFT writes it: task_type CAUSAL_LM (no modules_to_save) or SEQ_CLS
  (modules_to_save [score]), target_modules the seven LLaMA names, tensors exactly
  base_model.model.<LoRA factor or score.weight> of the --save output ([r, in] / [out, r],
  k_proj/v_proj at the KV width);
- round trip: --init BASE (no LoRA factors, no score) --init-adapter DIR trains with the
  losses (and eval logits) of --init of the full save;
- a folder that also holds embed_tokens (PEFT's modules_to_save after added tokens) is
  read with a warning that the plan keeps it frozen;
- a q_proj/v_proj plan writes target_modules [q_proj, v_proj] and refuses the seven-target
  folder; a folder of the other task is refused;
- two tensor-parallel ranks (KV heads split with their query groups) and two pipeline
  stages (score on the last) write serial's folder, and the stages train from it with
  serial's losses.
The check against transformers + PEFT themselves is scripts/peft_check.sh.
PEFT_WORKDIR=DIR keeps the files."""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "equiv"))

import numpy as np  # noqa: E402

import llama_case  # noqa: E402
import peft_run_util as u  # noqa: E402
import safetensors_io  # noqa: E402

PREFIX = "base_model.model."
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def refused(what, cmd, *needles):
    print("+ " + " ".join(cmd), flush=True)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 2:
        raise u.Failed(f"{what}: exit {r.returncode}, expected 2:\n{r.stdout[-2000:]}")
    for n in needles:
        if n not in r.stdout:
            raise u.Failed(f"{what}: the message does not say {n!r}:\n{r.stdout[-2000:]}")
    print(f"  refused: {r.stdout.strip().splitlines()[-1][:160]}")


def lora_config(task, targets=TARGETS):
    cfg = llama_case.config("sgd", task)
    cfg.update({"full_model": False, "use_lora": True, "lora_dim": 4, "lora_alpha": 8,
                "lora_dropout": 0.0, "lora_target_modules": targets})
    return cfg


def check_task(c, task, adapters):
    classify = task == "classification"
    t = "cls" if classify else "clm"
    p = lambda name: c.p(f"{t}.{name}")  # noqa: E731
    for name, n, seed in (("train.jsonl", 24, 1), ("eval.jsonl", 8, 2)):
        with open(p(name), "w") as f:
            for row in llama_case.rows(n, seed, task):
                f.write(json.dumps(row) + "\n")
    cfg = lora_config(task)
    plan = c.compile(c.config(t + ".lora", cfg), t + ".lora.plan")
    data = ["--data", p("train.jsonl")]
    ev = (lambda out: ["--eval", p("eval.jsonl"), "--eval-out", p(out)]) if classify else (
        lambda out: [])
    # Galaxy's seeded initial weights (lora_B zero), as a checkpoint.
    c.galaxy(plan, *data, "--steps", "0", "--seed", "3", "--save", p("init.safetensors"))

    c.galaxy(plan, "--init", p("init.safetensors"), *data, "--steps", "3", "--save",
             p("trained.safetensors"), "--save-adapter", p("adapter"), *ev("trained.eval.json"))
    adapters[task] = p("adapter")
    with open(p("adapter/adapter_config.json")) as f:
        written = json.load(f)
    want = {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "bias": "none",
            "task_type": "SEQ_CLS" if classify else "CAUSAL_LM",
            "target_modules": sorted(TARGETS),
            "modules_to_save": ["score"] if classify else None}
    for k, v in want.items():
        if written.get(k) != v:
            raise u.Failed(f"{task}: adapter_config.json {k} is {written.get(k)!r}, "
                           f"expected {v!r}")
    trained = safetensors_io.load(p("trained.safetensors"))
    adapter = safetensors_io.load(p("adapter/adapter_model.safetensors"))
    expect = {PREFIX + k: v for k, v in trained.items()
              if ".lora_" in k or k.startswith("score.")}
    if sorted(adapter) != sorted(expect):
        raise u.Failed(f"{task}: adapter tensors differ from the --save output's: "
                       f"{sorted(set(adapter) ^ set(expect))[:4]}")
    if len(expect) != 2 * len(TARGETS) * 2 + classify:
        raise u.Failed(f"{task}: {len(expect)} adapter tensors")
    for k in expect:
        if not np.array_equal(adapter[k], expect[k]):
            raise u.Failed(f"{task}: {k} differs from the --save output")
    H, kv = cfg["hidden_size"], cfg["hidden_size"] // 2  # 4 of 8 heads' width
    for name, shape in (("self_attn.k_proj.lora_A", (4, H)), ("self_attn.k_proj.lora_B", (kv, 4)),
                        ("mlp.down_proj.lora_A", (4, cfg["intermediate_size"]))):
        key = f"{PREFIX}model.layers.1.{name}.weight"
        if adapter[key].shape != shape:
            raise u.Failed(f"{key} is {adapter[key].shape}, expected {shape}")
    print(f"{task}: adapter of {len(adapter)} tensors, config as PEFT writes it")

    # Round trip: the base as a user has it + the folder == the full save.
    safetensors_io.save(p("base.safetensors"),
                        {k: v for k, v in trained.items()
                         if ".lora_" not in k and not k.startswith("score.")})
    c.galaxy(plan, "--init", p("base.safetensors"), "--init-adapter", p("adapter"), *data,
             "--steps", "3", "--metrics", p("m_adapter.jsonl"), *ev("adapter.eval.json"))
    c.galaxy(plan, "--init", p("trained.safetensors"), *data, "--steps", "3", "--metrics",
             p("m_full.jsonl"), *ev("full.eval.json"))
    la, lf = u.losses(p("m_adapter.jsonl")), u.losses(p("m_full.jsonl"))
    if list(la) != list(lf):
        raise u.Failed(f"{task}: losses from the adapter {la} differ from the full save's {lf}")
    if classify:
        u.close(f"{task}: eval logits, adapter vs full save", u.logits(p("adapter.eval.json")),
                u.logits(p("full.eval.json")))
    print(f"{task}: round trip, same losses {list(la)}")

    # PEFT's folders after added tokens also hold whole embed_tokens / lm_head
    # (modules_to_save): loaded, with a warning that the plan does not train them.
    extra = dict(adapter)
    extra[PREFIX + "model.embed_tokens.weight"] = trained["model.embed_tokens.weight"]
    os.makedirs(p("embed_adapter"), exist_ok=True)
    safetensors_io.save(p("embed_adapter/adapter_model.safetensors"), extra, {"format": "pt"})
    with open(p("embed_adapter/adapter_config.json"), "w") as f:
        json.dump({**written, "modules_to_save": (written["modules_to_save"] or []) +
                   ["embed_tokens"]}, f)
    out = c.galaxy(plan, "--init", p("base.safetensors"), "--init-adapter",
                   p("embed_adapter"), *data, "--steps", "3", "--metrics", p("m_embed.jsonl"))
    if "model.embed_tokens.weight, which it trained (modules_to_save)" not in out:
        raise u.Failed(f"{task}: no warning about the frozen embed_tokens:\n{out[-1500:]}")
    if list(u.losses(p("m_embed.jsonl"))) != list(la):
        raise u.Failed(f"{task}: the embed_tokens adapter trains other losses")

    # Fewer targets: PEFT's names for them, and the seven-target folder refused.
    qv = c.compile(c.config(t + ".qv", lora_config(task, ["q_proj", "v_proj"])), t + ".qv.plan")
    c.galaxy(qv, "--init", p("init.safetensors"), *data, "--steps", "1", "--save-adapter",
             p("qv_adapter"))
    with open(p("qv_adapter/adapter_config.json")) as f:
        got = json.load(f)["target_modules"]
    if got != ["q_proj", "v_proj"]:
        raise u.Failed(f"{task}: q/v plan wrote target_modules {got}")
    refused(f"{task}: a folder with more targets",
            [c.galaxy_run, qv, "--init", p("base.safetensors"), "--init-adapter", p("adapter"),
             *data, "--steps", "1"], "target_modules", "model.layers.0.self_attn.k_proj")

    # Tensor parallel (query heads [6, 2], their KV groups alongside): serial's folder.
    splits = llama_case.SPLITS[2]
    tp = c.compile(c.config(t + ".tp", {**cfg, "parallel_mode": "tp",
                                        "tp_num_attention_heads_list": splits["heads"],
                                        "tp_intermediate_size_list": splits["inter"]}),
                   t + ".tp.plan", "tp", 2)
    # Two pipeline stages (embeddings first, norm and head last).
    pp = c.compile(c.config(t + ".pp", {**cfg, "parallel_mode": "pp",
                                        "stage_num_hidden_layers_list": [1, 1]}),
                   t + ".pp.plan", "pp", 2)
    for name, world_plan in (("tp", tp), ("pp", pp)):
        c.galaxy(world_plan, "--init", p("init.safetensors"), *data, "--steps", "3",
                 "--save-adapter", p(name + "_adapter"), world=2)
        got = safetensors_io.load(p(name + "_adapter/adapter_model.safetensors"))
        if sorted(got) != sorted(adapter):
            raise u.Failed(f"{task}: {name} w2 adapter holds other tensors: "
                           f"{sorted(set(got) ^ set(adapter))[:4]}")
        u.close(f"{task}: {name} w2 adapter vs serial's",
                np.concatenate([np.ravel(got[k]) for k in sorted(adapter)]),
                np.concatenate([np.ravel(adapter[k]) for k in sorted(adapter)]), atol=1e-5)
        with open(p(name + "_adapter/adapter_config.json")) as f:
            if json.load(f) != written:
                raise u.Failed(f"{task}: {name} adapter_config.json differs from serial's")
    c.galaxy(pp, "--init", p("base.safetensors"), "--init-adapter", p("adapter"), *data,
             "--steps", "3", "--metrics", p("m_pp.jsonl"), world=2)
    u.close(f"{task}: pp losses from the adapter vs serial", u.losses(p("m_pp.jsonl")), la,
            rtol=1e-5)
    return plan, p("base.safetensors"), data


def test():
    c = u.Case(sys.argv[1], "peft-adapter-llama")
    adapters, runs = {}, {}
    for task in ("causal_lm", "classification"):
        runs[task] = check_task(c, task, adapters)
    # A folder of the other task: the same layers, but a head PEFT would not save.
    for task, other, name in (("classification", "causal_lm", "CAUSAL_LM"),
                              ("causal_lm", "classification", "SEQ_CLS")):
        plan, base, data = runs[task]
        refused(f"{task} plan, {other} folder",
                [c.galaxy_run, plan, "--init", base, "--init-adapter", adapters[other], *data,
                 "--steps", "1"], f"task_type is {name}")


if __name__ == "__main__":
    sys.exit(u.main(test))
