"""The flow both side-only tests share (run_side_only.py: BERT, run_bart_side_only.py:
BART): side-tune from an init, dump the backbone's taps (on W ranks for a parallel mode,
checked against the serial dump), train the side-only plan from those taps and compare it
with side-tuning. The models differ only in data, configs, tap names and weight names."""

import argparse

import peft_run_util as u


def arg_parser():
    """The command line both tests take; a test adds its own options."""
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--mode", default="serial", choices=["serial", "dp", "tp", "sp", "galaxy"])
    ap.add_argument("--world", type=int, default=1)
    ap.add_argument("--optimizer", default="sgd", choices=["sgd", "adamw"])
    return ap


def train_args(c, init):
    """The training run both plans make: same rows, steps, shuffle seed and init."""
    return ["--data", c.p("train.jsonl"), "--steps", "5", "--shuffle", "--seed", "7",
            "--init", init]


def side_tune_and_dump(c, side_cfg, side_plan, init, mode, world):
    """Side-tunes serially (side.metrics.jsonl, side.safetensors, side.eval.json) and dumps
    the taps of the train and eval rows ({train,eval}.taps.safetensors) with side_cfg
    compiled for mode on world ranks; a parallel dump must equal the serial one."""
    par = mode != "serial"
    c.galaxy(side_plan, *train_args(c, init), "--metrics", c.p("side.metrics.jsonl"),
             "--save", c.p("side.safetensors"), "--eval", c.p("eval.jsonl"),
             "--eval-out", c.p("side.eval.json"))
    dump_plan = c.compile(side_cfg, "side_dump.plan", mode, world) if par else side_plan
    for rows in ("train", "eval"):
        flag = "--data" if rows == "train" else "--eval"
        c.galaxy(dump_plan, "--init", init, flag, c.p(rows + ".jsonl"), "--dump-taps",
                 c.p(rows + ".taps.safetensors"), world=world if par else 1)
    if par:  # the gathered dump equals the serial one
        c.galaxy(side_plan, "--init", init, "--data", c.p("train.jsonl"), "--dump-taps",
                 c.p("serial.taps.safetensors"))
        got, ref = u.load(c.p("train.taps.safetensors")), u.load(c.p("serial.taps.safetensors"))
        if sorted(got) != sorted(ref):
            raise u.Failed(f"taps differ in names: {sorted(got)} vs {sorted(ref)}")
        for k in ref:
            u.close(f"{world}-rank dump {k}", got[k], ref[k], atol=1e-5)


def train_and_compare(c, only_plan, init, mode, world, backbone, trained, frozen, evals):
    """Trains the side-only plan from the dumped taps and checks it against side-tuning:
    losses (rtol 1e-5 serial, 1e-4 parallel), no weight named with a `backbone` prefix,
    the `trained` prefixes' weights and the eval results (atol 1e-5 / 1e-4), weights for
    which frozen(name) holds equal to the init. evals = (what, read(path))."""
    par = mode != "serial"
    c.galaxy(only_plan, *train_args(c, init), "--taps", c.p("train.taps.safetensors"),
             "--metrics", c.p("only.metrics.jsonl"), "--save", c.p("only.safetensors"),
             "--eval", c.p("eval.jsonl"), "--eval-taps", c.p("eval.taps.safetensors"),
             "--eval-out", c.p("only.eval.json"), world=world if par else 1)

    tol = dict(atol=1e-4) if par else dict(atol=1e-5)
    u.close("losses side-only vs side-tuning", u.losses(c.p("only.metrics.jsonl")),
            u.losses(c.p("side.metrics.jsonl")), rtol=1e-4 if par else 1e-5)
    got, ref, ini = (u.load(c.p("only.safetensors")), u.load(c.p("side.safetensors")),
                     u.load(init))
    held = [k for k in got if k.startswith(backbone)]
    if held:
        raise u.Failed(f"the side-only plan holds backbone weights {held[:3]}")
    ours = [k for k in got if k.startswith(trained)]
    if not ours or any(k not in ref for k in ours):
        raise u.Failed(f"side-only weights {sorted(got)} do not match side-tuning's names")
    for k in ours:
        u.close(f"weight {k}", got[k], ref[k], **tol)
    for k in got:
        if frozen(k):
            u.close(f"frozen {k}", got[k], ini[k], atol=0.0)
    what, read = evals
    u.close(what, read(c.p("only.eval.json")), read(c.p("side.eval.json")), **tol)
