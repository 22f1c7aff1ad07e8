"""An independent LLaMA (causal LM or sequence classification) in plain torch, written
from the spec (../../../shared/spec/llama-bart.md, Hugging Face's semantics).

Parameters live in one ordered {Hugging Face name: tensor} dict; those names are the
contract with Galaxy's checkpoints and with transformers' LlamaForCausalLM /
LlamaForSequenceClassification (LoRA pairs under PEFT's names, flat:
`model.layers.N.self_attn.q_proj.lora_A.weight` [r, in], `...lora_B.weight` [out, r]).
The forward is functional so nothing here depends on transformers' module layout.
"""

import math
import re
from collections import OrderedDict

import torch
import torch.nn.functional as F

import llama_config
from oracle_common import match_params
from llama_data import IGNORE_INDEX


def _layer_prefix(i):
    return f"model.layers.{i}."


def lora_modules(cfg):
    """Full names of the linears LoRA wraps (empty unless use_lora), in layer order."""
    if cfg.get("peft") != "lora":
        return []
    return [
        _layer_prefix(i) + llama_config.LORA_TARGETS[t]
        for i in range(cfg["num_hidden_layers"])
        for t in cfg["lora_target_modules"]
    ]


def param_shapes(cfg):
    """{HF name: shape} in transformers' named_parameters() order (init draws in it).

    Tied embeddings (causal LM, tie_word_embeddings) have no lm_head.weight: the head is
    model.embed_tokens.weight, as in a checkpoint Hugging Face saves.
    """
    V, H, I = cfg["vocab_size"], cfg["hidden_size"], cfg["intermediate_size"]
    n, kv, d = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    s = OrderedDict()
    s["model.embed_tokens.weight"] = (V, H)
    for i in range(cfg["num_hidden_layers"]):
        pre = _layer_prefix(i)
        s[pre + "self_attn.q_proj.weight"] = (n * d, H)
        s[pre + "self_attn.k_proj.weight"] = (kv * d, H)
        s[pre + "self_attn.v_proj.weight"] = (kv * d, H)
        s[pre + "self_attn.o_proj.weight"] = (H, n * d)
        s[pre + "mlp.gate_proj.weight"] = (I, H)
        s[pre + "mlp.up_proj.weight"] = (I, H)
        s[pre + "mlp.down_proj.weight"] = (H, I)
        s[pre + "input_layernorm.weight"] = (H,)
        s[pre + "post_attention_layernorm.weight"] = (H,)
    s["model.norm.weight"] = (H,)
    if cfg["task"] == "classification":
        s["score.weight"] = (cfg["num_classes"], H)
    elif not cfg["tie_word_embeddings"]:
        s["lm_head.weight"] = (V, H)
    if cfg.get("peft") == "lora":
        r = cfg["lora_dim"]
        for mod in lora_modules(cfg):
            out_f, in_f = s[mod + ".weight"]
            s[mod + ".lora_A.weight"] = (r, in_f)
            s[mod + ".lora_B.weight"] = (out_f, r)
    return s


def is_trainable(cfg, name):
    return bool(re.search(llama_config.trainable_regex(cfg), name))


def param_counts(cfg):
    """(total, trainable) element counts (a tied head counted once, as HF counts it)."""
    total = trainable = 0
    for name, shape in param_shapes(cfg).items():
        k = math.prod(shape)
        total += k
        trainable += k if is_trainable(cfg, name) else 0
    return total, trainable


def _is_norm(name):
    return name.endswith("layernorm.weight") or name == "model.norm.weight"


def init_params(cfg, seed, perturb=False):
    """Random parameters.

    perturb=False is Hugging Face's initialization (linears and embeddings normal(0,
    initializer_range), RMSNorm weights 1, LoRA A Kaiming-uniform(a=sqrt 5) =
    U(-1/sqrt(in), 1/sqrt(in)), LoRA B zeros). perturb=True also gives RMSNorm weights
    1 + normal(0, 0.1) and LoRA B normal(0, 0.02), so a test notices a norm weight that
    is dropped or misplaced (ones hide that) and the first steps exercise LoRA A (its
    gradient is proportional to B).
    """
    g = torch.Generator().manual_seed(seed)
    std = cfg["initializer_range"]
    out = OrderedDict()
    for name, shape in param_shapes(cfg).items():
        if name.endswith(".lora_A.weight"):
            bound = 1.0 / math.sqrt(shape[1])
            t = (torch.rand(shape, generator=g, dtype=torch.float32) * 2 - 1) * bound
        elif name.endswith(".lora_B.weight"):
            t = torch.zeros(shape)
            if perturb:
                t = torch.randn(shape, generator=g, dtype=torch.float32) * 0.02
        elif _is_norm(name):
            t = torch.ones(shape)
            if perturb:
                t = t + torch.randn(shape, generator=g, dtype=torch.float32) * 0.1
        else:
            t = torch.randn(shape, generator=g, dtype=torch.float32) * std
        out[name] = t.contiguous()
    return out


def check_params(cfg, tensors, where):
    """Returns the params in canonical order as float32 tensors; errors name the problem.

    With tied embeddings an lm_head.weight equal to model.embed_tokens.weight (what
    transformers' state_dict() holds) is accepted and dropped; rotary inv_freq buffers
    are ignored.
    """
    shapes = param_shapes(cfg)
    tensors = dict(tensors)
    if (
        cfg["task"] == "causal_lm"
        and cfg["tie_word_embeddings"]
        and "lm_head.weight" in tensors
        and "model.embed_tokens.weight" in tensors
    ):
        head = torch.as_tensor(tensors.pop("lm_head.weight"))
        if not torch.equal(head, torch.as_tensor(tensors["model.embed_tokens.weight"])):
            raise ValueError(
                f"{where}: tie_word_embeddings is true but lm_head.weight differs from "
                "model.embed_tokens.weight"
            )
    return match_params(
        shapes, tensors, where, lambda n: n.endswith("rotary_emb.inv_freq")
    )


