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

import sys

import torch
import transformers

import hf_step


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


def main(argv=None):
    args = hf_step.parse_args(__doc__, 10, argv)
    cfg = hf_step.load_config(args)
    if cfg.get("optimizer", "sgd") != "sgd":
        sys.exit("llama_step_torch.py: only the SGD configs of the benchmark are supported")
    model = transformers.LlamaForCausalLM(llama_config(cfg)).to(torch.float32)
    opt = torch.optim.SGD(model.parameters(), lr=cfg["learning_rate"],
                          weight_decay=cfg.get("weight_decay", 0.0))

    rows = torch.tensor([r["input_ids"] for r in hf_step.full_rows(args.data, cfg["pad_size"])],
                        dtype=torch.long)

    def inputs(idx):
        ids = rows[idx]
        return dict(input_ids=ids, attention_mask=torch.ones_like(ids), labels=ids)

    hf_step.run_steps(args, model, opt, len(rows), cfg["batch_size"], inputs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
