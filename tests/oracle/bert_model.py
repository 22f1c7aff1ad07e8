"""An independent BERT-for-classification in plain torch, written from Galaxy's spec.

Parameters live in one ordered {Hugging Face name: tensor} dict; that naming is the
contract with Galaxy's checkpoints, PEFT tensors included (issue 5's names: LoRA
`P.lora_A.weight`/`P.lora_B.weight`, `...attention.output.adapter.down.weight`,
`side.layer.{i}.attention.self.query.weight`, ...). The forward is functional so nothing
here depends on transformers' module layout.
"""

import math
import re
from collections import OrderedDict

import torch
import torch.nn.functional as F

import bert_config
from oracle_common import match_params


def _layer_prefix(i):
    return f"bert.encoder.layer.{i}."


def _encoder_layer_shapes(s, pre, H, I):
    """Adds the parameters of one BERT encoder layer of width H, FFN I under prefix pre."""
    for m in ("query", "key", "value"):
        s[pre + f"attention.self.{m}.weight"] = (H, H)
        s[pre + f"attention.self.{m}.bias"] = (H,)
    s[pre + "attention.output.dense.weight"] = (H, H)
    s[pre + "attention.output.dense.bias"] = (H,)
    s[pre + "attention.output.LayerNorm.weight"] = (H,)
    s[pre + "attention.output.LayerNorm.bias"] = (H,)
    s[pre + "intermediate.dense.weight"] = (I, H)
    s[pre + "intermediate.dense.bias"] = (I,)
    s[pre + "output.dense.weight"] = (H, I)
    s[pre + "output.dense.bias"] = (H,)
    s[pre + "output.LayerNorm.weight"] = (H,)
    s[pre + "output.LayerNorm.bias"] = (H,)


def lora_modules(cfg):
    """Full names of the linears LoRA wraps (empty unless use_lora), in layer order."""
    if cfg.get("peft") != "lora":
        return []
    return [
        _layer_prefix(i) + bert_config.LORA_TARGETS[t]
        for i in range(cfg["num_hidden_layers"])
        for t in cfg["lora_target_modules"]
    ]


def param_shapes(cfg):
    """{HF name: shape} in a fixed order (the order init draws random numbers in).

    The backbone comes first in the same order for every method, so a method's checkpoint
    holds exactly the full model's tensors for the same seed, plus the method's own.
    """
    V, H, I = cfg["vocab_size"], cfg["hidden_size"], cfg["intermediate_size"]
    P, T, C = cfg["max_position_embeddings"], cfg["type_vocab_size"], cfg["num_classes"]
    L, method = cfg["num_hidden_layers"], cfg.get("peft", "full")
    s = OrderedDict()
    s["bert.embeddings.word_embeddings.weight"] = (V, H)
    s["bert.embeddings.position_embeddings.weight"] = (P, H)
    s["bert.embeddings.token_type_embeddings.weight"] = (T, H)
    s["bert.embeddings.LayerNorm.weight"] = (H,)
    s["bert.embeddings.LayerNorm.bias"] = (H,)
    for i in range(L):
        _encoder_layer_shapes(s, _layer_prefix(i), H, I)
    s["bert.pooler.dense.weight"] = (H, H)
    s["bert.pooler.dense.bias"] = (H,)
    s["classifier.weight"] = (C, H)
    s["classifier.bias"] = (C,)

    if method == "lora":
        r = cfg["lora_dim"]
        for mod in lora_modules(cfg):
            out_f, in_f = s[mod + ".weight"]
            if cfg["fan_in_fan_out"]:  # the checkpoint stores the base weight [in, out]
                s[mod + ".weight"] = (in_f, out_f)
            s[mod + ".lora_A.weight"] = (r, in_f)
            s[mod + ".lora_B.weight"] = (out_f, r)
    elif method == "adapter":
        k = H // cfg["adapter_reduction_dim"]
        for i in range(L):
            for at in ("attention.output.adapter.", "output.adapter."):
                pre = _layer_prefix(i) + at
                s[pre + "down.weight"] = (k, H)
                s[pre + "down.bias"] = (k,)
                s[pre + "up.weight"] = (H, k)
                s[pre + "up.bias"] = (H,)
    elif method == "side":
        f = cfg["side_reduction_factor"]
        Hs, Is = H // f, I // f
        s["side.first_downsample.weight"] = (Hs, H)
        s["side.first_downsample.bias"] = (Hs,)
        for i in range(L):
            s[f"side.downsample.{i}.weight"] = (Hs, H)
            s[f"side.downsample.{i}.bias"] = (Hs,)
        for i in range(L):
            _encoder_layer_shapes(s, f"side.layer.{i}.", Hs, Is)
        s["side.upsample.weight"] = (H, Hs)
        s["side.upsample.bias"] = (H,)
    return s


