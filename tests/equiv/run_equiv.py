#!/usr/bin/python3
"""Equivalence test: an N-rank plan must train exactly like the serial plan.

  run_equiv.py BUILD_DIR --mode serial|dp|tp|sp|galaxy|pp --world N
      [--model bert|llama|bart] [--task causal_lm|seq2seq|classification] [--peft full|lora|adapter|side]
      [--att TP|SP --con SP|None --mlp TP|SP] [--heads 2,1,1] [--inter 64,32,32]
      [--seq 8,5,3] [--batch 3,2,1] [--dropout 0.1] [--optimizer sgd|adamw]
      [--steps 4] [--lr-factor F] [--keep DIR] [--dtype fp32|bf16] [--parallel-dtype D]
      [--tiles T [--zero-tile-begin]] [--layers L] [--tie [--drop-tied]] [--init-std X] [--drop-cross-mask] pipelines: [--stages 1,3] [--group serial|dp|tp|sp|galaxy]
      [--microbatches 4] [--schedule gpipe|1f1b]

Writes a tiny BERT config (2 layers, hidden 64, 4 heads, intermediate 128, pad 16,
batch 6) -- or with --model llama the tiny LLaMA of llama_case.py (GQA 8/4 heads, causal
LM or --task classification), with --model bart the tiny BART of bart_case.py (seq2seq or
--task classification; --layers sets encoder and decoder layers) --, data and initial weights (tests/oracle/bert_torch.py init, or Galaxy's seeded
init when torch is missing), compiles it with `galaxyc --mode serial` and with
`galaxyc --mode M --world N`, trains both for --steps steps from the same weights and
seed (galaxy-run, the N-rank run with --nproc N), and compares per-step losses
(rtol 1e-4), saved weights (atol 1e-3 plus compare.py's update check) and eval logits
(atol 1e-4). Addressed dropout makes runs with dropout equal too.

--mode auto --devices DEVICES.json: the N-rank side is whatever `galaxyc --auto` plans
for those devices (world = their number; the invariant holds for any choice).

--mode pp is a pipeline: world = stages x group size, each stage a group running
--group's mode (its split lists are those of the group size); batch 6 in 4 microbatches
is [2,2,1,1] — uneven sizes too.

--tiles T sets comm_overlap_tiles on the N-rank side only (tile-level communication
overlap: GEMMs next to a collective run in T batch tiles, compiler/CommTiling.h), so the
tiled plan is held to the untiled serial one; --zero-tile-begin, a negative control,
rewrites every tile of the N-rank plans to start at row 0.

Split lists default to uneven ones for the world size (world 3: heads 2,1,1,
intermediate 64,32,32, seq 8,5,3, batch 3,2,1). --lr-factor scales the learning rate of
the N-rank side only: a negative control that must make the comparison fail.
--dtype sets the config's "dtype" on both sides (bf16: matmul operands rounded to
bfloat16, the tolerances stay); --parallel-dtype overrides it on the N-rank side only,
a negative control showing that the comparison notices an N-rank run that lost bf16.
Env: GALAXYC / GALAXY_RUN override BUILD_DIR/tools/{galaxyc,galaxy-run}.
Exit status: 0 equal, 1 different or failed to compile/run, 2 bad usage.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ORACLE = os.path.join(HERE, "..", "oracle")
sys.path.insert(0, ORACLE)

import harness  # noqa: E402  (this directory: binaries and work directory)
import bart_case  # noqa: E402  (this directory: the tiny BART, 2+2 layers)
import llama_case  # noqa: E402  (this directory: the tiny LLaMA, GQA on)
import tiny_case  # noqa: E402  (rows of the oracle's tiny case; pad 16, vocab 300)

DEFAULT_SPLITS = {
    2: {"heads": [3, 1], "inter": [96, 32], "seq": [10, 6], "batch": [4, 2]},
    3: {"heads": [2, 1, 1], "inter": [64, 32, 32], "seq": [8, 5, 3], "batch": [3, 2, 1]},
}
# Which split lists each mode reads (galaxy: by its region methods).
LIST_KEYS = {
    "heads": "tp_num_attention_heads_list",
    "inter": "tp_intermediate_size_list",
    "seq": "seq_scatter_list",
    "batch": "dp_batch_list",
}


def fail(msg, code=1):
    print(f"run_equiv.py: {msg}", file=sys.stderr)
    sys.exit(code)


def int_list(text):
    try:
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of integers")


def group_of(args):
    """The SPMD mode and rank count the split lists are for."""
    if args.mode == "auto":
        return "serial", 1  # the planner writes every list
    if args.mode == "pp":
        return args.group, args.world // len(args.stages)
    return args.mode, args.world


def lists_for(args):
    mode, _ = group_of(args)
    if mode == "serial":
        return []
    if mode == "dp":
        return [] if args.mode == "pp" else ["batch"]  # pp+dp splits microbatches evenly
    if mode == "tp":
        return ["heads", "inter"]
    if mode == "sp":
        return ["seq"]
    used = {"seq"} if "SP" in (args.att, args.con, args.mlp) else set()
    if args.att == "TP":
        used.add("heads")
    if args.mlp == "TP":
        used.add("inter")
    return sorted(used)


def default_splits(args, world):
    cases = {"llama": llama_case.SPLITS, "bart": bart_case.SPLITS}
    return cases.get(args.model, DEFAULT_SPLITS).get(world, {})


def make_config(args, lr_factor=1.0, dtype="fp32", tiles=1):
    if args.model == "bart":
        cfg = bart_case.config(args.optimizer, args.task)
        cfg.update({"dropout": args.dropout, "attention_dropout": args.dropout,
                    "activation_dropout": args.dropout, "encoder_layers": args.layers,
                    "decoder_layers": args.layers, "dtype": dtype})
        if args.init_std:
            cfg["init_std"] = args.init_std
    elif args.model == "llama":
        cfg = llama_case.config(args.optimizer, args.task)
        cfg.update({"attention_dropout": args.dropout, "num_hidden_layers": args.layers,
                    "dtype": dtype, "tie_word_embeddings": args.tie})
    else:
        cfg = tiny_case.config(args.optimizer)
        cfg.update(
            {
                "num_attention_heads": 4,
                "batch_size": 6,
                "hidden_dropout_prob": args.dropout,
                "attention_probs_dropout_prob": args.dropout,
                "num_hidden_layers": args.layers,
                "dtype": dtype,
            }
        )
    cfg["learning_rate"] *= lr_factor
    if tiles > 1:
        cfg["comm_overlap_tiles"] = tiles
    if args.peft == "lora" and args.model == "llama":
        cfg.update({"use_lora": True, "lora_dim": 4, "lora_alpha": 8, "lora_dropout": args.dropout,
                    "lora_target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                            "up_proj", "down_proj"]})
    elif args.peft == "lora" and args.model == "bart":
        # Every target: each attention projection name also reaches the
        # decoder's cross-attention (encoder_attn).
        cfg.update({"use_lora": True, "lora_dim": 4, "lora_alpha": 8, "lora_dropout": args.dropout,
                    "lora_target_modules": ["q_proj", "k_proj", "v_proj", "out_proj", "fc1",
                                            "fc2"]})
    elif args.peft == "lora":
        # All six targets: LoRA factors then meet every layout (column, row parallel).
        cfg.update({"use_lora": True, "lora_dim": 4, "lora_alpha": 8, "lora_dropout": args.dropout,
                    "lora_target_modules": ["query", "key", "value", "attention_output",
                                            "intermediate", "output"]})
    elif args.peft == "adapter":
        cfg.update({"use_adapter": True, "adapter_reduction_dim": 8})
    elif args.peft == "side":
        cfg.update({"use_side": True, "side_reduction_factor": 4})
    mode, group_world = group_of(args)
    if args.mode == "pp":
        cfg.update({"stage_num_hidden_layers_list": args.stages,
                    "num_microbatches": args.microbatches, "pp_schedule": args.schedule})
    if mode == "galaxy":
        cfg.update(
            {
                "att_parallel_method": args.att,
                "con_parallel_method": args.con,
                "mlp_parallel_method": args.mlp,
            }
        )
    splits = default_splits(args, group_world)
    for name in lists_for(args):
        value = getattr(args, name) or splits.get(name)
        if value is None:
            fail(f"give --{name} for world {group_world} (no default split)", 2)
        if len(value) != group_world:
            fail(f"--{name} {value} has {len(value)} entries for world {group_world}", 2)
        cfg[LIST_KEYS[name]] = value
    return cfg


def run(cmd, log, what, env=None):
    """Runs cmd, teeing its output to `log`; exits with a message naming `what` on failure."""
    t0 = time.monotonic()
    print("+ " + " ".join(cmd), flush=True)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    with open(log, "w") as f:
        f.write(p.stdout)
    if p.returncode != 0:
        tail = "\n".join(p.stdout.strip().splitlines()[-15:])
        fail(f"{what} failed (exit {p.returncode}, {time.monotonic() - t0:.1f} s):\n{tail}")
    return p.stdout


def rewrite_plans(plan_dir, pattern, replacement):
    """Applies pattern.subn to every rank plan's text form (protoc round trip); the count."""
    proto_dir = os.path.join(HERE, "..", "..", "runtime", "plan")
    proto = ["protoc", "-I", proto_dir, os.path.join(proto_dir, "plan.proto")]
    changed = 0
    for f in sorted(os.listdir(plan_dir)):
        path = os.path.join(plan_dir, f)
        with open(path, "rb") as fh:
            text = subprocess.run([*proto, "--decode=galaxy.plan.Plan"], stdin=fh,
                                  capture_output=True, check=True).stdout.decode()
        text, n = pattern.subn(replacement, text)
        changed += n
        with open(path, "wb") as fh:
            fh.write(subprocess.run([*proto, "--encode=galaxy.plan.Plan"], input=text.encode(),
                                    capture_output=True, check=True).stdout)
    return changed


