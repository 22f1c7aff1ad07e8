"""Galaxy config JSON for the LLaMA oracle: defaults and the checks the oracle needs.

Model keys are Hugging Face's LlamaConfig keys with its defaults (pad_token_id excepted:
Galaxy pads batches, so it needs one; 0 as in the reference semantics). Galaxy's own keys
say what to train: "task" ("causal_lm" or "classification" with num_classes), pad_size,
batch_size, the optimizer, and LoRA (the only PEFT method modelled here for LLaMA). The
oracle refuses what it does not model (biases, rope_scaling, dropout, other PEFT
methods) rather than silently computing something else.
"""

from oracle_common import (  # noqa: F401  (ConfigError is part of this module's API)
    ConfigError,
    check_types,
    check_zero,
    read_json_object,
    read_lora_dim,
)

DEFAULTS = {
    # model (Hugging Face's LlamaConfig defaults)
    "model_type": "llama",
    "vocab_size": 32000,
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": None,  # None: num_attention_heads (no GQA)
    "head_dim": None,  # None: hidden_size / num_attention_heads
    "hidden_act": "silu",
    "max_position_embeddings": 2048,
    "initializer_range": 0.02,
    "rms_norm_eps": 1e-6,
    "rope_theta": 10000.0,
    "rope_scaling": None,
    "attention_bias": False,
    "mlp_bias": False,
    "attention_dropout": 0.0,
    "tie_word_embeddings": False,
    "pad_token_id": 0,
    # task
    "task": "causal_lm",
    "num_classes": 10,
    # training
    "batch_size": 4,
    "pad_size": 32,
    "learning_rate": 5e-5,
    "optimizer": "sgd",
    "weight_decay": 0.0,
    "adam_beta1": 0.9,
    "adam_beta2": 0.999,
    "adam_epsilon": 1e-8,
    "seed": 42,
    # PEFT: full fine-tuning or LoRA on Hugging Face PEFT's module names
    "full_model": True,
    "use_lora": False,
    "lora_dim": 8,
    "lora_alpha": 32.0,
    "lora_dropout": 0.1,
    "lora_target_modules": ["q_proj", "v_proj"],
    "fan_in_fan_out": False,
}

# lora_target_modules entry -> the module it names inside model.layers.{i}.
LORA_TARGETS = {
    "q_proj": "self_attn.q_proj",
    "k_proj": "self_attn.k_proj",
    "v_proj": "self_attn.v_proj",
    "o_proj": "self_attn.o_proj",
    "gate_proj": "mlp.gate_proj",
    "up_proj": "mlp.up_proj",
    "down_proj": "mlp.down_proj",
}
TASKS = ("causal_lm", "classification")

_INT_KEYS = (
    "vocab_size hidden_size intermediate_size num_hidden_layers num_attention_heads "
    "num_key_value_heads head_dim max_position_embeddings pad_token_id num_classes "
    "batch_size pad_size seed lora_dim"
).split()
_FLOAT_KEYS = (
    "initializer_range rms_norm_eps rope_theta attention_dropout learning_rate "
    "weight_decay adam_beta1 adam_beta2 adam_epsilon lora_alpha lora_dropout"
).split()
_BOOL_KEYS = (
    "attention_bias mlp_bias tie_word_embeddings full_model use_lora fan_in_fan_out"
).split()
# PEFT methods Galaxy has for BERT that this oracle does not model for LLaMA.
_OTHER_METHODS = ("use_adapter", "use_side", "use_side_only")


def load_config(path):
    """Reads a Galaxy config JSON and returns a dict with every default filled in."""
    return resolve(read_json_object(path), path)


def resolve(raw, where="config"):
    cfg = dict(DEFAULTS)
    cfg.update(raw)
    if cfg["model_type"] != "llama":
        raise ConfigError(
            f"{where}: model_type is {cfg['model_type']!r}; this oracle models 'llama' only"
        )
    read_lora_dim(raw, cfg, where)
    if cfg["num_key_value_heads"] is None:
        cfg["num_key_value_heads"] = cfg["num_attention_heads"]
    if cfg["head_dim"] is None and cfg["num_attention_heads"]:
        cfg["head_dim"] = cfg["hidden_size"] // cfg["num_attention_heads"]
    if "full_model" not in raw and cfg["use_lora"] is True:
        cfg["full_model"] = False
    check_types(cfg, where, _INT_KEYS, _FLOAT_KEYS, _BOOL_KEYS)
    _check_model(cfg, where)
    cfg["peft"] = _peft_method(cfg, raw, where)
    _check_lora(cfg, where)
    return cfg


