"""What the BERT and LLaMA oracles share: config reading and type checks, JSONL rows,
the step schedule, checkpoint name/shape matching, the optimizers and the command line.

Each model keeps its own semantics (`<model>_config.py`, `<model>_data.py`,
`<model>_model.py`); this file holds only what is the same fact for every model, so a
fix to, say, the step schedule or the AdamW recipe lands once.
"""

import argparse
import json
import sys
from collections import OrderedDict

import torch

import safetensors_io


class ConfigError(ValueError):
    pass


class DataError(ValueError):
    pass


# ---- config -------------------------------------------------------------------------


def read_json_object(path):
    """The config file's JSON object, or a ConfigError naming the file."""
    try:
        with open(path) as f:
            raw = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: cannot read config: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the config must be a JSON object")
    return raw


def check_types(cfg, where, ints, floats, bools):
    """Integers stay ints, numbers become floats, flags must be JSON booleans."""
    for k in ints:
        v = cfg[k]
        if isinstance(v, bool) or not isinstance(v, int):
            raise ConfigError(f"{where}: '{k}' must be an integer, got {v!r}")
    for k in floats:
        v = cfg[k]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"{where}: '{k}' must be a number, got {v!r}")
        cfg[k] = float(v)
    for k in bools:
        if not isinstance(cfg[k], bool):
            raise ConfigError(f"{where}: '{k}' must be true or false, got {cfg[k]!r}")


def read_lora_dim(raw, cfg, where):
    """The LoRA rank has three spellings in the prototype; repeated ones must agree."""
    given = {k: raw[k] for k in ("lora_dim", "lora_att_dim", "lora_r") if k in raw}
    if len(set(map(repr, given.values()))) > 1:
        raise ConfigError(f"{where}: {given} disagree; give the LoRA rank once (lora_dim)")
    if given:
        cfg["lora_dim"] = next(iter(given.values()))


def check_zero(cfg, keys, where):
    """The oracle compares with dropout off; a nonzero rate would make it diverge."""
    for k in keys:
        if cfg[k] != 0.0:
            raise ConfigError(
                f"{where}: '{k}' is {cfg[k]}; the oracle runs without dropout, set it to 0"
            )


# ---- data ---------------------------------------------------------------------------


def load_jsonl_rows(path, cfg, parse_row):
    """Every non-blank line parsed by parse_row(obj, cfg, "path:line"); at least one."""
    rows = []
    try:
        f = open(path)
    except OSError as e:
        raise DataError(f"{path}: cannot read data: {e}") from e
    with f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{where}: not valid JSON: {e}") from e
            rows.append(parse_row(obj, cfg, where))
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def step_indices(step, batch_size, num_rows):
    """Rows of 0-based step `step`: [s*B, s*B+B) in file order, wrapping around."""
    return [(step * batch_size + j) % num_rows for j in range(batch_size)]


# ---- parameters ---------------------------------------------------------------------


def match_params(shapes, tensors, where, ignorable=lambda name: False):
    """The params of `shapes` in its order as float32 tensors; a missing name, an unknown
    one (unless ignorable) or a wrong shape is a ValueError naming it."""
    missing = [n for n in shapes if n not in tensors]
    extra = [n for n in tensors if n not in shapes and not ignorable(n)]
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


