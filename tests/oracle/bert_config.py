"""Galaxy config JSON for the BERT oracle: defaults and the checks the oracle needs.

The keys and defaults are Galaxy's (the prototype's keys, unchanged). The oracle models
the serial, dropout-free program with full fine-tuning or one PEFT method (LoRA, adapter,
side-tuning; side-only computes what side-tuning computes, so it is modelled as such). It
refuses configs that ask for anything else rather than silently computing something
different.
"""

from oracle_common import (  # noqa: F401  (ConfigError is part of this module's API)
    ConfigError,
    check_types,
    check_zero,
    read_json_object,
    read_lora_dim,
)

DEFAULTS = {
    # model
    "vocab_size": 21128,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "layer_norm_eps": 1e-12,
    "initializer_range": 0.02,
    "hidden_act": "gelu",
    "num_classes": 10,
    "pad_token_id": 0,
    "model_type": "bert",
    # training
    "batch_size": 4,
    "pad_size": 32,
    "learning_rate": 5e-5,
    "optimizer": "sgd",
    "weight_decay": 0.0,
    "adam_beta1": 0.9,
    "adam_beta2": 0.999,
    "adam_epsilon": 1e-8,
    "num_epochs": 3,
    "seed": 42,
    # PEFT: exactly one method (a file that turns one on without naming full_model
    # means "not full", as in Galaxy's parser)
    "full_model": True,
    "use_lora": False,
    "lora_dim": 8,
    "lora_alpha": 32.0,
    "lora_dropout": 0.1,
    "lora_target_modules": ["query", "value"],
    "fan_in_fan_out": False,
    "merge_weights": False,
    "use_adapter": False,
    "adapter_reduction_dim": 16,
    "non_linearity": "gelu_new",
    "use_side": False,
    "use_side_only": False,
    "side_reduction_factor": 8,
}

# lora_target_modules entry -> the module it names inside bert.encoder.layer.{i}.
LORA_TARGETS = {
    "query": "attention.self.query",
    "key": "attention.self.key",
    "value": "attention.self.value",
    "attention_output": "attention.output.dense",
    "intermediate": "intermediate.dense",
    "output": "output.dense",
}
ADAPTER_ACTIVATIONS = ("gelu_new", "gelu", "relu", "swish")
_METHOD_KEYS = ("use_lora", "use_adapter", "use_side", "use_side_only")

_INT_KEYS = (
    "vocab_size hidden_size num_hidden_layers num_attention_heads intermediate_size "
    "max_position_embeddings type_vocab_size num_classes pad_token_id batch_size "
    "pad_size seed lora_dim adapter_reduction_dim side_reduction_factor"
).split()
_FLOAT_KEYS = (
    "hidden_dropout_prob attention_probs_dropout_prob layer_norm_eps initializer_range "
    "learning_rate weight_decay adam_beta1 adam_beta2 adam_epsilon lora_alpha lora_dropout"
).split()
_BOOL_KEYS = (
    "full_model use_lora use_adapter use_side use_side_only fan_in_fan_out merge_weights"
).split()


def load_config(path):
    """Reads a Galaxy config JSON and returns a dict with every default filled in."""
    return resolve(read_json_object(path), path)


def resolve(raw, where="config"):
    cfg = dict(DEFAULTS)
    cfg.update(raw)
    read_lora_dim(raw, cfg, where)
    if "full_model" not in raw and any(cfg[k] is True for k in _METHOD_KEYS):
        cfg["full_model"] = False
    check_types(cfg, where, _INT_KEYS, _FLOAT_KEYS, _BOOL_KEYS)
    if cfg["model_type"] != "bert":
        raise ConfigError(
            f"{where}: model_type is {cfg['model_type']!r}; this oracle models 'bert' only"
        )
    if cfg["hidden_act"] not in ("gelu", "gelu_new"):
        raise ConfigError(
            f"{where}: hidden_act {cfg['hidden_act']!r} is not 'gelu' or 'gelu_new'"
        )
    h, n = cfg["hidden_size"], cfg["num_attention_heads"]
    if n <= 0 or h % n:
        raise ConfigError(
            f"{where}: hidden_size {h} is not divisible by num_attention_heads {n}"
        )
    if cfg["pad_size"] > cfg["max_position_embeddings"]:
        raise ConfigError(
            f"{where}: pad_size {cfg['pad_size']} exceeds max_position_embeddings "
            f"{cfg['max_position_embeddings']}"
        )
    cfg["peft"] = _peft_method(cfg, where)
    _check_peft_values(cfg, where)
    return cfg



