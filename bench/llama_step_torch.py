#!/usr/bin/env python3
"""Hugging Face baseline for bench/llama_step.sh: the LLaMA causal-LM training step.

  llama_step_torch.py CONFIG DATA.jsonl --mode eager|compile --steps N --warmup W
                      [--threads 2]

transformers' LlamaForCausalLM built from a LlamaConfig with the Galaxy config's sizes
(random initialisation, attn_implementation "eager"), fp32; each step: forward with
labels = input_ids (Hugging Face shifts them and means the loss over every target
token), backward, SGD step. `--mode compile` runs the model through torch.compile
(default mode: forward and backward compiled by Inductor; the SGD step stays eager).
The warm-up steps are untimed; under compile they include compilation, whose time is
reported apart. Prints one JSON line: versions, threads, every timed step and the
median.
"""

import argparse
import json
import statistics
import sys
import time

import torch
import transformers


def llama_config(cfg):
    return transformers.LlamaConfig(
        vocab_size=cfg["vocab_size"],
        hidden_size=cfg["hidden_size"],
        intermediate_size=cfg["intermediate_size"],
        num_hidden_layers=cfg["num_hidden_layers"],
        num_attention_heads=cfg["num_attention_heads"],
        num_key_value_heads=cfg.get("num_key_value_heads", cfg["num_attention_heads"]),
        max_position_embeddings=cfg.get("max_position_embeddings", 2048),
        rms_norm_eps=cfg.get("rms_norm_eps", 1e-6),
        rope_theta=cfg.get("rope_theta", 10000.0),
        hidden_act=cfg.get("hidden_act", "silu"),
        initializer_range=cfg.get("initializer_range", 0.02),
        tie_word_embeddings=cfg.get("tie_word_embeddings", False),
        pad_token_id=cfg.get("pad_token_id", 0),
        attention_bias=cfg.get("attention_bias", False),
        mlp_bias=cfg.get("mlp_bias", False),
        attn_implementation="eager",
        use_cache=False,
    )


def load_rows(path, seq):
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            ids = json.loads(line)["input_ids"]
            if len(ids) != seq:
                sys.exit(f"{path}:{n}: {len(ids)} ids, expected full-length rows of {seq}")
            rows.append(ids)
    return torch.tensor(rows, dtype=torch.long)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("config")
    ap.add_argument("data")
    ap.add_argument("--mode", choices=("eager", "compile"), default="eager")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    cfg = json.load(open(args.config))
    if cfg.get("optimizer", "sgd") != "sgd":
        sys.exit("llama_step_torch.py: only the SGD configs of the benchmark are supported")
    torch.manual_seed(cfg.get("seed", 42))
    model = transformers.LlamaForCausalLM(llama_config(cfg)).to(torch.float32)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=cfg["learning_rate"],
                          weight_decay=cfg.get("weight_decay", 0.0))
    run = torch.compile(model) if args.mode == "compile" else model

    rows = load_rows(args.data, cfg["pad_size"])
    B = cfg["batch_size"]
    times, losses = [], []
    for s in range(args.warmup + args.steps):
        idx = [(s * B + i) % len(rows) for i in range(B)]
        ids = rows[idx]
        mask = torch.ones_like(ids)
        t0 = time.perf_counter()
        loss = run(input_ids=ids, attention_mask=mask, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()  # torch's default (set_to_none=True), as HF's Trainer does
        times.append(time.perf_counter() - t0)
        losses.append(loss.item())
    timed = times[args.warmup:]
    print(json.dumps({
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "mode": args.mode,
        "threads": torch.get_num_threads(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "warmup_s": times[:args.warmup],
        "step_s": timed,
        "median_s": statistics.median(timed),
        "first_loss": losses[0],
        "last_loss": losses[-1],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
