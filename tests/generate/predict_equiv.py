#!/usr/bin/python3
"""galaxy-run --predict: labels and probabilities equal in every parallel mode.

  predict_equiv.py BUILD_DIR [--model bert|llama|bart] [--keep DIR] [--hf PYTHON]

For the tiny classification model of the equivalence tests (BERT: tests/oracle/tiny_case.py
with 4 heads; LLaMA: tests/equiv/llama_case.py, GQA; BART: tests/equiv/bart_case.py), on 7
rows (a partial last batch; some rows without "label", some with an "id"):
  - the serial plan's --predict probs equal softmax of its --eval --eval-out logits, its
    labels their argmax, and the ids come back in file order;
  - the plans of dp, tp, sp, galaxy (2 ranks, uneven splits; BART: dp, tp), a pipeline of
    2 stages (BERT, LLaMA) and
    forward-only `galaxyc --inference` plans (serial, tp, pp) predict the same (atol 1e-5);
  - an --inference plan holds no train_step and no optimizer state;
  - with --hf PYTHON (transformers installed), Hugging Face's
    *ForSequenceClassification softmax on the same weights equals the probs (atol 1e-5).
Exit 0 equal, 1 different or failed.
"""

import argparse
import json
import math
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "equiv"))
sys.path.insert(0, os.path.join(HERE, "..", "oracle"))

import bart_case  # noqa: E402
import harness  # noqa: E402
import llama_case  # noqa: E402
import tiny_case  # noqa: E402

ATOL = 1e-5
N_ROWS = 7


def fail(msg):
    print(f"predict_equiv.py: {msg}")
    sys.exit(1)


def case(model):
    """(config, rows, {mode: split lists for 2 ranks}, pipeline stages)."""
    if model == "bert":
        cfg = tiny_case.config("adamw")
        cfg.update(num_attention_heads=4, batch_size=4, initializer_range=0.3)
        rows = tiny_case.rows(N_ROWS, 5)
        heads, inter, seq, batch = [3, 1], [96, 32], [10, 6], [3, 1]
    elif model == "llama":
        cfg = llama_case.config("adamw", "classification")
        cfg.update(batch_size=4, initializer_range=0.3)
        rows = llama_case.rows(N_ROWS, 5, "classification")
        s = llama_case.SPLITS[2]
        heads, inter, seq, batch = s["heads"], s["inter"], s["seq"], [3, 1]
    else:
        cfg = bart_case.config("adamw", "classification")
        cfg.update(batch_size=4, init_std=0.3)
        rows = bart_case.rows(N_ROWS, 5, "classification")
        s = bart_case.SPLITS[2]
        heads, inter, seq, batch = s["heads"], s["inter"], None, [3, 1]
    tp = {"tp_num_attention_heads_list": heads, "tp_intermediate_size_list": inter}
    modes = {"dp": {"dp_batch_list": batch}, "tp": tp}
    if seq:
        modes["sp"] = {"seq_scatter_list": seq}
        modes["galaxy"] = {**tp, "seq_scatter_list": seq, "att_parallel_method": "TP",
                           "con_parallel_method": "SP", "mlp_parallel_method": "TP"}
    return cfg, rows, modes


def softmax(logits):
    m = max(logits)
    e = [math.exp(x - m) for x in logits]
    return [x / sum(e) for x in e]


