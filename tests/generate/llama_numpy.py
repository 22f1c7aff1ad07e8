#!/usr/bin/python3
"""An independent LLaMA forward in numpy (float64), as Hugging Face's LlamaForCausalLM
computes it, to check Galaxy's causal-LM evaluation and greedy generation in CI.

  llama_numpy.py BUILD_DIR [--keep DIR]

Compiles the tiny LLaMA of tests/equiv/llama_case.py serially (batch 2, initializer_range
0.3, RMSNorm weights from the seeded init), saves Galaxy's seeded weights with
`galaxy-run --save`, and compares with this file's forward:
  - `--eval` on 7 rows (batch 2: the last batch wraps around, its extra row must not be
    scored; one row ignores a prompt part with -100): the number of targets, the mean
    token loss and the perplexity (rtol 1e-5);
  - `--generate` (the KV-cache programs) on prompts of different lengths: every greedy
    token.
Needs numpy only. Exit 0 equal, 1 different.
"""

import json
import math
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "equiv"))
sys.path.insert(0, os.path.join(HERE, "..", "oracle"))

import numpy as np  # noqa: E402

import harness  # noqa: E402
import llama_case  # noqa: E402
import safetensors_io  # noqa: E402

PROMPTS = [[5, 17, 42], [1, 9], [88, 3, 3, 70, 21, 11, 64, 2, 40], [33], [7, 8, 9, 10, 11]]
MAX_NEW = 6


def rms(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def rope(x, theta):  # x [n, S, d], positions 0..S-1
    d = x.shape[-1]
    inv = 1.0 / theta ** (np.arange(0, d, 2, dtype=np.float64) / d)
    ang = np.arange(x.shape[1])[:, None] * inv[None, :]
    cos, sin = np.cos(np.concatenate([ang, ang], -1)), np.sin(np.concatenate([ang, ang], -1))
    rot = np.concatenate([-x[..., d // 2:], x[..., : d // 2]], -1)
    return x * cos + rot * sin


def forward(w, c, ids):
    """Logits [S, V] of one unpadded row."""
    H, N = c["hidden_size"], c["num_attention_heads"]
    NK, d, eps = c["num_key_value_heads"], H // N, c["rms_norm_eps"]
    S = len(ids)
    h = w["model.embed_tokens.weight"][ids]
    causal = np.triu(np.full((S, S), -np.inf), 1)
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        n = rms(h, w[p + "input_layernorm.weight"], eps)

        def heads(name, k):
            return (n @ w[p + f"self_attn.{name}.weight"].T).reshape(S, k, d).transpose(1, 0, 2)
        q = rope(heads("q_proj", N), c["rope_theta"])
        k = np.repeat(rope(heads("k_proj", NK), c["rope_theta"]), N // NK, axis=0)
        v = np.repeat(heads("v_proj", NK), N // NK, axis=0)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(d) + causal
        s = np.exp(s - s.max(-1, keepdims=True))
        ctx = (s / s.sum(-1, keepdims=True)) @ v
        h = h + ctx.transpose(1, 0, 2).reshape(S, H) @ w[p + "self_attn.o_proj.weight"].T
        n = rms(h, w[p + "post_attention_layernorm.weight"], eps)
        g = n @ w[p + "mlp.gate_proj.weight"].T
        u = n @ w[p + "mlp.up_proj.weight"].T
        h = h + (g / (1 + np.exp(-g)) * u) @ w[p + "mlp.down_proj.weight"].T
    n = rms(h, w["model.norm.weight"], eps)
    return n @ w["lm_head.weight"].T


def fail(msg):
    print(f"llama_numpy.py: {msg}")
    sys.exit(1)


def main():
    return harness.script_main("llama_numpy.py", "galaxy-llama-numpy.", check)


def check(work, galaxyc, galaxy_run):
    def p(name):
        return os.path.join(work, name)

    c = llama_case.config("sgd")
    c.update(batch_size=2, initializer_range=0.3)
    with open(p("c.json"), "w") as f:
        json.dump(c, f)
    eval_rows = [{"input_ids": ids} for ids in PROMPTS] + [
        {"input_ids": [4, 50, 60, 70, 80, 90], "labels": [-100, -100, -100, 70, 80, 90]},
        {"input_ids": list(range(10, 26))}]  # a full row of pad_size 16
    with open(p("eval.jsonl"), "w") as f:
        for row in eval_rows:
            f.write(json.dumps(row) + "\n")
    harness.write_prompts(p("prompts.jsonl"), PROMPTS)
    subprocess.run([galaxyc, p("c.json"), "-o", p("plan"), "--emit", "none"], check=True)
    subprocess.run([galaxy_run, p("plan"), "--seed", "5", "--eval", p("eval.jsonl"),
                    "--eval-out", p("eval.json"), "--save", p("w.safetensors"),
                    "--generate", p("prompts.jsonl"), "--max-new-tokens", str(MAX_NEW),
                    "--output", p("out.jsonl")], check=True)
    w = {k: v.astype(np.float64) for k, v in safetensors_io.load(p("w.safetensors")).items()}

    total, targets = 0.0, 0
    for row in eval_rows:
        ids = row["input_ids"]
        labels = row.get("labels", ids)
        logits = forward(w, c, ids)
        for s in range(len(ids) - 1):
            if labels[s + 1] == -100:
                continue
            l = logits[s]
            total += np.log(np.exp(l - l.max()).sum()) + l.max() - l[labels[s + 1]]
            targets += 1
    want_loss = total / targets
    with open(p("eval.json")) as f:
        got = json.load(f)
    status = 0
    print(f"eval: galaxy loss {got['loss']:.7f} perplexity {got['perplexity']:.5f} over "
          f"{got['targets']} targets; numpy {want_loss:.7f} {math.exp(want_loss):.5f} over "
          f"{targets}")
    if got["targets"] != targets or not math.isclose(got["loss"], want_loss, rel_tol=1e-5) \
            or not math.isclose(got["perplexity"], math.exp(want_loss), rel_tol=1e-5):
        print("DIFFERENT: evaluation")
        status = 1

    want = []
    for ids in PROMPTS:
        seq = list(ids)
        for _ in range(MAX_NEW):
            seq.append(int(forward(w, c, seq)[-1].argmax()))
        want.append(seq[len(ids):])
    with open(p("out.jsonl")) as f:
        gen = [json.loads(line)["generated_ids"] for line in f]
    print(f"generate: galaxy {gen}\n          numpy  {want}")
    if gen != want:
        print("DIFFERENT: generation")
        status = 1
    print("llama_numpy.py: " + ("equal" if status == 0 else "DIFFERENT"))
    return status


if __name__ == "__main__":
    sys.exit(main())