def zero_attr(plan_dir, name):
    """Rewrites every rank plan with kernel attribute `name` set to 0."""
    pattern = re.compile(r'(key: "%s"\s*value \{\s*i: )-?\d+' % re.escape(name))
    changed = rewrite_plans(plan_dir, pattern, r"\g<1>0")
    if not changed:
        fail(f"--zero-attr {name}: no plan has that kernel attribute")
    print(f"negative control: {name} set to 0 in {changed} instructions")


def zero_tile_begin(plan_dir):
    """Rewrites every tile of every rank plan to begin at row 0 (Tile.begin)."""
    changed = rewrite_plans(plan_dir, re.compile(r"(tile \{\s*)begin: \d+"), r"\g<1>")
    if not changed:
        fail("--zero-tile-begin: no plan has a tile past row 0 (give --tiles)")
    print(f"negative control: {changed} tiles moved to row 0")


def drop_tied(plan_dir):
    """Removes Pipeline.tied from every rank plan: the copies' gradients go unsummed."""
    changed = rewrite_plans(plan_dir, re.compile(r"\n\s*tied \{[^}]*\}"), "")
    if not changed:
        fail("--drop-tied: no plan ties a parameter across stages")
    print(f"negative control: {changed} tied entries removed from the plans")


def drop_cross_mask(plan_dir, first_decoder_layer):
    """Removes the source padding mask operand from BART's cross-attention softmax (the
    non-causal masked_softmax of a decoder layer, layer >= first_decoder_layer) in every
    rank plan; the kernel then attends to the source's padding too."""
    pattern = re.compile(r'(kernel: "masked_softmax"\s*inputs: \d+)\s*inputs: \d+'
                         r'((?:(?!instrs \{).)*?block: "att\.(\d+)")', re.S)
    dropped = 0

    def drop(m):
        nonlocal dropped
        causal = re.search(r'key: "causal"\s*value \{\s*i: 1', m.group(2))
        if int(m.group(3)) < first_decoder_layer or causal:
            return m.group(0)
        dropped += 1
        return m.group(1) + m.group(2)

    rewrite_plans(plan_dir, pattern, drop)
    if not dropped:
        fail("--drop-cross-mask: no plan has a cross-attention softmax with a mask")
    print(f"negative control: the cross-attention mask dropped from {dropped} instructions")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build", help="the CMake build directory (for tools/galaxyc, tools/galaxy-run)")
    ap.add_argument("--model", default="bert", choices=["bert", "llama", "bart"])
    ap.add_argument("--task", choices=["causal_lm", "seq2seq", "classification"],
                    help="llama (default causal_lm) / bart (default seq2seq): what the "
                    "model trains for")
    ap.add_argument("--mode", required=True, choices=["serial", "dp", "tp", "sp", "galaxy", "pp", "auto"])
    ap.add_argument("--devices", help="--mode auto: the DEVICES.json galaxyc --auto plans for")
    ap.add_argument("--world", type=int, default=1)
    ap.add_argument("--att", default="TP", choices=["TP", "SP"])
    ap.add_argument("--con", default="SP", choices=["SP", "None"])
    ap.add_argument("--mlp", default="TP", choices=["TP", "SP"])
    for name in ("heads", "inter", "seq", "batch"):
        ap.add_argument(f"--{name}", type=int_list)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--peft", default="full", choices=["full", "lora", "adapter", "side"],
                    help="PEFT method (both runs start from Galaxy's seeded init)")
    ap.add_argument("--tie", action="store_true",
                    help="llama: tie_word_embeddings (the LM head reads model.embed_tokens.weight; "
                    "in a pipeline both the first and the last stage hold it)")
    ap.add_argument("--optimizer", default="sgd", choices=["sgd", "adamw"])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--lr-factor", type=float, default=1.0)
    ap.add_argument("--keep", help="work in this directory and keep it")
    ap.add_argument("--layers", type=int, default=2, help="encoder layers")
    ap.add_argument("--stages", type=int_list, default=[1, 1], help="pp: layers per stage")
    ap.add_argument("--group", default="serial", choices=["serial", "dp", "tp", "sp", "galaxy"],
                    help="pp: the SPMD mode inside each stage")
    ap.add_argument("--microbatches", type=int, default=4)
    ap.add_argument("--schedule", default="gpipe", choices=["gpipe", "1f1b"])
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"],
                    help="the config's dtype (matmul operand precision), both sides")
    ap.add_argument("--zero-attr", metavar="NAME",
                    help="negative control: set the kernel attribute NAME (e.g. q_offset, "
                    "the causal mask's query offset under SP) to 0 in the N-rank plans")
    ap.add_argument("--drop-tied", action="store_true",
                    help="negative control: remove Pipeline.tied from the N-rank plans, so a "
                    "tied parameter's copies are not summed and drift apart")
    ap.add_argument("--init-std", type=float,
                    help="bart: init_std of both runs (a larger one makes attention less "
                    "uniform, so a negative control's error shows more)")
    ap.add_argument("--drop-cross-mask", action="store_true",
                    help="negative control (bart): the N-rank plans' cross-attention ignores "
                    "the source padding mask")
    ap.add_argument("--tiles", type=int, default=1,
                    help="comm_overlap_tiles of the N-rank side (1: untiled)")
    ap.add_argument("--zero-tile-begin", action="store_true",
                    help="negative control: every tile of the N-rank plans starts at row 0, "
                    "so the rows of later tiles are never computed")
    ap.add_argument("--parallel-dtype", choices=["fp32", "bf16"],
                    help="negative control: the N-rank side's dtype (default --dtype)")
    args = ap.parse_args(argv)
    if args.task is None:
        args.task = {"llama": "causal_lm", "bart": "seq2seq"}.get(args.model, "classification")
    if args.drop_cross_mask and args.model != "bart":
        fail("--drop-cross-mask is for --model bart (its cross-attention)", 2)
    if args.tie and args.model != "llama":
        fail("--tie is for --model llama (tie_word_embeddings)", 2)
    if args.mode == "pp" and args.world % len(args.stages):
        fail(f"--world {args.world} is not stages ({len(args.stages)}) x group size", 2)
    if args.world < 1 or (args.mode == "serial" and args.world != 1):
        fail("--world must be at least 1 (and 1 for --mode serial)", 2)

    if (args.mode == "auto") != bool(args.devices):
        fail("--mode auto and --devices go together", 2)
    if args.mode == "auto":
        with open(args.devices) as f:
            args.world = len(json.load(f)["devices"])
    galaxyc, galaxy_run = harness.tools(args.build, fail)
    with harness.work_dir(args.keep, "galaxy-equiv.") as work:
        return compare_runs(args, work, galaxyc, galaxy_run)


