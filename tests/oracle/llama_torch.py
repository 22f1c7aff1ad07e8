#!/usr/bin/python3
"""The PyTorch oracle for Galaxy's LLaMA: same config, weights and data in, losses/weights out.

  llama_torch.py init CONFIG --seed S --out W.safetensors [--spec-init]
  llama_torch.py train CONFIG [--init W.safetensors] --data D.jsonl --steps N
      [--optimizer sgd|adamw] [--lr X] [--metrics M.jsonl] [--save OUT.safetensors]
      [--eval E.jsonl --eval-out LOGITS.json]
  llama_torch.py eval CONFIG --init W.safetensors --eval E.jsonl --eval-out LOGITS.json
  llama_torch.py params CONFIG     (JSON: method, total/trainable counts, trainable regex)

Runs with Debian's python3-torch (use /usr/bin/python3). float32, 2 threads, dropout off.
The optimizers are bert_torch.py's (torch's SGD and AdamW over the trainable set, the
config's weight_decay, betas and epsilon), which is what Galaxy's sgd/adamw compute.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import llama_config  # noqa: E402
import llama_data  # noqa: E402
import llama_model  # noqa: E402
import safetensors_io  # noqa: E402
from bert_torch import make_optimizer  # noqa: E402  (one optimizer recipe for both)


def _setup_torch():
    torch.set_default_dtype(torch.float32)
    torch.set_num_threads(2)


def cmd_init(args):
    cfg = llama_config.load_config(args.config)
    seed = cfg["seed"] if args.seed is None else args.seed
    params = llama_model.init_params(cfg, seed, perturb=not args.spec_init)
    safetensors_io.save(args.out, params, metadata={"format": "pt"})
    print(f"init: wrote {len(params)} tensors to {args.out} (seed {seed})")


def load_params(cfg, init_path):
    if init_path is None:
        return llama_model.init_params(cfg, cfg["seed"])
    return llama_model.check_params(cfg, safetensors_io.load_torch(init_path), init_path)


def evaluate(cfg, params, rows):
    """Logits of every row and the loss over all rows as one batch; accuracy is over
    rows (classification) or counted next-token targets (causal LM)."""
    with torch.no_grad():
        ids, mask, labels = llama_data.make_batch(rows, range(len(rows)))
        logits = llama_model.forward(cfg, params, ids, mask)
        loss = llama_model.loss_fn(cfg, logits, labels).item()
        if cfg["task"] == "classification":
            acc = (logits.argmax(dim=-1) == labels).float().mean().item()
        else:
            target = labels[:, 1:]
            counted = target != llama_data.IGNORE_INDEX
            hits = (logits[:, :-1].argmax(dim=-1) == target) & counted
            acc = (hits.sum() / counted.sum()).item()
    return {"loss": loss, "accuracy": acc, "logits": logits.tolist()}


def write_eval(cfg, params, eval_path, out_path):
    result = evaluate(cfg, params, llama_data.load_rows(eval_path, cfg))
    with open(out_path, "w") as f:
        json.dump(result, f)
    print(f"eval: loss {result['loss']:.6f} accuracy {result['accuracy']:.4f}")


def cmd_train(args):
    cfg = llama_config.load_config(args.config)
    llama_config.check_no_dropout(cfg, args.config)
    if args.steps < 0:
        raise ValueError(f"--steps {args.steps} must be >= 0")
    opt_name = args.optimizer or cfg["optimizer"]
    lr = cfg["learning_rate"] if args.lr is None else args.lr
    params = load_params(cfg, args.init)
    # Only the trainable set gets gradients and optimizer state, so frozen tensors are
    # never touched (AdamW's weight decay included) and stay bit-identical.
    trainable = [t for n, t in params.items() if llama_model.is_trainable(cfg, n)]
    for t in trainable:
        t.requires_grad_(True)
    opt = make_optimizer(cfg, trainable, opt_name, lr)
    rows = llama_data.load_rows(args.data, cfg)
    B = cfg["batch_size"]

    metrics = open(args.metrics, "w") if args.metrics else None
    try:
        for s in range(args.steps):
            ids, mask, labels = llama_data.make_batch(
                rows, llama_data.step_indices(s, B, len(rows))
            )
            loss = llama_model.loss_fn(cfg, llama_model.forward(cfg, params, ids, mask), labels)
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
    cfg = llama_config.load_config(args.config)
    llama_config.check_no_dropout(cfg, args.config)
    write_eval(cfg, load_params(cfg, args.init), args.eval, args.eval_out)


def cmd_params(args):
    cfg = llama_config.load_config(args.config)
    total, trainable = llama_model.param_counts(cfg)
    print(json.dumps({
        "method": cfg["peft"],
        "task": cfg["task"],
        "total": total,
        "trainable": trainable,
        "trainable_regex": llama_config.trainable_regex(cfg),
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
        help="Hugging Face's init (unit RMSNorm weights, LoRA B zero) instead of "
        "perturbed norms and LoRA B",
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
        print(f"llama_torch.py {args.cmd}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
