"""An independent BERT-for-classification in plain torch, written from Galaxy's spec.

Parameters live in one ordered {Hugging Face name: tensor} dict; that naming is the
contract with Galaxy's checkpoints. The forward is functional so nothing here depends on
transformers' module layout.
"""

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F


def _layer_prefix(i):
    return f"bert.encoder.layer.{i}."


def param_shapes(cfg):
    """{HF name: shape} in a fixed order (the order init draws random numbers in)."""
    V, H, I = cfg["vocab_size"], cfg["hidden_size"], cfg["intermediate_size"]
    P, T, C = cfg["max_position_embeddings"], cfg["type_vocab_size"], cfg["num_classes"]
    s = OrderedDict()
    s["bert.embeddings.word_embeddings.weight"] = (V, H)
    s["bert.embeddings.position_embeddings.weight"] = (P, H)
    s["bert.embeddings.token_type_embeddings.weight"] = (T, H)
    s["bert.embeddings.LayerNorm.weight"] = (H,)
    s["bert.embeddings.LayerNorm.bias"] = (H,)
    for i in range(cfg["num_hidden_layers"]):
        p = _layer_prefix(i)
        for m in ("query", "key", "value"):
            s[p + f"attention.self.{m}.weight"] = (H, H)
            s[p + f"attention.self.{m}.bias"] = (H,)
        s[p + "attention.output.dense.weight"] = (H, H)
        s[p + "attention.output.dense.bias"] = (H,)
        s[p + "attention.output.LayerNorm.weight"] = (H,)
        s[p + "attention.output.LayerNorm.bias"] = (H,)
        s[p + "intermediate.dense.weight"] = (I, H)
        s[p + "intermediate.dense.bias"] = (I,)
        s[p + "output.dense.weight"] = (H, I)
        s[p + "output.dense.bias"] = (H,)
        s[p + "output.LayerNorm.weight"] = (H,)
        s[p + "output.LayerNorm.bias"] = (H,)
    s["bert.pooler.dense.weight"] = (H, H)
    s["bert.pooler.dense.bias"] = (H,)
    s["classifier.weight"] = (C, H)
    s["classifier.bias"] = (C,)
    return s


def init_params(cfg, seed, perturb=False):
    """Random parameters.

    perturb=False is Galaxy's initialization (weights normal(0, initializer_range), biases 0,
    LayerNorm 1/0). perturb=True also gives biases normal(0, 0.02) and LayerNorm weights
    1 + normal(0, 0.02), so a test comparing against Galaxy notices a bias or gamma that
    is dropped or misplaced (zeros and ones hide such bugs).
    """
    g = torch.Generator().manual_seed(seed)
    std = cfg["initializer_range"]
    out = OrderedDict()
    for name, shape in param_shapes(cfg).items():
        is_ln = ".LayerNorm." in name
        if name.endswith(".weight") and not is_ln:
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
    missing = [n for n in shapes if n not in tensors]
    extra = [n for n in tensors if n not in shapes and n not in ignorable]
    if missing or extra:
        raise ValueError(
            f"{where}: parameter names do not match the config "
            f"(missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {extra[:5]}{'...' if len(extra) > 5 else ''}); "
            "was it written for another config?"
        )
    out = OrderedDict()
    for name, shape in shapes.items():
        t = torch.as_tensor(tensors[name])
        if tuple(t.shape) != tuple(shape):
            raise ValueError(
                f"{where}: '{name}' has shape {list(t.shape)}, the config needs {list(shape)}"
            )
        out[name] = t.to(torch.float32).clone().contiguous()
    return out


def _linear(x, p, name):
    return F.linear(x, p[name + ".weight"], p[name + ".bias"])


def _layer_norm(x, p, name, eps):
    return F.layer_norm(
        x, (x.shape[-1],), p[name + ".weight"], p[name + ".bias"], eps
    )


def _gelu(x, act):
    # "gelu" is the exact erf form; "gelu_new" the tanh approximation (HF's names).
    return F.gelu(x, approximate="tanh" if act == "gelu_new" else "none")


def forward(cfg, p, input_ids, attention_mask, token_type_ids):
    """Logits [B, num_classes] of BertForSequenceClassification with dropout off."""
    B, S = input_ids.shape
    H, n = cfg["hidden_size"], cfg["num_attention_heads"]
    d = H // n
    eps = cfg["layer_norm_eps"]

    x = (
        p["bert.embeddings.word_embeddings.weight"][input_ids]
        + p["bert.embeddings.position_embeddings.weight"][:S].unsqueeze(0)
        + p["bert.embeddings.token_type_embeddings.weight"][token_type_ids]
    )
    x = _layer_norm(x, p, "bert.embeddings.LayerNorm", eps)

    # (1 - mask) * -10000 broadcast over heads and query positions.
    add_mask = (1.0 - attention_mask.to(torch.float32))[:, None, None, :] * -10000.0

    def heads(t):  # [B,S,H] -> [B,n,S,d]
        return t.view(B, S, n, d).transpose(1, 2)

    for i in range(cfg["num_hidden_layers"]):
        pre = _layer_prefix(i)
        q = heads(_linear(x, p, pre + "attention.self.query"))
        k = heads(_linear(x, p, pre + "attention.self.key"))
        v = heads(_linear(x, p, pre + "attention.self.value"))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d) + add_mask
        probs = torch.softmax(scores, dim=-1)
        ctx = torch.matmul(probs, v).transpose(1, 2).reshape(B, S, H)
        att = _linear(ctx, p, pre + "attention.output.dense")
        h1 = _layer_norm(att + x, p, pre + "attention.output.LayerNorm", eps)
        mid = _gelu(_linear(h1, p, pre + "intermediate.dense"), cfg["hidden_act"])
        mlp = _linear(mid, p, pre + "output.dense")
        x = _layer_norm(mlp + h1, p, pre + "output.LayerNorm", eps)

    pooled = torch.tanh(_linear(x[:, 0], p, "bert.pooler.dense"))
    return _linear(pooled, p, "classifier")


def loss_fn(logits, labels):
    return F.cross_entropy(logits, labels)  # mean over the batch
