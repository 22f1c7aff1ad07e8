#!/usr/bin/python3
"""PEFT plans generate with their branches; the KV cache holds --max-seq positions.

  peft_generate.py BUILD_DIR [--keep DIR]

On the tiny LLaMA of tests/equiv/llama_case.py (GQA 8/4 heads, pad 16):
  - LoRA (r 4 on all seven targets): from weights whose lora_B are nonzero, the LoRA plan's
    KV-cache tokens (serial, tp and galaxy over 2 ranks, uneven) equal its own eval_step
    recompute and the full plan's tokens from the merged weights (galaxy-run
    --save-merged); the full plan from the unmerged base weights must differ (the branches
    matter).
  - Adapters: with nonzero up-projections, KV cache (serial, tp) equals recompute.
  - --max-seq 28 on a pad-16 plan: prompts of 9 tokens + 19 new generate (cache), equal to
    recomputing with a pad-28 plan, serial and tp; 20 new tokens are refused naming 29 and
    28; galaxyc refuses --max-seq past max_position_embeddings.
Standard library only (safetensors read and written by hand). Exit 0 pass, 1 fail.
"""

import json
import os
import random
import struct
import subprocess
import sys
from array import array

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "equiv"))

import harness  # noqa: E402
import llama_case  # noqa: E402

