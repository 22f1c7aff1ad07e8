"""What the Hugging Face training-step baselines share (bert_step_hf.py, llama_step_torch.py):
the command line, the timed step loop and the JSON line they print."""

import argparse
import json
import statistics
import sys
import time

import torch
import transformers


def parse_args(doc, steps, argv=None):
    """CONFIG DATA --mode eager|compile --steps N (default `steps`) --warmup W --threads T."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("config")
    ap.add_argument("data")
    ap.add_argument("--mode", choices=("eager", "compile"), default="eager")
    ap.add_argument("--steps", type=int, default=steps)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    return ap.parse_args(argv)


def load_config(args):
    """The Galaxy config, with torch's threads and seed set from it and the command line."""
    torch.set_num_threads(args.threads)
    with open(args.config) as f:
        cfg = json.load(f)
    torch.manual_seed(cfg.get("seed", 42))
    return cfg


def run_steps(args, model, opt, n_rows, batch_size, inputs):
    """Warm-up and timed steps over the rows in order (wrapping): inputs(idx) gives the
    model's keyword arguments (untimed); each timed step is forward, backward, opt.step()
    and zero_grad() (torch's default set_to_none=True, as HF's Trainer does), under
    torch.compile for --mode compile. Prints the JSON line."""
    model.train()
    run = torch.compile(model) if args.mode == "compile" else model
    times, losses = [], []
    for s in range(args.warmup + args.steps):
        kwargs = inputs([(s * batch_size + i) % n_rows for i in range(batch_size)])
        t0 = time.perf_counter()
        loss = run(**kwargs).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - t0)
        losses.append(loss.item())
    timed = times[args.warmup:]
    print(json.dumps({
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "mode": args.mode,
        "threads": torch.get_num_threads(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "warmup_s": times[:args.warmup],
        "step_s": timed,
        "median_s": statistics.median(timed),
        "first_loss": losses[0],
        "last_loss": losses[-1],
    }))


def full_rows(path, seq):
    """(line number, row) of a jsonl file whose rows are all `seq` ids long."""
    with open(path) as f:
        for n, line in enumerate(f, 1):
            row = json.loads(line)
            if len(row["input_ids"]) != seq:
                sys.exit(f"{path}:{n}: {len(row['input_ids'])} ids, expected full-length "
                         f"rows of {seq}")
            yield row
