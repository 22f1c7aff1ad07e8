#!/usr/bin/python3
"""BART generation test: the cached encode/decode programs equal recomputing, in every mode.

  bart_generate.py BUILD_DIR [--keep DIR]

Compiles the tiny BART of tests/equiv/bart_case.py (2+2 layers, source pad 12, target
pad 10) with batch 2 and init_std 0.3 (decisive argmaxes), serial, dp, tp and galaxy
(TP/None/TP) over 2 uneven ranks and tp over 3, and runs `galaxy-run --generate` from the
same seeded weights on 5 source prompts of lengths 1 to 12 (groups of 2, 2 and a partial 1):
  - serial with the caches (encode once, decode with the self-attention cache and the
    cross-attention keys/values of encode) must equal serial with
    GALAXY_GENERATE_RECOMPUTE=1 (eval_step over the whole decoder prefix each token),
  - every other mode with its caches, and tp recomputing, must equal them;
  - a row stops right after --eos-id (by default the model's </s>; checked with a token
    the first prompt generates, with and without the cache);
  - seeded sampling draws the same tokens serial and tp, with and without the caches.
tests/generate/bart_hf_check.py compares with Hugging Face by hand. Exit 0 equal, 1 not.
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "equiv"))

import bart_case  # noqa: E402
import harness  # noqa: E402

PROMPTS = [[0, 5, 17, 42, 2], [0, 9, 2], [0, 8, 3, 3, 60, 21, 11, 44, 12, 40, 33, 2], [33],
           [0, 7, 8, 9, 10, 11, 2]]
MAX_NEW = 8


def fail(msg, code=1):
    print(f"bart_generate.py: {msg}")
    sys.exit(code)


def main():
    return harness.script_main("bart_generate.py", "galaxy-bart-generate.", check)


def check(work, galaxyc, galaxy_run):
    def p(name):
        return os.path.join(work, name)

    harness.write_prompts(p("prompts.jsonl"), PROMPTS)
    plans = {}
    for name, mode, world in (("serial", "serial", 1), ("dp", "dp", 2), ("tp", "tp", 2),
                              ("galaxy", "galaxy", 2), ("tp_w3", "tp", 3)):
        cfg = bart_case.config("sgd")
        cfg.update(batch_size=2, init_std=0.3)
        if world > 1:
            split = bart_case.SPLITS[world]
            cfg.update({"dp_batch_list": [1, 1]} if mode == "dp" else
                       {"tp_num_attention_heads_list": split["heads"],
                        "tp_intermediate_size_list": split["inter"]})
            if mode == "galaxy":
                cfg.update(att_parallel_method="TP", con_parallel_method="None",
                           mlp_parallel_method="TP")
        with open(p(f"{name}.json"), "w") as f:
            json.dump(cfg, f, indent=1)
        r = subprocess.run([galaxyc, p(f"{name}.json"), "--mode", mode, "--world", str(world),
                            "-o", p(f"{name}.plan"), "--emit", "none"],
                           capture_output=True, text=True)
        if r.returncode:
            fail(f"galaxyc --mode {mode} --world {world} failed:\n{r.stderr}")
        plans[name] = (p(f"{name}.plan"), [] if world == 1 else ["--nproc", str(world)])

    weights = p("weights.safetensors")

    def generate(name, mode, recompute, extra=()):
        plan, ranks = plans[mode]
        env = dict(os.environ)
        env.pop("GALAXY_GENERATE_RECOMPUTE", None)
        if recompute:
            env["GALAXY_GENERATE_RECOMPUTE"] = "1"
        out = p(f"{name}.out.jsonl")
        r = subprocess.run([galaxy_run, plan, *ranks, "--seed", "3", "--init", weights,
                            "--generate", p("prompts.jsonl"), "--max-new-tokens", str(MAX_NEW),
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

    # The seed-3 weights, saved once (final_logits_bias nonzero, as a trained model's).
    r = subprocess.run([galaxy_run, plans["serial"][0], "--seed", "3", "--generate",
                        p("prompts.jsonl"), "--max-new-tokens", "1",
                        "--output", p("init.out.jsonl"), "--save", weights],
                       capture_output=True, text=True)
    if r.returncode or not os.path.exists(weights):
        fail(f"galaxy-run --save (the seed-3 weights) failed:\n{r.stderr}")
    # Greedy with no eos, so every row runs all MAX_NEW steps.
    cache, log = generate("serial_cache", "serial", False, ["--eos-id", "63"])
    if "KV cache" not in log:
        fail("the serial plan did not generate with its cached programs")
    print(f"serial_cache: {cache}")
    status = 0
    for name, mode, recompute in (("serial_recompute", "serial", True),
                                  ("tp_recompute", "tp", True),
                                  ("dp_cache", "dp", False), ("tp_cache", "tp", False),
                                  ("galaxy_cache", "galaxy", False),
                                  ("tp_w3_cache", "tp_w3", False)):
        got, log = generate(name, mode, recompute, ["--eos-id", "63"])
        if not recompute and "KV cache" not in log:
            fail(f"{name}: the plan did not generate with its cached programs")
        if got != cache:
            print(f"DIFFERENT: {name} {got}\n   vs serial_cache {cache}")
            status = 1
    if len(set(tuple(g) for g in cache)) < 2 or all(len(set(g)) < 2 for g in cache):
        fail(f"degenerate generations (every prompt or step the same token): {cache}")
    eos = cache[0][1]
    for name, recompute in (("eos_cache", False), ("eos_recompute", True)):
        got, _ = generate(name, "serial", recompute, ["--eos-id", str(eos)])
        want = [g[: g.index(eos) + 1] if eos in g else g for g in cache]
        if got != want:
            print(f"DIFFERENT: {name} with --eos-id {eos}: {got}\n   want {want}")
            status = 1
    # Seeded sampling: the same draws with and without the caches, serial and tp.
    sample = ["--eos-id", "63", "--temperature", "1.5", "--top-k", "40", "--top-p", "0.95"]
    sampled, _ = generate("sample_serial_cache", "serial", False, sample)
    if sampled == cache:
        print("DIFFERENT: sampling gave greedy's tokens")
        status = 1
    for name, mode, recompute in (("sample_serial_recompute", "serial", True),
                                  ("sample_tp_cache", "tp", False)):
        got, _ = generate(name, mode, recompute, sample)
        if got != sampled:
            print(f"DIFFERENT: {name} {got}\n   vs sample_serial_cache {sampled}")
            status = 1
    print("bart_generate.py: " + ("equal" if status == 0 else "DIFFERENT"))
    return status


if __name__ == "__main__":
    sys.exit(main())
