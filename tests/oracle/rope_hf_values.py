"""Hugging Face's RoPE in torch fp32, for tests/conformance/cases.cc (ropeHfCase).

Prints, as a C++ initializer, the output of LlamaRotaryEmbedding + apply_rotary_pos_emb
(transformers' fp32 recipe, re-typed here: inv_freq = 1 / theta^(arange(0, d, 2) / d), the
angle position * inv_freq, cos / sin of it, q * cos + rotate_half(q) * sin) for head_dim 128,
theta 10000, one row q = [1] * 64 + [0] * 64 at position 4095: that row comes out as
[cos a_0..a_63, sin a_0..a_63], so every fp32 angle is checked where fp32 rounding of the
angle matters most (a long sequence). Run with Debian's /usr/bin/python3 (python3-torch):

  /usr/bin/python3 tests/oracle/rope_hf_values.py
"""

import torch

D, THETA, POSITION = 128, 10000.0, 4095


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def hf_rope(q, position_ids, dim, base):
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    inv_freq_expanded = inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
    position_ids_expanded = position_ids[:, None, :].float()
    freqs = (inv_freq_expanded.float() @ position_ids_expanded.float()).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[:, None], emb.sin()[:, None]  # [B, 1, S, d]
    return q * cos + rotate_half(q) * sin


def main():
    q = torch.cat((torch.ones(D // 2), torch.zeros(D // 2)))[None, None, None, :]
    out = hf_rope(q, torch.tensor([[POSITION]]), D, THETA).reshape(-1)
    print(f"// torch {torch.__version__}: tests/oracle/rope_hf_values.py")
    vals = [f"{v:.9g}" for v in out.tolist()]
    for i in range(0, len(vals), 6):
        print("    " + ", ".join(vals[i : i + 6]) + ",")


if __name__ == "__main__":
    main()
