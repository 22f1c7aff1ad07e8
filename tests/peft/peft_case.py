#!/usr/bin/python3
"""The tiny BERT case of tests/oracle with one PEFT method turned on.

  peft_case.py config METHOD sgd|adamw OUT.json
  peft_case.py methods            (prints the METHOD names, one a line)
  peft_case.py trainable CONFIG   (prints the regex of the config's trainable names)

METHOD is one of CASES below; every case keeps dropout (lora_dropout included) at 0, as
the oracle comparison needs.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "oracle"))

import bert_config  # noqa: E402  (no torch: this script stays quick)
import tiny_case  # noqa: E402

_LORA = {"use_lora": True, "lora_dim": 4, "lora_alpha": 8, "lora_dropout": 0.0}
_ALL_TARGETS = ["query", "key", "value", "attention_output", "intermediate", "output"]

CASES = {
    "lora": {**_LORA, "lora_target_modules": ["query", "value"]},
    # Six targets make non-square LoRA factors (intermediate, output), so a transposed
    # [in, out] base weight cannot be misread without a shape error.
    "lora-all-targets-fanin": {
        **_LORA,
        "lora_target_modules": _ALL_TARGETS,
        "fan_in_fan_out": True,
    },
    "adapter-gelu_new": {
        "use_adapter": True,
        "adapter_reduction_dim": 8,
        "non_linearity": "gelu_new",
    },
    "adapter-gelu": {"use_adapter": True, "adapter_reduction_dim": 8, "non_linearity": "gelu"},
    "adapter-relu": {"use_adapter": True, "adapter_reduction_dim": 8, "non_linearity": "relu"},
    "adapter-swish": {"use_adapter": True, "adapter_reduction_dim": 8, "non_linearity": "swish"},
    "side": {"use_side": True, "side_reduction_factor": 4},
}


def config(method, optimizer):
    if method not in CASES:
        raise ValueError(f"PEFT case {method!r} is not one of {sorted(CASES)}")
    cfg = tiny_case.config(optimizer)
    cfg["full_model"] = False
    cfg.update(CASES[method])
    return cfg


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("config")
    p.add_argument("method", choices=sorted(CASES))
    p.add_argument("optimizer", choices=("sgd", "adamw"))
    p.add_argument("out")
    sub.add_parser("methods")
    p = sub.add_parser("trainable")
    p.add_argument("config")
    args = ap.parse_args(argv)
    if args.cmd == "methods":
        print("\n".join(CASES))
        return 0
    if args.cmd == "trainable":
        try:
            print(bert_config.trainable_regex(bert_config.load_config(args.config)))
        except bert_config.ConfigError as e:
            print(f"peft_case.py trainable: error: {e}", file=sys.stderr)
            return 1
        return 0
    with open(args.out, "w") as f:
        json.dump(config(args.method, args.optimizer), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