def is_trainable(cfg, name):
    """The classifier always trains; under PEFT only the method's own tensors join it."""
    return bool(re.search(bert_config.trainable_regex(cfg), name))


def param_counts(cfg):
    """(total, trainable) element counts."""
    total = trainable = 0
    for name, shape in param_shapes(cfg).items():
        n = math.prod(shape)
        total += n
        trainable += n if is_trainable(cfg, name) else 0
    return total, trainable


def init_params(cfg, seed, perturb=False):
    """Random parameters.

    perturb=False is Galaxy's initialization (weights normal(0, initializer_range), biases 0,
    LayerNorm 1/0; LoRA A Kaiming-uniform(a=sqrt 5) = U(-1/sqrt(in), 1/sqrt(in)), LoRA B and
    adapter up zeros). perturb=True also gives biases normal(0, 0.02) and LayerNorm weights
    1 + normal(0, 0.02), so a test comparing against Galaxy notices a bias or gamma that
    is dropped or misplaced (zeros and ones hide such bugs); likewise LoRA B and adapter
    up get normal(0, 0.02), or the first steps would not exercise A and down (their
    gradients are proportional to B and up).
    """
    g = torch.Generator().manual_seed(seed)
    std = cfg["initializer_range"]
    out = OrderedDict()
    for name, shape in param_shapes(cfg).items():
        is_ln = ".LayerNorm." in name
        zero_at_spec = name.endswith(".lora_B.weight") or ".adapter.up." in name
        if name.endswith(".lora_A.weight"):
            bound = 1.0 / math.sqrt(shape[1])
            t = (torch.rand(shape, generator=g, dtype=torch.float32) * 2 - 1) * bound
        elif zero_at_spec:
            t = torch.zeros(shape)
            if perturb:
                t = torch.randn(shape, generator=g, dtype=torch.float32) * 0.02
        elif name.endswith(".weight") and not is_ln:
            t = torch.randn(shape, generator=g, dtype=torch.float32) * std
        elif perturb:
            t = torch.randn(shape, generator=g, dtype=torch.float32) * 0.02
            if is_ln and name.endswith(".weight"):
                t += 1.0
        else:
            one = is_ln and name.endswith(".weight")
            t = torch.ones(shape) if one else torch.zeros(shape)
        out[name] = t.contiguous()
    return out


def check_params(cfg, tensors, where):
    """Returns the params in canonical order as float32 tensors; errors name the problem.

    Non-parameter extras that HF checkpoints carry (e.g. bert.embeddings.position_ids) are
    ignored; any other unknown or missing name is an error.
    """
    shapes = param_shapes(cfg)
    ignorable = {"bert.embeddings.position_ids", "bert.embeddings.token_type_ids"}
    return match_params(shapes, tensors, where, lambda n: n in ignorable)


def _linear(x, p, name):
    return F.linear(x, p[name + ".weight"], p[name + ".bias"])


def _layer_norm(x, p, name, eps):
    return F.layer_norm(
        x, (x.shape[-1],), p[name + ".weight"], p[name + ".bias"], eps
    )


def _gelu(x, act):
    # "gelu" is the exact erf form; "gelu_new" the tanh approximation (HF's names).
    return F.gelu(x, approximate="tanh" if act == "gelu_new" else "none")


def _activation(x, act):
    if act == "relu":
        return F.relu(x)
    if act == "swish":
        return F.silu(x)
    return _gelu(x, act)