def make_optimizer(cfg, params, name, lr):
    """torch's SGD / AdamW with the config's decay, betas and epsilon: what Galaxy's
    sgd / adamw compute."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=cfg["weight_decay"])
    if name == "adamw":
        return torch.optim.AdamW(
            params,
            lr=lr,
            betas=(cfg["adam_beta1"], cfg["adam_beta2"]),
            eps=cfg["adam_epsilon"],
            weight_decay=cfg["weight_decay"],
        )
    raise ConfigError(f"optimizer {name!r} is not 'sgd' or 'adamw'")


# ---- the command line ---------------------------------------------------------------


class Oracle:
    """One model's side of the oracle command line. A model module provides:

    load_config(path) -> cfg            check_no_dropout(cfg, where)
    init_params(cfg, seed, perturb)     check_params(cfg, {name: tensor}, where)
    is_trainable(cfg, name)             param_counts(cfg) -> (total, trainable)
    trainable_regex(cfg)                load_rows(path, cfg)
    batch_loss(cfg, params, rows, indices) -> scalar loss tensor
    evaluate(cfg, params, rows) -> {"loss", "accuracy", "logits", ...}
    params_extra(cfg) -> dict merged into `params`' JSON
    """

    def __init__(self, script, spec_init_help, model):
        self.script = script
        self.spec_init_help = spec_init_help
        self.m = model

    def load_params(self, cfg, init_path):
        if init_path is None:
            return self.m.init_params(cfg, cfg["seed"], perturb=False)
        return self.m.check_params(cfg, safetensors_io.load(init_path), init_path)

    def write_eval(self, cfg, params, eval_path, out_path):
        result = self.m.evaluate(cfg, params, self.m.load_rows(eval_path, cfg))
        with open(out_path, "w") as f:
            json.dump(result, f)
        print(f"eval: loss {result['loss']:.6f} accuracy {result['accuracy']:.4f}")

    def cmd_init(self, args):
        cfg = self.m.load_config(args.config)
        seed = cfg["seed"] if args.seed is None else args.seed
        params = self.m.init_params(cfg, seed, perturb=not args.spec_init)
        safetensors_io.save(args.out, params, metadata={"format": "pt"})
        print(f"init: wrote {len(params)} tensors to {args.out} (seed {seed})")

    def cmd_train(self, args):
        cfg = self.m.load_config(args.config)
        self.m.check_no_dropout(cfg, args.config)
        if args.steps < 0:
            raise ValueError(f"--steps {args.steps} must be >= 0")
        opt_name = args.optimizer or cfg["optimizer"]
        lr = cfg["learning_rate"] if args.lr is None else args.lr
        params = self.load_params(cfg, args.init)
        # Only the trainable set gets gradients and optimizer state, so frozen tensors are
        # never touched (AdamW's weight decay included) and stay bit-identical.
        trainable = [t for n, t in params.items() if self.m.is_trainable(cfg, n)]
        for t in trainable:
            t.requires_grad_(True)
        opt = make_optimizer(cfg, trainable, opt_name, lr)
        rows = self.m.load_rows(args.data, cfg)
        B = cfg["batch_size"]

        metrics = open(args.metrics, "w") if args.metrics else None
        try:
            for s in range(args.steps):
                loss = self.m.batch_loss(cfg, params, rows, step_indices(s, B, len(rows)))
                opt.zero_grad(set_to_none=False)
                loss.backward()
                opt.step()
                value = loss.item()  # computed before the update, as Galaxy reports it
                print(f"step {s + 1}: loss {value:.6f}")
                if metrics:
                    metrics.write(json.dumps({"step": s + 1, "loss": value}) + "\n")
        finally:
            if metrics:
                metrics.close()

        final = {k: v.detach() for k, v in params.items()}
        if args.save:
            safetensors_io.save(args.save, final, metadata={"format": "pt"})
        if args.eval:
            self.write_eval(cfg, final, args.eval, args.eval_out)

    def cmd_eval(self, args):
        cfg = self.m.load_config(args.config)
        self.m.check_no_dropout(cfg, args.config)
        self.write_eval(cfg, self.load_params(cfg, args.init), args.eval, args.eval_out)

    def cmd_params(self, args):
        cfg = self.m.load_config(args.config)
        total, trainable = self.m.param_counts(cfg)
        out = {"method": cfg["peft"]}
        out.update(self.m.params_extra(cfg))
        out.update({
            "total": total,
            "trainable": trainable,
            "trainable_regex": self.m.trainable_regex(cfg),
        })
        print(json.dumps(out))

    def main(self, doc, argv=None):
        ap = argparse.ArgumentParser(description=doc.split("\n")[0])
        sub = ap.add_subparsers(dest="cmd", required=True)

        p = sub.add_parser("init", help="write random initial weights")
        p.add_argument("config")
        p.add_argument("--seed", type=int, help="default: the config's seed")
        p.add_argument("--out", required=True)
        p.add_argument("--spec-init", action="store_true", help=self.spec_init_help)
        p.set_defaults(fn=self.cmd_init)

        p = sub.add_parser("train", help="train N steps, write metrics/weights/eval")
        p.add_argument("config")
        p.add_argument("--init", help="initial weights (default: spec init, config seed)")
        p.add_argument("--data", required=True)
        p.add_argument("--steps", type=int, required=True)
        p.add_argument("--optimizer", choices=("sgd", "adamw"))
        p.add_argument("--lr", type=float)
        p.add_argument("--metrics")
        p.add_argument("--save")
        p.add_argument("--eval")
        p.add_argument("--eval-out")
        p.set_defaults(fn=self.cmd_train)

        p = sub.add_parser("eval", help="logits, loss and accuracy of a data file")
        p.add_argument("config")
        p.add_argument("--init", required=True)
        p.add_argument("--eval", required=True)
        p.add_argument("--eval-out", required=True)
        p.set_defaults(fn=self.cmd_eval)

        p = sub.add_parser("params", help="parameter counts and the trainable-name regex")
        p.add_argument("config")
        p.set_defaults(fn=self.cmd_params)

        args = ap.parse_args(argv)
        if getattr(args, "eval", None) and not args.eval_out:
            ap.error("--eval needs --eval-out")
        torch.set_default_dtype(torch.float32)
        torch.set_num_threads(2)
        try:
            args.fn(args)
        except (ValueError, OSError) as e:  # config/data/checkpoint problems: one line
            print(f"{self.script} {args.cmd}: error: {e}", file=sys.stderr)
            return 1
        return 0
