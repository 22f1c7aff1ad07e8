#!/usr/bin/python3
"""Generation test: KV-cache decode equals recomputing the prefix, in every SPMD mode.

  generate_equiv.py BUILD_DIR [--keep DIR]

Compiles the tiny LLaMA of tests/equiv/llama_case.py (GQA 8/4 heads, pad 16) with
batch 2 and initializer_range 0.3 (decisive argmaxes), serial, over 2 ranks (dp, tp, sp,
galaxy TP/SP/TP, uneven splits) and over 3 (galaxy, uneven), and runs `galaxy-run
--generate` from the same seeded weights on 5 prompts of lengths 1 to 9 (groups of 2, 2
and a partial 1):
  - serial with the KV cache (prefill + decode programs) must equal serial with
    GALAXY_GENERATE_RECOMPUTE=1 (eval_step over the whole prefix each token),
  - every other mode's plans with their KV cache, and tp recomputing, must equal them,
  - --eos-id (the third token the first prompt generates) must stop that prompt
    right after it, with and without the cache.
  - seeded sampling (--temperature, --top-k, --top-p, --seed) must give the same
    tokens serial and tp, with and without the cache, and with a batch-1 plan
    (another grouping of the prompts); they must differ from greedy's, and
    another --seed must give others.
No torch or transformers needed (tests/generate/hf_generate_check.py compares with
Hugging Face by hand). Exit 0 equal, 1 different.
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "equiv"))

import harness  # noqa: E402
import llama_case  # noqa: E402

PROMPTS = [[5, 17, 42], [1, 9], [88, 3, 3, 70, 21, 11, 64, 2, 40], [33], [7, 8, 9, 10, 11]]
MAX_NEW = 7


def fail(msg, code=1):
    print(f"generate_equiv.py: {msg}")
    sys.exit(code)


def main():
    return harness.script_main("generate_equiv.py", "galaxy-generate.", check)


def check(work, galaxyc, galaxy_run):
    def p(name):
        return os.path.join(work, name)

    harness.write_prompts(p("prompts.jsonl"), PROMPTS)
    plans = {}
    for name, mode, world in (("serial", "serial", 1), ("dp", "dp", 2), ("tp", "tp", 2),
                              ("sp", "sp", 2), ("galaxy", "galaxy", 2),
                              ("galaxy_w3", "galaxy", 3), ("serial_b1", "serial", 1)):
        cfg = llama_case.config("sgd")
        cfg.update(batch_size=1 if name == "serial_b1" else 2, initializer_range=0.3)
        if world > 1:
            split = llama_case.SPLITS[world]
            lists = {"dp": {"dp_batch_list": [1, 1]},
                     "tp": {"tp_num_attention_heads_list": split["heads"],
                            "tp_intermediate_size_list": split["inter"]},
                     "sp": {"seq_scatter_list": split["seq"]}}
            cfg.update(lists.get(mode, {**lists["tp"], **lists["sp"]}))
            if mode == "galaxy":
                cfg.update(att_parallel_method="TP", con_parallel_method="SP",
                           mlp_parallel_method="TP")
        with open(p(f"{name}.json"), "w") as f:
            json.dump(cfg, f, indent=1)
        r = subprocess.run([galaxyc, p(f"{name}.json"), "--mode", mode, "--world", str(world),
                            "-o", p(f"{name}.plan"), "--emit", "none"],
                           capture_output=True, text=True)
        if r.returncode:
            fail(f"galaxyc --mode {mode} --world {world} failed:\n{r.stderr}")
        plans[name] = (p(f"{name}.plan"), [] if world == 1 else ["--nproc", str(world)])

    def generate(name, mode, recompute, extra=(), seed=3):
        plan, ranks = plans[mode]
        env = dict(os.environ)
        env.pop("GALAXY_GENERATE_RECOMPUTE", None)
        if recompute:
            env["GALAXY_GENERATE_RECOMPUTE"] = "1"
        out = p(f"{name}.out.jsonl")
        # --init keeps the weights fixed when --seed (the draws') changes.
        init = ["--init", weights]
        r = subprocess.run([galaxy_run, plan, *ranks, "--seed", str(seed), *init, "--generate",
                            p("prompts.jsonl"), "--max-new-tokens", str(MAX_NEW),
                            "--output", out, *extra], capture_output=True, text=True, env=env)
        if r.returncode:
            fail(f"galaxy-run ({name}) failed:\n{r.stderr}")
        how = [line for line in r.stderr.splitlines() if "generate:" in line]
        print(f"{name}: {how[-1] if how else r.stderr.strip()}")
        with open(out) as f:
            rows = [json.loads(line) for line in f]
        if [row["input_ids"] for row in rows] != PROMPTS:
            fail(f"{name}: the output's input_ids are not the prompts")
        return [row["generated_ids"] for row in rows], r.stderr

    weights = p("weights.safetensors")
    r = subprocess.run([galaxy_run, plans["serial"][0], "--seed", "3", "--generate",
                        p("prompts.jsonl"), "--max-new-tokens", "1", "--output",
                        p("init.out.jsonl"), "--save", weights], capture_output=True, text=True)
    if r.returncode or not os.path.exists(weights):
        fail(f"galaxy-run --save (the seed-3 weights) failed:\n{r.stderr}")
    cache, log = generate("serial_cache", "serial", False)
    if "KV cache" not in log:
        fail("the serial plan did not generate with its KV-cache programs")
    if any(len(g) != MAX_NEW for g in cache):
        fail(f"not {MAX_NEW} tokens per prompt: {cache}")
    status = 0
    for name, mode, recompute in (("serial_recompute", "serial", True),
                                  ("tp_recompute", "tp", True),
                                  ("dp_cache", "dp", False), ("tp_cache", "tp", False),
                                  ("sp_cache", "sp", False), ("galaxy_cache", "galaxy", False),
                                  ("galaxy_w3_cache", "galaxy_w3", False)):
        got, log = generate(name, mode, recompute)
        if not recompute and "KV cache" not in log:
            fail(f"{name}: the plan did not generate with its KV-cache programs")
        if got != cache:
            print(f"DIFFERENT: {name} {got}\n   vs serial_cache {cache}")
            status = 1
    eos = cache[0][2]
    for name, recompute in (("eos_cache", False), ("eos_recompute", True)):
        got, _ = generate(name, "serial", recompute, ["--eos-id", str(eos)])
        want = [g[: g.index(eos) + 1] if eos in g else g for g in cache]
        if got != want:
            print(f"DIFFERENT: {name} with --eos-id {eos}: {got}\n   want {want}")
            status = 1
    sample = ["--temperature", "1.5", "--top-k", "40", "--top-p", "0.95"]
    sampled, log = generate("sample_serial_cache", "serial", False, sample, seed=11)
    if "sampling: temperature 1.5" not in log or "KV cache" not in log:
        fail(f"sample_serial_cache: not sampling with the KV cache: {log}")
    if sampled == cache:
        fail("sampling at temperature 1.5 gave greedy's tokens (not sampling?)")
    for name, mode, recompute in (("sample_serial_recompute", "serial", True),
                                  ("sample_tp_cache", "tp", False),
                                  ("sample_tp_recompute", "tp", True),
                                  ("sample_galaxy_cache", "galaxy", False),
                                  ("sample_serial_b1_cache", "serial_b1", False),
                                  ("sample_serial_b1_recompute", "serial_b1", True)):
        got, _ = generate(name, mode, recompute, sample, seed=11)
        if got != sampled:
            print(f"DIFFERENT: {name} {got}\n   vs sample_serial_cache {sampled}")
            status = 1
    other, _ = generate("sample_seed12", "serial", False, sample, seed=12)
    if other == sampled:
        print(f"DIFFERENT: --seed 12 sampled the same tokens as --seed 11: {other}")
        status = 1
    print(f"sampled (seed 11): {sampled}")
    print(f"serial KV cache: {cache}")
    print("generate_equiv.py: " + ("equal" if status == 0 else "DIFFERENT"))
    return status


if __name__ == "__main__":
    sys.exit(main())
