#!/usr/bin/python3
"""Galaxy's greedy generation against Hugging Face, token for token (a manual check).

  hf_generate_check.py BUILD_DIR [--modes serial,dp,tp,sp,galaxy] [--keep DIR]

Builds a tiny random LLaMA in Hugging Face (GQA: 8 query heads over 4 KV heads, weights
drawn with initializer_range 0.3 so that argmaxes are decisive), saves it as safetensors
(Hugging Face's names are Galaxy's), compiles the same config with galaxyc in each mode
(2 ranks, uneven splits), runs `galaxy-run --generate` on prompts of different lengths
(serial: the KV-cache prefill/decode programs; other modes: eval_step over the prefix)
and compares every generated id with LlamaForCausalLM.generate(do_sample=False), one
prompt at a time. It also compares `--eval`'s loss/perplexity with Hugging Face's mean
token loss on the same rows. Needs transformers: run it with an interpreter that has
it (e.g. the .venv-hf that scripts/hf_conformance.sh makes). Exit 0 equal, 1 different.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "oracle"))
sys.path.insert(0, os.path.join(HERE, "..", "equiv"))

import numpy as np  # noqa: E402
import safetensors_io  # noqa: E402
import llama_case  # noqa: E402  (the tiny LLaMA config and its uneven splits)

PROMPTS = [[5, 17, 42], [1, 9], [88, 3, 3, 70, 21, 11, 64], [33], [7, 8, 9, 10, 11]]
MAX_NEW = 8
PAD_SIZE = 16


def tiny_config():
    c = llama_case.config("sgd")
    c["pad_size"] = PAD_SIZE
    c["batch_size"] = 2  # 5 prompts: groups of 2, 2 and a partial 1
    c["initializer_range"] = 0.3
    return c


def hf_model(c):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=c["vocab_size"], hidden_size=c["hidden_size"],
        intermediate_size=c["intermediate_size"], num_hidden_layers=c["num_hidden_layers"],
        num_attention_heads=c["num_attention_heads"],
        num_key_value_heads=c["num_key_value_heads"],
        max_position_embeddings=c["max_position_embeddings"], rms_norm_eps=c["rms_norm_eps"],
        rope_theta=c["rope_theta"], pad_token_id=c["pad_token_id"],
        initializer_range=c["initializer_range"], tie_word_embeddings=False,
        attn_implementation="eager")
    m = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # RMSNorm weights away from 1, so they matter
        for name, p in m.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
    return m


def hf_generate(m, prompt):
    import torch
    import transformers.generation.utils as gen_utils

    # generate() asks whether FSDP wraps the model, which imports
    # torch.distributed.fsdp: broken for Debian's torch 1.13 on Python 3.11.
    gen_utils.is_fsdp_managed_module = lambda module: False

    with torch.no_grad():
        out = m.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt),
                         dtype=torch.long), do_sample=False, max_new_tokens=MAX_NEW,
                         pad_token_id=0, eos_token_id=None)
    return out[0, len(prompt):].tolist()


def hf_eval(m, rows):
    import torch

    total, n = 0.0, 0
    with torch.no_grad():
        for ids in rows:
            logits = m(torch.tensor([ids])).logits[0].double()
            logp = torch.log_softmax(logits, -1)
            for s in range(len(ids) - 1):
                total -= float(logp[s, ids[s + 1]])
                n += 1
    return total / n, n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--modes", default="serial,dp,tp,sp,galaxy")
    ap.add_argument("--keep")
    args = ap.parse_args()
    galaxyc = os.path.join(args.build, "tools", "galaxyc")
    galaxy_run = os.path.join(args.build, "tools", "galaxy-run")
    work = args.keep or tempfile.mkdtemp(prefix="galaxy-hfgen.")
    os.makedirs(work, exist_ok=True)
    p = lambda n: os.path.join(work, n)  # noqa: E731

    c = tiny_config()
    m = hf_model(c)
    safetensors_io.save(p("w.safetensors"),
                        {k: v.detach().numpy() for k, v in m.state_dict().items()})
    with open(p("prompts.jsonl"), "w") as f:
        for ids in PROMPTS:
            f.write(json.dumps({"input_ids": ids}) + "\n")
    want = [hf_generate(m, ids) for ids in PROMPTS]
    eval_rows = [ids + g for ids, g in zip(PROMPTS, want)]
    with open(p("eval.jsonl"), "w") as f:
        for ids in eval_rows:
            f.write(json.dumps({"input_ids": ids}) + "\n")
    hf_loss, hf_targets = hf_eval(m, eval_rows)
    print(f"HF: {want}")
    print(f"HF eval: loss {hf_loss:.6f} perplexity {math.exp(hf_loss):.6f} "
          f"over {hf_targets} targets")

    split = llama_case.SPLITS[2]
    status = 0
    for mode in args.modes.split(","):
        cfg = dict(c)
        cfg["parallel_mode"] = mode
        world = 1 if mode == "serial" else 2
        if mode != "serial":
            cfg["tp_num_attention_heads_list"] = split["heads"]
            cfg["tp_intermediate_size_list"] = split["inter"]
            cfg["seq_scatter_list"] = split["seq"]
            cfg["dp_batch_list"] = [1, 1]
        with open(p(f"{mode}.json"), "w") as f:
            json.dump(cfg, f, indent=1)
        subprocess.run([galaxyc, p(f"{mode}.json"), "--mode", mode, "--world", str(world),
                        "-o", p(f"{mode}.plan"), "--emit", "none"], check=True)
        ranks = ["--nproc", str(world)] if world > 1 else []
        subprocess.run([galaxy_run, p(f"{mode}.plan"), *ranks, "--init", p("w.safetensors"),
                        "--generate", p("prompts.jsonl"), "--max-new-tokens", str(MAX_NEW),
                        "--output", p(f"{mode}.out.jsonl"), "--eval", p("eval.jsonl"),
                        "--eval-out", p(f"{mode}.eval.json")], check=True)
        with open(p(f"{mode}.out.jsonl")) as f:
            got = [json.loads(line)["generated_ids"] for line in f]
        with open(p(f"{mode}.eval.json")) as f:
            ev = json.load(f)
        same = got == want
        loss_ok = abs(ev["loss"] - hf_loss) <= 1e-4 * max(1.0, hf_loss)
        loss_ok = loss_ok and ev["targets"] == hf_targets
        print(f"{mode}: generated {'==' if same else '!='} HF; eval loss {ev['loss']:.6f} "
              f"perplexity {ev['perplexity']:.6f} ({ev['targets']} targets) "
              f"{'==' if loss_ok else '!='} HF")
        if not same:
            print(f"  galaxy: {got}")
        status |= (not same) or (not loss_ok)
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