PROMPTS = [[5, 17, 42], [1, 9], [88, 3, 3, 70, 21, 11, 64, 2, 40], [33], [7, 8, 9, 10, 11]]
MAX_NEW = 6
ALL_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def fail(msg):
    print(f"peft_generate.py: {msg}")
    sys.exit(1)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            fail(f"{path}: {name} is {info['dtype']}, expected F32")
        b, e = info["data_offsets"]
        out[name] = (info["shape"], array("f", data[b:e]))
    return out


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        shape, values = tensors[name]
        raw = values.tobytes()
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def check(work, galaxyc, galaxy_run):
    def p(name):
        return os.path.join(work, name)

    harness.write_prompts(p("prompts.jsonl"), PROMPTS)
    split = llama_case.SPLITS[2]
    tp_lists = {"tp_num_attention_heads_list": split["heads"],
                "tp_intermediate_size_list": split["inter"]}
    galaxy_lists = {**tp_lists, "seq_scatter_list": split["seq"], "att_parallel_method": "TP",
                    "con_parallel_method": "SP", "mlp_parallel_method": "TP"}

    def compile_plan(name, extra, mode="serial", world=1, flags=()):
        cfg = llama_case.config("sgd")
        cfg.update(batch_size=2, initializer_range=0.3, **extra)
        if mode == "tp":
            cfg.update(tp_lists)
        elif mode == "galaxy":
            cfg.update(galaxy_lists)
        with open(p(f"{name}.json"), "w") as f:
            json.dump(cfg, f, indent=1)
        r = subprocess.run([galaxyc, p(f"{name}.json"), "--mode", mode, "--world", str(world),
                            "-o", p(f"{name}.plan"), "--emit", "none", *flags],
                           capture_output=True, text=True)
        if r.returncode:
            fail(f"galaxyc {name} failed:\n{r.stderr}")
        return (p(f"{name}.plan"), [] if world == 1 else ["--nproc", str(world)])

    def run(plan, init, name, recompute=False, extra=(), max_new=MAX_NEW, code=0):
        env = dict(os.environ)
        env.pop("GALAXY_GENERATE_RECOMPUTE", None)
        if recompute:
            env["GALAXY_GENERATE_RECOMPUTE"] = "1"
        out = p(f"{name}.out.jsonl")
        r = subprocess.run([galaxy_run, plan[0], *plan[1], "--init", init, "--generate",
                            p("prompts.jsonl"), "--max-new-tokens", str(max_new), "--output",
                            out, *extra], capture_output=True, text=True, env=env)
        if r.returncode != code:
            fail(f"galaxy-run ({name}) exited {r.returncode}, expected {code}:\n{r.stderr}")
        if code:
            return r.stderr
        how = [line for line in r.stderr.splitlines() if "generate:" in line]
        print(f"{name}: {how[-1] if how else ''}")
        if not recompute and "KV cache" not in r.stderr:
            fail(f"{name}: did not generate with the KV cache")
        with open(out) as f:
            return [json.loads(line)["generated_ids"] for line in f]

    def saved_weights(plan, name):
        path = p(f"{name}.safetensors")
        r = subprocess.run([galaxy_run, plan[0], "--seed", "3", "--generate", p("prompts.jsonl"),
                            "--max-new-tokens", "1", "--output", p(f"{name}.init.jsonl"),
                            "--save", path], capture_output=True, text=True)
        if r.returncode:
            fail(f"galaxy-run --save ({name}) failed:\n{r.stderr}")
        return path

    rng = random.Random(7)

    def perturb(src, dst, marker, std):
        """Copies src with every tensor whose name holds `marker` drawn from N(0, std²)."""
        tensors = read_safetensors(src)
        hit = 0
        for name, (shape, values) in tensors.items():
            if marker in name:
                tensors[name] = (shape, array("f", (rng.gauss(0, std) for _ in values)))
                hit += 1
        if not hit:
            fail(f"{src} holds no {marker} tensor")
        write_safetensors(dst, tensors)
        return tensors

    status = 0

    def same(name, got, want, wanted):
        nonlocal status
        if got != want:
            print(f"DIFFERENT: {name} {got}\n   vs {wanted} {want}")
            status = 1

    # LoRA: branches in prefill/decode, equal to the merged weights.
    lora = {"use_lora": True, "lora_dim": 4, "lora_alpha": 8, "lora_dropout": 0.1,
            "lora_target_modules": ALL_TARGETS}
    lora_serial = compile_plan("lora_serial", lora)
    lora_tp = compile_plan("lora_tp", lora, "tp", 2)
    lora_galaxy = compile_plan("lora_galaxy", lora, "galaxy", 2)
    full = compile_plan("full_serial", {})
    init = p("lora_init.safetensors")
    tensors = perturb(saved_weights(lora_serial, "lora_seeded"), init, "lora_B", 0.3)
    merged = p("merged.safetensors")
    want = run(lora_serial, init, "lora_serial_cache", extra=["--save-merged", merged])
    same("lora_serial_recompute", run(lora_serial, init, "lora_serial_recompute", True), want,
         "lora_serial_cache")
    same("lora_tp_cache", run(lora_tp, init, "lora_tp_cache"), want, "lora_serial_cache")
    same("lora_galaxy_cache", run(lora_galaxy, init, "lora_galaxy_cache"), want,
         "lora_serial_cache")
    same("full_merged_cache", run(full, merged, "full_merged_cache"), want, "lora_serial_cache")
    base = p("base.safetensors")
    write_safetensors(base, {k: v for k, v in tensors.items() if "lora_" not in k})
    if run(full, base, "full_base_cache") == want:
        fail("the full plan from the base weights generates the LoRA plan's tokens: the "
             "branches changed nothing (is lora_B nonzero?)")
    print(f"lora tokens: {want}")

    # Adapters: branches in prefill/decode.
    adapter = {"use_adapter": True, "adapter_reduction_dim": 8}
    ad_serial = compile_plan("adapter_serial", adapter)
    ad_tp = compile_plan("adapter_tp", adapter, "tp", 2)
    ad_init = p("adapter_init.safetensors")
    perturb(saved_weights(ad_serial, "adapter_seeded"), ad_init, ".up.weight", 0.3)
    want = run(ad_serial, ad_init, "adapter_serial_recompute", True)
    same("adapter_serial_cache", run(ad_serial, ad_init, "adapter_serial_cache"), want,
         "adapter_serial_recompute")
    same("adapter_tp_cache", run(ad_tp, ad_init, "adapter_tp_cache"), want,
         "adapter_serial_recompute")
    if run(full, ad_init, "full_adapter_weights") == want:
        fail("the full plan generates the adapter plan's tokens: the adapters changed nothing")

    # --max-seq: a 28-position cache on a pad-16 plan.
    long_new = 28 - 9
    ms_serial = compile_plan("maxseq_serial", {}, flags=["--max-seq", "28"])
    ms_tp = compile_plan("maxseq_tp", {}, "tp", 2, flags=["--max-seq=28"])
    pad28 = compile_plan("pad28_serial", {"pad_size": 28})
    w = saved_weights(full, "full_seeded")
    want = run(pad28, w, "pad28_recompute", True, max_new=long_new)
    if any(len(g) != long_new for g in want):
        fail(f"not {long_new} tokens per prompt: {want}")
    same("maxseq_serial_cache", run(ms_serial, w, "maxseq_serial_cache", max_new=long_new), want,
         "pad28_recompute")
    same("maxseq_tp_cache", run(ms_tp, w, "maxseq_tp_cache", max_new=long_new), want,
         "pad28_recompute")
    err = run(ms_serial, w, "maxseq_too_long", max_new=long_new + 1, code=2)
    if "needs 29 positions" not in err or "KV cache of 28" not in err:
        fail(f"prompt + new tokens past --max-seq: the message names not both 29 and 28:\n{err}")
    print(f"refused: {err.strip().splitlines()[-1]}")
    r = subprocess.run([galaxyc, p("full_serial.json"), "--max-seq", "65", "--emit", "none"],
                       capture_output=True, text=True)
    if r.returncode != 2 or "max_seq 65" not in r.stderr or "max_position_embeddings 64" not in r.stderr:
        fail(f"galaxyc --max-seq 65 (max_position_embeddings 64): exit {r.returncode}:\n{r.stderr}")
    print(f"refused: {r.stderr.strip().splitlines()[0]}")
    print("peft_generate.py: " + ("equal" if status == 0 else "DIFFERENT"))
    return status


def main():
    return harness.script_main("peft_generate.py", "galaxy-peft-generate.", check)


if __name__ == "__main__":
    sys.exit(main())