def rms_norm(x, w, eps):
    """x * rsqrt(mean(x^2) + eps) * w, in float32."""
    xf = x.to(torch.float32)
    return w * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps))


def rope_cos_sin(seq_len, head_dim, theta):
    """cos, sin [S, d] of position * inv_freq, each half repeated (rotate_half layout);
    float32 at the same steps as Hugging Face's rotary embedding."""
    exponents = torch.arange(0, head_dim, 2, dtype=torch.int64).to(torch.float32) / head_dim
    inv_freq = 1.0 / (theta ** exponents)
    angles = torch.arange(seq_len, dtype=torch.float32)[:, None] * inv_freq[None, :]
    emb = torch.cat((angles, angles), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rope(x, cos, sin):
    """x [B, heads, S, d]."""
    return x * cos + rotate_half(x) * sin


def attention_allowed(attention_mask):
    """[B, 1, S, S] bool: query i may attend key j iff j <= i and key j is not padding."""
    S = attention_mask.shape[1]
    causal = torch.ones(S, S, dtype=torch.bool).tril()
    return causal[None, None] & attention_mask.to(torch.bool)[:, None, None, :]


class _Linears:
    """Bias-free linears, with LoRA on the config's targets (dropout 0: dropout(x) = x)."""

    def __init__(self, cfg, p):
        self.p = p
        self.lora = set(lora_modules(cfg))
        self.scale = cfg["lora_alpha"] / cfg["lora_dim"] if self.lora else 0.0

    def __call__(self, x, name):
        p = self.p
        y = F.linear(x, p[name + ".weight"])
        if name in self.lora:
            low = F.linear(F.linear(x, p[name + ".lora_A.weight"]), p[name + ".lora_B.weight"])
            y = y + low * self.scale
        return y


def _attention(cfg, lin, pre, x, cos, sin, allowed):
    B, S, _ = x.shape
    n, kv, d = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    q = lin(x, pre + "q_proj").view(B, S, n, d).transpose(1, 2)
    k = lin(x, pre + "k_proj").view(B, S, kv, d).transpose(1, 2)
    v = lin(x, pre + "v_proj").view(B, S, kv, d).transpose(1, 2)
    q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    # GQA: query head h reads KV head h // (n / kv).
    k = k.repeat_interleave(n // kv, dim=1)
    v = v.repeat_interleave(n // kv, dim=1)
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d)
    scores = scores.masked_fill(~allowed, torch.finfo(torch.float32).min)
    probs = torch.softmax(scores.to(torch.float32), dim=-1)
    ctx = torch.matmul(probs, v).transpose(1, 2).reshape(B, S, n * d)
    return lin(ctx, pre + "o_proj")


def hidden_states(cfg, p, input_ids, attention_mask):
    """The final-norm output [B, S, H] of LlamaModel (dropout off)."""
    S = input_ids.shape[1]
    eps = cfg["rms_norm_eps"]
    lin = _Linears(cfg, p)
    cos, sin = rope_cos_sin(S, cfg["head_dim"], cfg["rope_theta"])
    allowed = attention_allowed(attention_mask)
    # Hugging Face's nn.Embedding(padding_idx=pad_token_id): the pad row gets no gradient.
    x = F.embedding(input_ids, p["model.embed_tokens.weight"], padding_idx=cfg["pad_token_id"])
    for i in range(cfg["num_hidden_layers"]):
        pre = _layer_prefix(i)
        h = rms_norm(x, p[pre + "input_layernorm.weight"], eps)
        x = x + _attention(cfg, lin, pre + "self_attn.", h, cos, sin, allowed)
        h = rms_norm(x, p[pre + "post_attention_layernorm.weight"], eps)
        mlp = lin(F.silu(lin(h, pre + "mlp.gate_proj")) * lin(h, pre + "mlp.up_proj"),
                  pre + "mlp.down_proj")
        x = x + mlp
    return rms_norm(x, p["model.norm.weight"], eps)


def last_token_index(cfg, input_ids):
    """Per row, the last position whose input id is not pad_token_id."""
    S = input_ids.shape[1]
    not_pad = (input_ids != cfg["pad_token_id"]).to(torch.long)
    return (torch.arange(S)[None, :] * not_pad).argmax(dim=-1)


def forward(cfg, p, input_ids, attention_mask):
    """Causal LM: logits [B, S, vocab]. Classification: logits [B, num_classes] of the
    last non-padding token."""
    x = hidden_states(cfg, p, input_ids, attention_mask)
    if cfg["task"] == "classification":
        rows = torch.arange(input_ids.shape[0])
        return F.linear(x, p["score.weight"])[rows, last_token_index(cfg, input_ids)]
    head = p["model.embed_tokens.weight" if cfg["tie_word_embeddings"] else "lm_head.weight"]
    return F.linear(x, head)


def loss_fn(cfg, logits, labels):
    """Causal LM: position s predicts labels[s + 1], -100 ignored, mean over every counted
    target of the batch. Classification: cross-entropy, mean over the rows."""
    if cfg["task"] == "classification":
        return F.cross_entropy(logits, labels)
    V = logits.shape[-1]
    return F.cross_entropy(
        logits[:, :-1].reshape(-1, V).to(torch.float32),
        labels[:, 1:].reshape(-1),
        ignore_index=IGNORE_INDEX,
    )


def num_targets(labels):
    """Counted targets of a causal-LM batch (the loss's denominator)."""
    return int((labels[:, 1:] != IGNORE_INDEX).sum())
