#!/usr/bin/env python3
"""BART generation from PEFT plans (LoRA, adapters, side-tuning) against Hugging Face.

  bart_peft_generate.py BUILD_DIR [--keep DIR]

On the tiny BART of tests/oracle/bart_hf.py (matrices N(0, 0.3), seed 5, as
bart_hf_check.py; batch 2), `galaxy-run --generate` on 5 source prompts, 9 new tokens:
  - LoRA (r 4 on q/k/v/out_proj, fc1, fc2: the cross-attention's too, nonzero factors by
    bart_hf.peft_lora): Hugging Face PEFT 0.13's greedy generate, one prompt at a time,
    must equal Galaxy's cached encode/decode programs (where the PEFT pass put the LoRA
    branches: the encoder's layers and the cross-attention keys/values in @encode) serial,
    tp and galaxy over 2 uneven ranks, and serial eval_step recompute; the full plan
    from the same base weights must differ (the branches matter).
  - Adapters (nonzero up-projections): cached programs, serial and tp, equal recompute.
  - Side-tuning (no cached programs: eval_step with its side network) serial equals tp
    and differs from the full plan's tokens; a side-only plan is refused.
Needs transformers and peft (.venv-hf/bin/python). Exit 0 equal, 1 different.
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "oracle"))
sys.path.insert(0, os.path.join(HERE, "..", "equiv"))

import torch  # noqa: E402
import bart_case  # noqa: E402
import bart_hf  # noqa: E402
from bart_hf_check import MAX_NEW, PROMPTS, hf_generate, mode_config, wide_model  # noqa: E402
import harness  # noqa: E402
import safetensors_io  # noqa: E402


def fail(msg, code=1):
    print(f"bart_peft_generate.py: {msg}")
    sys.exit(code)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--keep")
    args = ap.parse_args()
    galaxyc, galaxy_run = harness.tools(args.build, fail)
    base = bart_case.config("sgd")
    base["batch_size"] = 2
    model = wide_model(base)
    base_state = bart_hf.galaxy_state(model)
    lora_model = bart_hf.peft_lora(model, "seq2seq").eval()
    with torch.no_grad():  # peft_lora's N(0, 0.2) factors swamp these weights
        for name, p in lora_model.named_parameters():
            if "lora_" in name:
                p.mul_(0.3)
    want = hf_generate(lora_model, base)
    print(f"hugging face LoRA: {want}")
    lora_state = bart_hf.galaxy_state(lora_model)
    if not any(".lora_A." in k for k in lora_state):
        fail(f"no LoRA factors among {sorted(lora_state)[:5]}...")
    status = 0
    with harness.work_dir(args.keep, "galaxy-bart-peft-gen.") as work:
        def p(name):
            return os.path.join(work, name)

        harness.write_prompts(p("prompts.jsonl"), PROMPTS)

        def compile_plan(name, extra, mode="serial"):
            cfg, world = mode_config({**base, **extra}, mode)
            with open(p(f"{name}.json"), "w") as f:
                json.dump(cfg, f)
            subprocess.run([galaxyc, p(f"{name}.json"), "--mode", mode, "--world", str(world),
                            "-o", p(f"{name}.plan"), "--emit", "none"], check=True,
                           capture_output=True)
            return p(f"{name}.plan"), world

        def generate(plan_world, weights, recompute=False, ok=True):
            plan, world = plan_world
            env = dict(os.environ)
            env.pop("GALAXY_GENERATE_RECOMPUTE", None)
            if recompute:
                env["GALAXY_GENERATE_RECOMPUTE"] = "1"
            ranks = ["--nproc", str(world)] if world > 1 else []
            out = plan + ".out.jsonl"
            r = subprocess.run([galaxy_run, plan, *ranks, "--init", weights, "--generate",
                                p("prompts.jsonl"), "--max-new-tokens", str(MAX_NEW),
                                "--output", out], capture_output=True, text=True, env=env)
            if not ok:
                return r
            if r.returncode:
                fail(f"galaxy-run {plan} failed:\n{r.stderr}")
            cached = "KV cache of" in r.stderr  # not "no KV cache"
            with open(out) as f:
                return [json.loads(line)["generated_ids"] for line in f], cached

        def seeded_weights(plan_world, name):
            """The plan's weights as `galaxy-run --seed 3` draws them (saved by a 1-token
            generate), for a method's own weights to be replaced."""
            subprocess.run([galaxy_run, plan_world[0], "--seed", "3", "--generate",
                            p("prompts.jsonl"), "--max-new-tokens", "1",
                            "--output", p(f"{name}_init.jsonl"),
                            "--save", p(f"{name}_init.safetensors")],
                           check=True, capture_output=True)
            return safetensors_io.load(p(f"{name}_init.safetensors"))

        def expect(what, got, ref, cached_want=None):
            nonlocal status
            tokens, cached = got
            same = tokens == ref
            note = "" if cached_want is None or cached == cached_want else \
                f" (cached programs {cached}, expected {cached_want})"
            ok = same and not note
            print(f"{what}: {'equal' if ok else 'DIFFERENT'}{note} {'' if same else tokens}")
            status |= not ok

        safetensors_io.save(p("lora.safetensors"), lora_state)
        safetensors_io.save(p("base.safetensors"), base_state)
        lora = {"full_model": False, "use_lora": True, "lora_dim": 4, "lora_alpha": 8,
                "lora_target_modules": bart_hf.LORA_TARGETS}
        for mode in ("serial", "tp", "galaxy"):
            got = generate(compile_plan(f"lora_{mode}", lora, mode), p("lora.safetensors"))
            expect(f"LoRA {mode} (cached) vs Hugging Face PEFT", got, want, True)
        expect("LoRA serial recompute vs Hugging Face PEFT",
               generate(compile_plan("lora_serial", lora), p("lora.safetensors"), True),
               want, False)
        full, _ = generate(compile_plan("full", {}), p("base.safetensors"))
        if full == want:
            print(f"DIFFERENT: the full plan without the LoRA branches gives LoRA's tokens {full}")
            status = 1

        # Adapters: Galaxy's own method; nonzero up-projections so they matter.
        adapter = {"full_model": False, "use_adapter": True, "adapter_reduction_dim": 8}
        plan = compile_plan("adapter_serial", adapter)
        st = seeded_weights(plan, "adapter")
        rng = np.random.default_rng(7)
        st = {k: (rng.normal(0.0, 0.3, np.shape(v)).astype(np.float32) if ".adapter." in k
                  else base_state.get(k, v)) for k, v in st.items()}
        safetensors_io.save(p("adapter.safetensors"), st)
        ref, _ = generate(plan, p("adapter.safetensors"), True)
        print(f"adapter recompute: {ref}")
        if ref == full:
            print("DIFFERENT: the adapters do not change the tokens")
            status = 1
        expect("adapter serial (cached) vs recompute", generate(plan, p("adapter.safetensors")),
               ref, True)
        expect("adapter tp (cached) vs recompute",
               generate(compile_plan("adapter_tp", adapter, "tp"), p("adapter.safetensors")),
               ref, True)

        # Side-tuning: eval_step runs the side network beside the backbone.
        side = {"full_model": False, "use_side": True, "side_reduction_factor": 4}
        plan = compile_plan("side_serial", side)
        st = seeded_weights(plan, "side")
        st = {k: base_state.get(k, v) for k, v in st.items()}
        safetensors_io.save(p("side.safetensors"), st)
        ref, cached = generate(plan, p("side.safetensors"))
        print(f"side serial: {ref}")
        if cached or ref == full:
            print(f"DIFFERENT: side-tuning generated with cached programs ({cached}) or "
                  "gave the full plan's tokens")
            status = 1
        expect("side tp vs serial",
               generate(compile_plan("side_tp", side, "tp"), p("side.safetensors")), ref, False)
        only = compile_plan("side_only", {**side, "use_side_only": True})
        r = generate(only, p("side.safetensors"), ok=False)
        refused = r.returncode == 2 and "side-only plan" in r.stderr
        print(f"side-only refused: {refused} {'' if refused else r.stderr[-300:]}")
        status |= not refused
    print("bart_peft_generate.py: " + ("equal" if status == 0 else "DIFFERENT"))
    return status


if __name__ == "__main__":
    sys.exit(main())