def _check_model(cfg, where):
    if cfg["task"] not in TASKS:
        raise ConfigError(f"{where}: task {cfg['task']!r} is not one of {list(TASKS)}")
    for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
              "num_attention_heads", "num_key_value_heads", "head_dim", "batch_size",
              "pad_size"):
        if cfg[k] <= 0:
            raise ConfigError(f"{where}: '{k}' is {cfg[k]}; it must be positive")
    n, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    if n % kv:
        raise ConfigError(
            f"{where}: num_attention_heads {n} is not a multiple of num_key_value_heads {kv}"
        )
    if cfg["head_dim"] % 2:
        raise ConfigError(f"{where}: head_dim {cfg['head_dim']} must be even (RoPE)")
    if cfg["hidden_act"] != "silu":
        raise ConfigError(f"{where}: hidden_act {cfg['hidden_act']!r} is not 'silu'")
    if cfg["rope_scaling"] is not None:
        raise ConfigError(f"{where}: rope_scaling is not modelled; leave it null")
    for k in ("attention_bias", "mlp_bias"):
        if cfg[k]:
            raise ConfigError(f"{where}: '{k}' is true; the oracle models LLaMA without biases")
    if not 0 <= cfg["pad_token_id"] < cfg["vocab_size"]:
        raise ConfigError(
            f"{where}: pad_token_id {cfg['pad_token_id']} is outside [0, vocab_size)"
        )
    if cfg["pad_size"] > cfg["max_position_embeddings"]:
        raise ConfigError(
            f"{where}: pad_size {cfg['pad_size']} exceeds max_position_embeddings "
            f"{cfg['max_position_embeddings']}"
        )
    if cfg["task"] == "classification" and cfg["num_classes"] < 2:
        raise ConfigError(f"{where}: num_classes {cfg['num_classes']} must be at least 2")
    if cfg["rope_theta"] <= 0 or cfg["rms_norm_eps"] <= 0:
        raise ConfigError(f"{where}: rope_theta and rms_norm_eps must be positive")



def _peft_method(cfg, raw, where):
    other = [k for k in _OTHER_METHODS if raw.get(k)]
    if other:
        raise ConfigError(f"{where}: {other}: the LLaMA oracle models full and LoRA only")
    if cfg["full_model"] and cfg["use_lora"]:
        raise ConfigError(
            f"{where}: full_model and use_lora are both true; turn on exactly one"
        )
    return "lora" if cfg["use_lora"] else "full"


def _check_lora(cfg, where):
    if cfg["lora_dim"] <= 0:
        raise ConfigError(f"{where}: lora_dim is {cfg['lora_dim']}; it must be positive")
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
    if cfg["peft"] == "lora" and not targets:
        raise ConfigError(f"{where}: use_lora is true but lora_target_modules is empty")
    if cfg["peft"] == "lora" and cfg["fan_in_fan_out"]:
        raise ConfigError(
            f"{where}: fan_in_fan_out is true; the LLaMA oracle stores weights [out, in] "
            "as Hugging Face does"
        )


def trainable_regex(cfg):
    """Full: everything. LoRA: the A/B pairs, plus score for classification (Hugging Face
    PEFT's SEQ_CLS task saves and trains the new head)."""
    if cfg.get("peft", "full") == "full":
        return r"."
    lora = r"\.lora_[AB]\.weight$"
    return r"^score\.|" + lora if cfg["task"] == "classification" else lora


def check_no_dropout(cfg, where="config"):
    """The oracle compares with dropout off; a nonzero rate would make it diverge."""
    keys = ["attention_dropout"] + (["lora_dropout"] if cfg["peft"] == "lora" else [])
    check_zero(cfg, keys, where)
