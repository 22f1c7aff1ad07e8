#!/usr/bin/python3
"""BART side-only ("forward free") side tuning equals side-tuning (issue 16).

  run_bart_side_only.py BUILD_DIR [--mode serial|dp|tp|sp|galaxy] [--world W]
                        [--task seq2seq|classification] [--optimizer sgd|adamw]

On the tiny BART of tests/equiv/bart_case.py (2+2 layers, source pad 12, target pad 10,
init_std 0.1) with use_side (side_reduction_factor 4): the side-tuning plan dumps the
backbone's taps of the train and eval rows (galaxy-run --dump-taps: the encoder's
embeddings and layers [rows, 12, H], the decoder's [rows, 10, H]); a side-only plan
(use_side_only) trains from them. From the same init, with --shuffle, both give the same
losses (rtol 1e-5), side.* (and classification_head.*) weights and eval results (atol
1e-5); the side-only plan holds no backbone layer or embedding-position weights and leaves
the frozen ones it reads (the tied table of the LM head, final_logits_bias) unchanged.
With another --mode the side-only plan and a dumping side-tuning plan run on W ranks
(uneven splits) against the serial side-tuning run (losses rtol 1e-4, weights atol 1e-4),
and the W-rank dump must equal the serial one.

Dropout: the side network's dropouts in the side-only IR must carry side-tuning's op ids
(the ids address the masks), checked on both configs with every dropout at 0.1
(the numeric runs keep dropout 0: side-tuning's backbone would drop out its taps).
PEFT_WORKDIR=DIR keeps the files."""

import json
import os
import re
import subprocess
import sys

import peft_run_util as u
import side_only_common as so

sys.path.insert(0, os.path.join(u.HERE, "..", "equiv"))
import bart_case  # noqa: E402

DROPOUTS = ("dropout", "attention_dropout", "activation_dropout", "classifier_dropout")


def dropout_ids(galaxyc, config):
    """(block kind, op_id, p, dims) of every dropout of @forward, as galaxyc builds it."""
    ir = subprocess.run([galaxyc, config, "--emit=ir", "--after=model"], check=True,
                        capture_output=True, text=True).stdout
    out, kind = [], None
    for line in ir.splitlines():
        m = re.match(r'\s*%\S+ = galaxy\.block "(\w+)"', line)
        if m:
            kind = m.group(1)
        m = re.search(r"galaxy\.dropout .*dims<([^>]*)>.*op_id = (\d+).*p = (\S+)", line)
        if m:
            out.append((kind, int(m.group(2)), m.group(3), m.group(1)))
    return out


def check_dropout_ids(c, cfg):
    dropped = {**cfg, **{k: 0.1 for k in DROPOUTS}}
    side = dropout_ids(c.galaxyc, c.config("side_dropout", dropped))
    only = dropout_ids(c.galaxyc, c.config("only_dropout", {**dropped, "use_side_only": True}))
    want = [d for d in side if d[0] in ("side", "head")]
    if not only or only != want:
        raise u.Failed(f"side-only dropouts {only}\n  are not side-tuning's side/head ones {want}")
    if len(side) <= len(want):
        raise u.Failed("side-tuning's backbone has no dropouts: the check proves nothing")
    print(f"ok: side-only's {len(only)} dropouts have side-tuning's op ids "
          f"({len(side) - len(want)} backbone ones skipped)")


def eval_values(path, task):
    with open(path) as f:
        e = json.load(f)
    if task == "classification":
        return e["logits"]
    return [e["loss"]] + [x for row in e["token_losses"] for x in row]


def test():
    ap = so.arg_parser()
    ap.add_argument("--task", default="seq2seq", choices=["seq2seq", "classification"])
    args = ap.parse_args()
    par = args.mode != "serial"
    c = u.Case(args.build, "bart-side-only")
    for name, n, seed in (("train.jsonl", 24, 1), ("eval.jsonl", 8, 2)):
        with open(c.p(name), "w") as f:
            for row in bart_case.rows(n, seed, args.task):
                f.write(json.dumps(row) + "\n")
    split = bart_case.SPLITS[args.world if args.world in bart_case.SPLITS else 2]
    side = {**bart_case.config(args.optimizer, args.task), "init_std": 0.1,
            "full_model": False, "use_side": True, "side_reduction_factor": 4,
            "dp_batch_list": split["batch"], "tp_num_attention_heads_list": split["heads"],
            "tp_intermediate_size_list": split["inter"], "seq_scatter_list": split["seq"]}
    if args.mode == "galaxy":  # SP regions: taps sliced by position, S and T apart
        side.update(att_parallel_method="TP", con_parallel_method="SP",
                    mlp_parallel_method="TP")
    if not par:
        check_dropout_ids(c, side)
    side_cfg = c.config("side", side)
    only_cfg = c.config("side_only", {**side, "use_side_only": True})
    side_plan = c.compile(side_cfg, "side.plan")
    only_plan = c.compile(only_cfg, "only.plan", args.mode, args.world)
    # The seeded initial weights, saved once (the side-only plan lacks the backbone).
    init = c.p("init.safetensors")
    c.galaxy(side_plan, "--seed", "1234", "--eval", c.p("eval.jsonl"), "--save", init)

    so.side_tune_and_dump(c, side_cfg, side_plan, init, args.mode, args.world)
    taps = u.load(c.p("train.taps.safetensors"))
    S, H = side["pad_size"], side["d_model"]
    T = side.get("target_pad_size", S)
    want = {}
    for part, n, length in (("encoder", side["encoder_layers"], S),
                            ("decoder", side["decoder_layers"], T)):
        want[f"taps.{part}.embeddings"] = (24, length, H)
        want.update({f"taps.{part}.layer.{i}": (24, length, H) for i in range(n)})
    have = {k: v.shape for k, v in taps.items()}
    if have != want:
        raise u.Failed(f"taps file holds {have}, expected {want}")

    trained = ("side.", "classification_head.")
    so.train_and_compare(c, only_plan, init, args.mode, args.world,
                         backbone=("model.encoder.", "model.decoder."), trained=trained,
                         frozen=lambda k: not k.startswith(trained),
                         evals=("eval results", lambda path: eval_values(path, args.task)))


if __name__ == "__main__":
    sys.exit(u.main(test))