def check(work, galaxyc, galaxy_run, model, hf_python):
    def p(name):
        return os.path.join(work, name)

    cfg, rows, modes = case(model)
    # Unlabelled rows and ids: the labels are only for --eval.
    with open(p("labelled.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    ids = []
    with open(p("rows.jsonl"), "w") as f:
        for i, r in enumerate(rows):
            r = dict(r)
            if i % 2:
                del r["label"]
            if i % 3 != 2:
                r["id"] = f"row-{i}" if i % 3 == 0 else i * 10
            ids.append(r.get("id"))
            f.write("\n" if i == 4 else "")  # a blank line is skipped
            f.write(json.dumps(r) + "\n")

    def compile_plan(name, mode, world, extra, flags=()):
        c = dict(cfg, **extra)
        with open(p(f"{name}.json"), "w") as f:
            json.dump(c, f, indent=1)
        r = subprocess.run([galaxyc, p(f"{name}.json"), "--mode", mode, "--world", str(world),
                            "-o", p(f"{name}.plan"), "--emit", "none", *flags],
                           capture_output=True, text=True)
        if r.returncode:
            fail(f"galaxyc {name} failed:\n{r.stderr}")
        return [p(f"{name}.plan")] + ([] if world == 1 else ["--nproc", str(world)])

    def galaxy_run_ok(args, what):
        r = subprocess.run([galaxy_run, *args], capture_output=True, text=True)
        if r.returncode:
            fail(f"galaxy-run {what} failed:\n{r.stderr}")
        return r

    def predict(plan, name, init):
        out = p(f"{name}.out.jsonl")
        galaxy_run_ok([*plan, "--init", init, "--predict", p("rows.jsonl"), "--output", out],
                      name)
        with open(out) as f:
            return [json.loads(line) for line in f]

    serial = compile_plan("serial", "serial", 1, {})
    weights = p("weights.safetensors")
    galaxy_run_ok([*serial, "--seed", "3", "--eval", p("labelled.jsonl"), "--eval-out",
                   p("eval.json"), "--save", weights], "--save")
    galaxy_run_ok([*serial, "--init", weights, "--eval", p("labelled.jsonl"), "--eval-out",
                   p("eval.json")], "--eval")
    with open(p("eval.json")) as f:
        logits = json.load(f)["logits"]
    want = predict(serial, "serial", weights)
    status = 0
    if len(want) != N_ROWS:
        fail(f"serial: {len(want)} rows, expected {N_ROWS}")
    for i, (row, lg) in enumerate(zip(want, logits)):
        probs = softmax(lg)
        if row.get("id") != ids[i] or ("id" in row) != (ids[i] is not None):
            fail(f"serial row {i}: id {row.get('id')!r}, expected {ids[i]!r}")
        if row["label"] != max(range(len(lg)), key=lambda c: lg[c]):
            fail(f"serial row {i}: label {row['label']} is not the argmax of {lg}")
        if max(abs(a - b) for a, b in zip(row["probs"], probs)) > 1e-6:
            fail(f"serial row {i}: probs {row['probs']} are not softmax(eval logits) {probs}")
    print(f"serial: {N_ROWS} rows, labels {[r['label'] for r in want]} = argmax of --eval logits")

    plans = {name: compile_plan(name, name, 2, lists) for name, lists in modes.items()}
    if model != "bart":  # (galaxyc builds no BART pipelines yet)
        pp = {"stage_num_hidden_layers_list": [1, 1], "num_microbatches": 2}
        plans["pp"] = compile_plan("pp", "pp", 2, pp)
        plans["pp_inference"] = compile_plan("pp_inference", "pp", 2, pp, ["--inference"])
    plans["serial_inference"] = compile_plan("serial_inference", "serial", 1, {},
                                             ["--inference"])
    plans["tp_inference"] = compile_plan("tp_inference", "tp", 2, modes["tp"], ["--inference"])
    # AdamW: a training plan holds optimizer state (exp_avg, exp_avg_sq).
    for flags, train in (([], True), (["--inference"], False)):
        r = subprocess.run([galaxyc, p("tp_inference.json"), "--mode", "tp", "--world", "2",
                            *flags, "--emit", "plan-text", "--rank", "1"],
                           capture_output=True, text=True)
        held = ("OPT_STATE" in r.stdout, '"train_step"' in r.stdout)
        if r.returncode or held != (train, train) or '"eval_step"' not in r.stdout:
            fail(f"galaxyc {flags}: optimizer state, train_step = {held}, expected "
                 f"{(train, train)}; or no eval_step")
    print("--inference plans: eval_step only, no optimizer state")
    for name, plan in plans.items():
        got = predict(plan, name, weights)
        diff = max(abs(a - b) for g, w in zip(got, want) for a, b in zip(g["probs"], w["probs"]))
        same = [(g["label"], g.get("id")) for g in got] == [(w["label"], w.get("id")) for w in want]
        print(f"{name}: max |probs - serial| {diff:.2e}" + ("" if same else "  LABELS DIFFER"))
        if not same or diff > ATOL or len(got) != len(want):
            status = 1
    if hf_python:
        r = subprocess.run([hf_python, os.path.join(HERE, "predict_hf.py"), p("serial.json"),
                            weights, p("rows.jsonl"), p("serial.out.jsonl"), str(ATOL)],
                           capture_output=True, text=True)
        print(r.stdout.strip() or r.stderr.strip())
        if r.returncode:
            print(r.stderr)
            status = 1
    print("predict_equiv.py: " + ("equal" if status == 0 else "DIFFERENT"))
    return status


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--model", default="bert", choices=["bert", "llama", "bart"])
    ap.add_argument("--keep")
    ap.add_argument("--hf", help="a python with transformers: compare with Hugging Face")
    args = ap.parse_args()
    galaxyc, galaxy_run = harness.tools(args.build, fail)
    with harness.work_dir(args.keep, "galaxy-predict.") as work:
        return check(work, galaxyc, galaxy_run, args.model, args.hf)


if __name__ == "__main__":
    sys.exit(main())