def _peft_method(cfg, where):
    """'full', 'lora', 'adapter' or 'side' (side-only computes side-tuning's maths)."""
    on = [k for k in ("full_model", "use_lora", "use_adapter") if cfg[k]]
    if cfg["use_side"] or cfg["use_side_only"]:  # side_only refines side: one method
        on.append("use_side_only" if cfg["use_side_only"] else "use_side")
    if len(on) > 1:
        raise ConfigError(f"{where}: {on} are all true; turn on exactly one PEFT method")
    if not on:
        return "full"
    return {"full_model": "full", "use_lora": "lora", "use_adapter": "adapter"}.get(
        on[0], "side"
    )


def _check_peft_values(cfg, where):
    method, H = cfg["peft"], cfg["hidden_size"]
    for k in ("lora_dim", "adapter_reduction_dim", "side_reduction_factor"):
        if cfg[k] <= 0:
            raise ConfigError(f"{where}: '{k}' is {cfg[k]}; it must be positive")
    if not cfg["lora_alpha"] > 0:
        raise ConfigError(f"{where}: lora_alpha {cfg['lora_alpha']} must be positive")
    if not 0.0 <= cfg["lora_dropout"] < 1.0:
        raise ConfigError(f"{where}: lora_dropout {cfg['lora_dropout']} is outside [0, 1)")
    targets = cfg["lora_target_modules"]
    if not isinstance(targets, list) or any(t not in LORA_TARGETS for t in targets):
        raise ConfigError(
            f"{where}: lora_target_modules {targets!r} must list entries of "
            f"{sorted(LORA_TARGETS)}"
        )
    if len(set(targets)) != len(targets):
        raise ConfigError(f"{where}: lora_target_modules {targets} repeats an entry")
    if method == "lora" and not targets:
        raise ConfigError(f"{where}: use_lora is true but lora_target_modules is empty")
    if cfg["non_linearity"] not in ADAPTER_ACTIVATIONS:
        raise ConfigError(
            f"{where}: non_linearity {cfg['non_linearity']!r} is not one of "
            f"{list(ADAPTER_ACTIVATIONS)}"
        )
    k = cfg["adapter_reduction_dim"]
    if method == "adapter" and H % k:
        raise ConfigError(
            f"{where}: hidden_size {H} is not divisible by adapter_reduction_dim {k}"
        )
    f = cfg["side_reduction_factor"]
    if method == "side":
        I, n = cfg["intermediate_size"], cfg["num_attention_heads"]
        if H % f or I % f:
            raise ConfigError(
                f"{where}: side_reduction_factor {f} must divide hidden_size {H} and "
                f"intermediate_size {I}"
            )
        if (H // f) % n:
            raise ConfigError(
                f"{where}: the side width hidden_size / side_reduction_factor = {H // f} "
                f"is not divisible by num_attention_heads {n} (the side network keeps "
                "the head count)"
            )


# What each method trains besides the classifier (issue 5's names).
_METHOD_TRAINABLE = {
    "full": r".",
    "lora": r"\.lora_[AB]\.weight$",
    "adapter": r"\.adapter\.(down|up)\.(weight|bias)$",
    "side": r"^side\.",
}


def trainable_regex(cfg):
    """A regex that matches exactly the trainable parameter names of the config's method;
    everything else (the pooler included) is frozen under PEFT."""
    method = cfg.get("peft", "full")
    return _METHOD_TRAINABLE[method] if method == "full" else (
        r"^classifier\.|" + _METHOD_TRAINABLE[method]
    )


def check_no_dropout(cfg, where="config"):
    """The oracle compares with dropout off; a nonzero rate would make it diverge."""
    keys = ["hidden_dropout_prob", "attention_probs_dropout_prob"]
    if cfg["peft"] == "lora":
        keys.append("lora_dropout")
    check_zero(cfg, keys, where)