class _Method:
    """How one PEFT method changes a dense layer; the backbone forward calls these."""

    def __init__(self, cfg, p):
        self.cfg, self.p = cfg, p
        self.lora = set(lora_modules(cfg))
        self.scale = cfg["lora_alpha"] / cfg["lora_dim"] if self.lora else 0.0

    def linear(self, x, name):
        p = self.p
        if name not in self.lora:
            return _linear(x, p, name)
        w = p[name + ".weight"]
        if self.cfg["fan_in_fan_out"]:
            w = w.t()
        y = F.linear(x, w, p[name + ".bias"])
        # lora_dropout is 0 here (check_no_dropout), so dropout(x) = x.
        low = F.linear(F.linear(x, p[name + ".lora_A.weight"]), p[name + ".lora_B.weight"])
        return y + low * self.scale

    def adapter(self, h, prefix):
        """Houlsby adapter with its skip, after a block's output dense (prefix ends in '.')."""
        if self.cfg.get("peft") != "adapter":
            return h
        act = self.cfg["non_linearity"]
        down = _activation(_linear(h, self.p, prefix + "adapter.down"), act)
        return h + _linear(down, self.p, prefix + "adapter.up")


def _encoder_layer(cfg, p, pre, x, add_mask, method):
    """One post-LN BERT layer; its width is x's last dim, the head count the config's."""
    B, S, H = x.shape
    n = cfg["num_attention_heads"]
    d = H // n
    eps = cfg["layer_norm_eps"]

    def heads(t):  # [B,S,H] -> [B,n,S,d]
        return t.view(B, S, n, d).transpose(1, 2)

    q = heads(method.linear(x, pre + "attention.self.query"))
    k = heads(method.linear(x, pre + "attention.self.key"))
    v = heads(method.linear(x, pre + "attention.self.value"))
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d) + add_mask
    probs = torch.softmax(scores, dim=-1)
    ctx = torch.matmul(probs, v).transpose(1, 2).reshape(B, S, H)
    att = method.linear(ctx, pre + "attention.output.dense")
    att = method.adapter(att, pre + "attention.output.")
    h1 = _layer_norm(att + x, p, pre + "attention.output.LayerNorm", eps)
    mid = _gelu(method.linear(h1, pre + "intermediate.dense"), cfg["hidden_act"])
    mlp = method.linear(mid, pre + "output.dense")
    mlp = method.adapter(mlp, pre + "output.")
    return _layer_norm(mlp + h1, p, pre + "output.LayerNorm", eps)


def forward(cfg, p, input_ids, attention_mask, token_type_ids):
    """Logits [B, num_classes] of BertForSequenceClassification (+ the config's PEFT
    method) with dropout off."""
    S = input_ids.shape[1]
    eps = cfg["layer_norm_eps"]
    method = _Method(cfg, p)
    plain = _Method({}, p)  # the side network has no LoRA or adapters

    x = (
        p["bert.embeddings.word_embeddings.weight"][input_ids]
        + p["bert.embeddings.position_embeddings.weight"][:S].unsqueeze(0)
        + p["bert.embeddings.token_type_embeddings.weight"][token_type_ids]
    )
    x = _layer_norm(x, p, "bert.embeddings.LayerNorm", eps)

    # (1 - mask) * -10000 broadcast over heads and query positions.
    add_mask = (1.0 - attention_mask.to(torch.float32))[:, None, None, :] * -10000.0

    side = cfg.get("peft") == "side"
    if side:  # ladder side network fed by the embedding output and each layer's output
        s = _linear(x, p, "side.first_downsample")
    for i in range(cfg["num_hidden_layers"]):
        x = _encoder_layer(cfg, p, _layer_prefix(i), x, add_mask, method)
        if side:
            s = s + _linear(x, p, f"side.downsample.{i}")
            s = _encoder_layer(cfg, p, f"side.layer.{i}.", s, add_mask, plain)
    if side:
        x = x + _linear(s, p, "side.upsample")

    pooled = torch.tanh(_linear(x[:, 0], p, "bert.pooler.dense"))
    return _linear(pooled, p, "classifier")


def loss_fn(logits, labels):
    return F.cross_entropy(logits, labels)  # mean over the batch
