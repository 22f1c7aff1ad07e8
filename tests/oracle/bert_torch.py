#!/usr/bin/python3
"""The PyTorch oracle for Galaxy's BERT: same config, weights and data in, losses/weights out.

  bert_torch.py init CONFIG --seed S --out W.safetensors
  bert_torch.py train CONFIG [--init W.safetensors] --data D.jsonl --steps N
      [--optimizer sgd|adamw] [--lr X] [--metrics M.jsonl] [--save OUT.safetensors]
      [--eval E.jsonl --eval-out LOGITS.json]
  bert_torch.py eval CONFIG --init W.safetensors --eval E.jsonl --eval-out LOGITS.json
  bert_torch.py params CONFIG     (JSON: method, total/trainable counts, trainable regex)

Runs with Debian's python3-torch (use /usr/bin/python3). float32, 2 threads, dropout off.
The config's PEFT method (use_lora / use_adapter / use_side) decides the parameter set
init writes and the trainable set train updates; frozen tensors are saved bit-unchanged.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import bert_config  # noqa: E402
import bert_data  # noqa: E402
import bert_model  # noqa: E402
import safetensors_io  # noqa: E402


def _setup_torch():
    torch.set_default_dtype(torch.float32)
    torch.set_num_threads(2)


def cmd_init(args):
    cfg = bert_config.load_config(args.config)
    seed = cfg["seed"] if args.seed is None else args.seed
    params = bert_model.init_params(cfg, seed, perturb=not args.spec_init)
    safetensors_io.save(args.out, params, metadata={"format": "pt"})
    print(f"init: wrote {len(params)} tensors to {args.out} (seed {seed})")


def load_params(cfg, init_path):
    if init_path is None:
        return bert_model.init_params(cfg, cfg["seed"])
    return bert_model.check_params(cfg, safetensors_io.load(init_path), init_path)


def make_optimizer(cfg, params, name, lr):
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
    raise bert_config.ConfigError(f"optimizer {name!r} is not 'sgd' or 'adamw'")


def evaluate(cfg, params, rows):
    """Logits of every row, mean cross-entropy over rows, accuracy (rows are independent)."""
    with torch.no_grad():
        ids, mask, types, labels = bert_data.make_batch(rows, range(len(rows)))
        logits = bert_model.forward(cfg, params, ids, mask, types)
        loss = bert_model.loss_fn(logits, labels).item()
        acc = (logits.argmax(dim=-1) == labels).float().mean().item()
    return {"loss": loss, "accuracy": acc, "logits": logits.tolist()}


def write_eval(cfg, params, eval_path, out_path):
    result = evaluate(cfg, params, bert_data.load_rows(eval_path, cfg))
    with open(out_path, "w") as f:
        json.dump(result, f)
    print(f"eval: loss {result['loss']:.6f} accuracy {result['accuracy']:.4f}")


def cmd_train(args):
    cfg = bert_config.load_config(args.config)
    bert_config.check_no_dropout(cfg, args.config)
    if args.steps < 0:
        raise ValueError(f"--steps {args.steps} must be >= 0")
    opt_name = args.optimizer or cfg["optimizer"]
    lr = cfg["learning_rate"] if args.lr is None else args.lr
    params = load_params(cfg, args.init)
    # Only the trainable set gets gradients and optimizer state, so frozen tensors are
    # never touched (AdamW's weight decay included) and stay bit-identical.
    trainable = [t for n, t in params.items() if bert_model.is_trainable(cfg, n)]
    for t in trainable:
        t.requires_grad_(True)
    opt = make_optimizer(cfg, trainable, opt_name, lr)
    rows = bert_data.load_rows(args.data, cfg)
    B = cfg["batch_size"]

    metrics = open(args.metrics, "w") if args.metrics else None
    try:
        for s in range(args.steps):
            ids, mask, types, labels = bert_data.make_batch(
                rows, bert_data.step_indices(s, B, len(rows))
            )
            loss = bert_model.loss_fn(
                bert_model.forward(cfg, params, ids, mask, types), labels
            )
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
        write_eval(cfg, final, args.eval, args.eval_out)


def cmd_eval(args):
    cfg = bert_config.load_config(args.config)
    bert_config.check_no_dropout(cfg, args.config)
    write_eval(cfg, load_params(cfg, args.init), args.eval, args.eval_out)


def cmd_params(args):
    cfg = bert_config.load_config(args.config)
    total, trainable = bert_model.param_counts(cfg)
    print(json.dumps({
        "method": cfg["peft"],
        "total": total,
        "trainable": trainable,
        "trainable_regex": bert_config.trainable_regex(cfg),
    }))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("init", help="write random initial weights")
    p.add_argument("config")
    p.add_argument("--seed", type=int, help="default: the config's seed")
    p.add_argument("--out", required=True)
    p.add_argument(
        "--spec-init",
        action="store_true",
        help="Galaxy's own init (zero biases, unit LayerNorm, LoRA B and adapter up "
        "zero) instead of small noise",
    )
    p.set_defaults(fn=cmd_init)

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
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("eval", help="logits, loss and accuracy of a data file")
    p.add_argument("config")
    p.add_argument("--init", required=True)
    p.add_argument("--eval", required=True)
    p.add_argument("--eval-out", required=True)
    p.set_defaults(fn=cmd_eval)

    p = sub.add_parser("params", help="parameter counts and the trainable-name regex")
    p.add_argument("config")
    p.set_defaults(fn=cmd_params)

    args = ap.parse_args(argv)
    if getattr(args, "eval", None) and not args.eval_out:
        ap.error("--eval needs --eval-out")
    _setup_torch()
    try:
        args.fn(args)
    except (ValueError, OSError) as e:  # config/data/checkpoint problems: one clear line
        print(f"bert_torch.py {args.cmd}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