def compare_runs(args, work, galaxyc, galaxy_run):
    def p(name):
        return os.path.join(work, name)

    mode_arg = args.mode if args.mode != "pp" or args.group == "serial" else f"pp+{args.group}"
    label = f"{mode_arg} world {args.world}" + ("" if args.peft == "full" else f" {args.peft}")
    if args.model != "bert":
        label = f"{args.model} {args.task} " + label + (" tied" if args.tie else "")
    if args.mode == "pp":
        label += f" stages {args.stages} x{args.microbatches} {args.schedule}"
    if group_of(args)[0] == "galaxy":
        label += f" ({args.att}/{args.con}/{args.mlp})"
    if args.tiles > 1:
        label += f" {args.tiles} tiles"
    parallel_dtype = args.parallel_dtype or args.dtype
    if args.dtype != "fp32" or parallel_dtype != args.dtype:
        label += f" {args.dtype}" + ("" if parallel_dtype == args.dtype else f"/{parallel_dtype}")
    with open(p("serial.json"), "w") as f:
        json.dump(make_config(args, dtype=args.dtype), f, indent=1)
    with open(p("parallel.json"), "w") as f:
        json.dump(make_config(args, args.lr_factor, parallel_dtype, args.tiles), f, indent=1)
    for name, n, seed in (("train.jsonl", 24, 1), ("eval.jsonl", 8, 2)):
        with open(p(name), "w") as f:
            rows = (llama_case.rows(n, seed, args.task) if args.model == "llama"
                    else bart_case.rows(n, seed, args.task) if args.model == "bart"
                    else tiny_case.rows(n, seed))
            for row in rows:
                f.write(json.dumps(row) + "\n")

    py = os.environ.get("PYTHON", "/usr/bin/python3")
    init = []
    # find_spec does not import torch (which alone takes seconds).
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is None)"
    has_torch = subprocess.run([py, "-c", probe], capture_output=True).returncode == 0
    if has_torch and args.peft == "full" and args.model == "bert":
        run([py, os.path.join(ORACLE, "bert_torch.py"), "init", p("serial.json"), "--seed", "1234",
             "--out", p("init.safetensors")], p("init.log"), "bert_torch.py init")
        init = ["--init", p("init.safetensors")]
    else:
        print("note: torch is missing; both runs start from Galaxy's seeded init")

    run([galaxyc, p("serial.json"), "--mode", "serial", "-o", p("serial.plan"), "--emit", "none"],
        p("galaxyc.serial.log"), "galaxyc --mode serial")
    if args.mode == "auto":
        out = run([galaxyc, p("parallel.json"), "--auto", "--devices", args.devices, "-o",
                   p("parallel.plan")], p("galaxyc.parallel.log"), "galaxyc --auto")
        print(out)
        with open(p("parallel.plan/chosen-config.json")) as f:
            chosen = json.load(f)
        label = (f"auto ({chosen['parallel_mode']}, world {args.world}, stages "
                 f"{chosen['stage_num_hidden_layers_list']}, heads "
                 f"{chosen['tp_num_attention_heads_list']}, inter "
                 f"{chosen['tp_intermediate_size_list']}, seq {chosen['seq_scatter_list']}, "
                 f"batch {chosen['dp_batch_list']})")
    else:
        run([galaxyc, p("parallel.json"), "--mode", mode_arg, "--world", str(args.world), "-o",
             p("parallel.plan"), "--emit", "none"],
            p("galaxyc.parallel.log"), f"galaxyc cannot compile {label}: galaxyc --mode {mode_arg}")

    # Classification: logits; causal LMs and seq2seq: token losses, mean loss and
    # perplexity (compare.py logits).
    if args.zero_attr:
        zero_attr(p("parallel.plan"), args.zero_attr)
    if args.drop_tied:
        drop_tied(p("parallel.plan"))
    if args.zero_tile_begin:
        zero_tile_begin(p("parallel.plan"))
    if args.drop_cross_mask:
        drop_cross_mask(p("parallel.plan"), args.layers)
    common = ["--data", p("train.jsonl"), "--steps", str(args.steps), "--seed", "7", *init,
              "--eval", p("eval.jsonl")]

    def eval_out(side):
        return ["--eval-out", p(f"{side}.eval.json")]

    run([galaxy_run, p("serial.plan"), *common, "--metrics", p("serial.metrics.jsonl"),
         "--save", p("serial.safetensors"), *eval_out("serial")],
        p("run.serial.log"), "galaxy-run (serial)")
    ranks = ["--nproc", str(args.world), "--timeout", "60"] if args.world > 1 else []
    run([galaxy_run, p("parallel.plan"), *common, *ranks,
         "--metrics", p("parallel.metrics.jsonl"), "--save", p("parallel.safetensors"),
         *eval_out("parallel")],
        p("run.parallel.log"), f"galaxy-run ({label})")

    compare = [py, os.path.join(ORACLE, "compare.py")]
    checks = [
        ("losses", [p("parallel.metrics.jsonl"), p("serial.metrics.jsonl"), "--rtol", "1e-4"]),
        ("weights", [p("parallel.safetensors"), p("serial.safetensors"), "--atol", "1e-3",
                     "--init", p("init.safetensors") if init else p("serial.safetensors")]),
        ("logits", [p("parallel.eval.json"), p("serial.eval.json"), "--atol", "1e-4"]),
    ]
    if not init:  # no shared starting point to measure updates from
        checks[1] = ("weights", checks[1][1][:4])
    status = 0
    for what, extra in checks:
        print("+ compare.py " + what, flush=True)
        r = subprocess.run([*compare, what, *extra])
        status |= r.returncode
    if status:
        print(f"run_equiv.py: {label} differs from serial (files: rerun with --keep DIR)")
        return 1
    print(f"run_equiv.py: {label} trains like serial ({args.steps} steps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
