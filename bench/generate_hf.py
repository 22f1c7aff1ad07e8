#!/usr/bin/env python3
"""Hugging Face baseline for bench/generate.sh: greedy generation with the KV cache.

  generate_hf.py CONFIG PROMPTS.jsonl --max-new-tokens N [--threads 2] [--rounds 3]
                 [--dtype float32|bfloat16]

transformers' LlamaForCausalLM from a LlamaConfig with the Galaxy config's sizes (random
initialisation, the default attention implementation), in --dtype. The prompts (one
{"input_ids": [...]} a line, all of one length) run as one batch through
`generate(do_sample=False, use_cache=True)`; no EOS stops a row (eos_token_id None), so
every row makes N tokens. A logits processor stamps the time as each token's logits are
ready: prefill = start to the first stamp (the prompt forward), decode = first to last
stamp / (N - 1) per step of one token per row (as galaxy-run's per-group timings). One
warm-up generate first (untimed), then --rounds timed ones. Prints one JSON
line: versions, threads, per-round prefill and decode seconds, their medians and decode
tokens/s (rows x steps / decode seconds).
"""

import argparse
import json
import statistics
import sys
import time

import torch
import transformers

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from llama_step_torch import llama_config  # noqa: E402  (the same sizes as Galaxy's)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("prompts")
    ap.add_argument("--max-new-tokens", type=int, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = json.load(open(a.config))
    hc = llama_config(cfg)
    hc.use_cache = True
    dtype = getattr(torch, a.dtype)
    # sdpa: transformers' default attention, what generate users get.
    model = transformers.LlamaForCausalLM._from_config(
        hc, attn_implementation="sdpa").to(dtype).eval()
    rows = [json.loads(line)["input_ids"] for line in open(a.prompts) if line.strip()]
    if len({len(r) for r in rows}) != 1:
        sys.exit("generate_hf.py: the prompts must have one length")
    ids = torch.tensor(rows, dtype=torch.long)
    mask = torch.ones_like(ids)
    n = a.max_new_tokens

    class Clock(transformers.LogitsProcessor):
        """Called once per new token, as its logits are ready: the first call ends
        prefill, each later one a decode step."""

        def __init__(self):
            self.times = []

        def __call__(self, input_ids, scores):
            self.times.append(time.perf_counter())
            return scores

    def gen(new):
        clock = Clock()
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False,
                                 use_cache=True, max_new_tokens=new, min_new_tokens=new,
                                 eos_token_id=None, pad_token_id=cfg.get("pad_token_id", 0),
                                 logits_processor=transformers.LogitsProcessorList([clock]))
        if out.shape[1] != ids.shape[1] + new or len(clock.times) != new:
            sys.exit(f"generate_hf.py: {out.shape[1] - ids.shape[1]} tokens, not {new}")
        t = clock.times
        return t[0] - t0, (t[-1] - t[0]) / max(new - 1, 1)

    gen(min(n, 4))  # warm-up
    prefill, decode = [], []
    for _ in range(a.rounds):
        p, d = gen(n)
        prefill.append(p)
        decode.append(d)
    step = statistics.median(decode)
    print(json.dumps({
        "torch": torch.__version__, "transformers": transformers.__version__,
        "threads": torch.get_num_threads(), "dtype": a.dtype,
        "attention": model.config._attn_implementation,
        "parameters": sum(p.numel() for p in model.parameters()),
        "batch": len(rows), "prompt_len": len(rows[0]), "new_tokens": n,
        "prefill_s": prefill, "decode_step_s": decode,
        "median_prefill_s": statistics.median(prefill), "median_decode_step_s": step,
        "decode_tokens_per_s": len(rows) / step}))


if __name__ == "__main__":
    main()
