"""Galaxy config JSON for the BERT oracle: defaults and the checks the oracle needs.

The keys and defaults are Galaxy's (the prototype's keys, unchanged). The oracle only
models the serial, full-fine-tuning, dropout-free program, so it refuses configs that ask
for anything else rather than silently computing something different.
"""

import json

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
    # PEFT (the oracle supports only full fine-tuning)
    "full_model": True,
    "use_lora": False,
    "use_adapter": False,
    "use_side": False,
    "use_side_only": False,
}

_INT_KEYS = (
    "vocab_size hidden_size num_hidden_layers num_attention_heads intermediate_size "
    "max_position_embeddings type_vocab_size num_classes pad_token_id batch_size "
    "pad_size seed"
).split()
_FLOAT_KEYS = (
    "hidden_dropout_prob attention_probs_dropout_prob layer_norm_eps initializer_range "
    "learning_rate weight_decay adam_beta1 adam_beta2 adam_epsilon"
).split()


class ConfigError(ValueError):
    pass


def load_config(path):
    """Reads a Galaxy config JSON and returns a dict with every default filled in."""
    try:
        with open(path) as f:
            raw = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: cannot read config: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the config must be a JSON object")
    return resolve(raw, path)


def resolve(raw, where="config"):
    cfg = dict(DEFAULTS)
    cfg.update(raw)
    for k in _INT_KEYS:
        v = cfg[k]
        if isinstance(v, bool) or not isinstance(v, int):
            raise ConfigError(f"{where}: '{k}' must be an integer, got {v!r}")
    for k in _FLOAT_KEYS:
        v = cfg[k]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"{where}: '{k}' must be a number, got {v!r}")
        cfg[k] = float(v)
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
    for k in ("use_lora", "use_adapter", "use_side", "use_side_only"):
        if cfg[k]:
            raise ConfigError(
                f"{where}: '{k}' is true; the oracle models full fine-tuning only "
                "(set it false)"
            )
    return cfg


def check_no_dropout(cfg, where="config"):
    """The oracle compares with dropout off; a nonzero rate would make it diverge."""
    for k in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        if cfg[k] != 0.0:
            raise ConfigError(
                f"{where}: '{k}' is {cfg[k]}; the oracle runs without dropout, set it to 0"
            )
