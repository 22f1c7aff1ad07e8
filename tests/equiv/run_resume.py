#!/usr/bin/python3
"""Checkpoints and resume: a stopped and resumed run trains like one never stopped.

  run_resume.py BUILD_DIR CASE [--mode M --world N ...run_equiv.py's layout flags]
      [--to-mode M2 --to-world N2 ...] [--keep DIR] [--drop-moments]

Writes run_equiv.py's tiny BERT (AdamW, dropout 0.1 unless --dropout; --peft as there),
compiles it,
trains --steps 6 steps uninterrupted (--metrics, --save) and then again in pieces,
by CASE:
  signal    with --checkpoint-dir, SIGTERM raised inside a rank at the start of
            step 4 (GALAXY_TEST_SIGNAL_AT_STEP, the last rank): the run must finish
            step 4, write step-00000004 and exit 143 (each rank); --resume runs 5..6
  sigterm   a real SIGTERM sent to galaxy-run's process group (every rank and the
            --nproc launcher) once it printed step 3
  killed    checkpoints every 2 steps; the lead is SIGKILLed inside the write of
            step 4 (GALAXY_TEST_PAUSE_IN_CHECKPOINT): its temporary and a planted
            step-00000099 without manifest must be ignored, resume from step 2
  keep      --checkpoint-every 1 --keep 2: only step-00000005 and -00000006 remain
  reshard   the checkpoint of step 3 of (--mode, --world) resumed under the plan of
            (--to-mode, --to-world): losses within rtol 1e-4 of the uninterrupted
            run, and the run reports the resharding
  refuse    a plan of another hidden_size must be refused naming the key (exit 2)
The resumed steps' losses must equal the uninterrupted run's to the printed digit
(%.9g) and the final weights to the byte (reshard: rtol 1e-4, weights not compared).
--drop-moments is a negative control: the optimizer state is zeroed in the checkpoint
before resuming, which must make the comparison fail.
Exit status: 0 equal, 1 different or failed, 2 bad usage.
"""

import argparse
import json
import os
import signal
import struct
import subprocess
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "oracle"))

import harness  # noqa: E402
import run_equiv  # noqa: E402  (make_config: the tiny BERT of every layout)
import llama_case  # noqa: E402  (the tiny LLaMA's rows)
import tiny_case  # noqa: E402  (the rows of the oracle's tiny case)

STEPS = 6
# Bit-identity holds on one machine with the same kernels: fix the GEMM
# library instead of letting each process time shapes afresh.
ENV = dict(os.environ, GALAXY_GEMM=os.environ.get("GALAXY_GEMM", "openblas"))


def fail(msg):
    print(f"run_resume.py: {msg}", file=sys.stderr)
    sys.exit(1)


def layout_args(ap, prefix=""):
    dest = prefix.replace("-", "_")
    ap.add_argument(f"--{prefix}mode", dest=f"{dest}mode",
                    choices=["serial", "dp", "tp", "sp", "galaxy", "pp"])
    ap.add_argument(f"--{prefix}world", dest=f"{dest}world", type=int)
    ap.add_argument(f"--{prefix}stages", dest=f"{dest}stages", type=run_equiv.int_list)
    ap.add_argument(f"--{prefix}schedule", dest=f"{dest}schedule", choices=["gpipe", "1f1b"])


def equiv_args(mode, world, stages, schedule, dropout, peft, model):
    """The fields of run_equiv.py's arguments that make_config reads."""
    stages = stages or [1, 1]
    return types.SimpleNamespace(
        model=model, task="causal_lm" if model == "llama" else "classification", peft=peft,
        tie=model == "llama", optimizer="adamw",
        dropout=dropout, mode=mode, world=world, group="serial", stages=stages,
        layers=sum(stages) if mode == "pp" else 2, microbatches=4,
        schedule=schedule or "gpipe", att="TP", con="SP", mlp="TP",
        heads=None, inter=None, seq=None, batch=None)


def run(cmd, what, ok=(0,), env=ENV):
    print("+ " + " ".join(cmd), flush=True)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    if p.returncode not in ok:
        tail = "\n".join(p.stdout.strip().splitlines()[-15:])
        fail(f"{what}: exit {p.returncode} (expected {ok}):\n{tail}")
    return p.stdout


def losses(path):
    with open(path) as f:
        return {json.loads(l)["step"]: json.loads(l)["loss"] for l in f if l.strip()}


def drop_moments(step_dir):
    """Negative control: zero every tensor of optimizer.safetensors in place."""
    path = os.path.join(step_dir, "optimizer.safetensors")
    with open(path, "r+b") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        f.seek(0, 2)
        size = f.tell()
        f.seek(8 + n)
        f.write(bytes(size - 8 - n))
    print(f"negative control: the moments in {path} zeroed")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build")
    ap.add_argument("case", choices=["signal", "sigterm", "killed", "keep", "reshard", "refuse"])
    layout_args(ap)
    layout_args(ap, "to-")
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--shuffle", action="store_true",
                    help="galaxy-run --shuffle (6 steps of 6 rows span two epochs of 24)")
    ap.add_argument("--model", default="bert", choices=["bert", "llama"],
                    help="llama: run_equiv.py's tiny causal LM with tied embeddings (a "
                    "pipeline holds the tied weight and its moments on two stages)")
    ap.add_argument("--peft", default="full", choices=["full", "lora", "adapter", "side"],
                    help="run_equiv.py's PEFT methods (LoRA: lora_dropout too)")
    ap.add_argument("--keep-dir", help="work in this directory and keep it")
    ap.add_argument("--drop-moments", action="store_true")
    args = ap.parse_args()
    args.mode = args.mode or "serial"
    args.world = args.world or 1
    galaxyc, galaxy_run = harness.tools(args.build, fail)
    with harness.work_dir(args.keep_dir, "galaxy-resume.") as work:
        return resume_case(args, work, galaxyc, galaxy_run)


def compile_plan(galaxyc, work, name, mode, world, stages, schedule, dropout, peft, model,
                 edit=None):
    cfg = run_equiv.make_config(equiv_args(mode, world, stages, schedule, dropout, peft, model))
    if edit:
        cfg.update(edit)
    cfg_path = os.path.join(work, f"{name}.json")
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=1)
    mode_arg = mode
    out = os.path.join(work, f"{name}.plan")
    run([galaxyc, cfg_path, "--mode", mode_arg, "--world", str(world), "-o", out,
         "--emit", "none"], f"galaxyc {name}")
    return out


def resume_case(args, work, galaxyc, galaxy_run):
    def p(name):
        return os.path.join(work, name)

    with open(p("train.jsonl"), "w") as f:
        rows = llama_case.rows(24, 1) if args.model == "llama" else tiny_case.rows(24, 1)
        for row in rows:
            f.write(json.dumps(row) + "\n")
    plan = compile_plan(galaxyc, work, "a", args.mode, args.world, args.stages,
                        args.schedule, args.dropout, args.peft, args.model)
    ranks = lambda w: ["--nproc", str(w), "--timeout", "60"] if w > 1 else []  # noqa: E731
    common = ["--data", p("train.jsonl"), "--seed", "7", "--log-every", "1",
              *(["--shuffle"] if args.shuffle else [])]
    run([galaxy_run, plan, *common, "--steps", str(STEPS), *ranks(args.world),
         "--metrics", p("full.jsonl"), "--save", p("full.safetensors")], "uninterrupted run")
    full = losses(p("full.jsonl"))
    ck = p("ck")
    first = ["--checkpoint-dir", ck]
    resume_plan, resume_world, tol = plan, args.world, None

    if args.case == "signal":
        out = run([galaxy_run, plan, *common, "--steps", str(STEPS), *ranks(args.world), *first,
                   "--checkpoint-every", "5"], "run stopped by SIGTERM at step 4",
                  ok=(143,) if args.world == 1 else (1,),
                  env=dict(ENV, GALAXY_TEST_SIGNAL_AT_STEP="4"))
        if "stopped after step 4" not in out:
            fail("the stopped run did not say it stopped after step 4")
        if args.world > 1 and "exited with status 143" not in out:
            fail("the ranks did not exit 143 (128 + SIGTERM)")
        want_from = 4
    elif args.case == "sigterm":
        # To the process group, as a terminal or a job manager does: every
        # rank and the --nproc launcher (which forwards a SIGTERM of its own).
        cmd = [galaxy_run, plan, *common, "--steps", str(STEPS), *ranks(args.world), *first]
        print("+ " + " ".join(cmd) + "   (SIGTERM after step 3)", flush=True)
        # The ranks wait after step 3 for the signal: tiny steps would
        # otherwise all be done before it arrives.
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, start_new_session=True,
                                env=dict(ENV, GALAXY_TEST_WAIT_SIGNAL_AFTER_STEP="3"))
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if line.startswith(("step 3/", "[rank 0] step 3/")):
                os.killpg(proc.pid, signal.SIGTERM)
        rc = proc.wait()
        # 128 + SIGTERM from the rank, or from the --nproc launcher, which
        # says the job was interrupted.
        if rc != 143:
            fail(f"SIGTERM: exit {rc}:\n{''.join(seen[-10:])}")
        if args.world > 1 and not any("interrupted" in l for l in seen):
            fail("SIGTERM: the launcher did not say the job was interrupted:\n"
                 + "".join(seen[-10:]))
        stopped = [l for l in seen if "stopped after step" in l]
        if not stopped:
            fail("SIGTERM: no 'stopped after step' line:\n" + "".join(seen[-10:]))
        want_from = int(stopped[0].split("stopped after step ")[1].split(";")[0])
        if not 3 <= want_from < STEPS:
            fail(f"SIGTERM: stopped after step {want_from}")
    elif args.case == "killed":
        cmd = [galaxy_run, plan, *common, "--steps", str(STEPS), *ranks(args.world), *first,
               "--checkpoint-every", "2"]
        print("+ " + " ".join(cmd) + "   (SIGKILL inside the checkpoint of step 4)", flush=True)
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, start_new_session=True,
                                env=dict(ENV, GALAXY_TEST_PAUSE_IN_CHECKPOINT="4"))
        for line in proc.stderr:
            if "paused writing the checkpoint of step 4" in line:
                os.killpg(proc.pid, signal.SIGKILL)
                break
        proc.wait()
        leftovers = [f for f in os.listdir(ck) if f.startswith(".step-00000004.tmp")]
        if not leftovers:
            fail(f"no temporary of the killed write in {ck}: {os.listdir(ck)}")
        os.makedirs(os.path.join(ck, "step-00000099"))  # no manifest: incomplete
        want_from = 2
    elif args.case == "keep":
        run([galaxy_run, plan, *common, "--steps", "3", *ranks(args.world), *first,
             "--checkpoint-every", "1", "--keep", "2"], "run of 3 steps keeping 2")
        kept = sorted(f for f in os.listdir(ck) if not f.startswith("."))
        if kept != ["step-00000002", "step-00000003"]:
            fail(f"--keep 2 left {kept}")
        want_from = 3
    elif args.case == "reshard":
        run([galaxy_run, plan, *common, "--steps", "3", *ranks(args.world), *first],
            "run of 3 steps")
        resume_world = args.to_world or 1
        resume_plan = compile_plan(galaxyc, work, "b", args.to_mode or "serial", resume_world,
                                   args.to_stages, args.to_schedule, args.dropout, args.peft,
                                   args.model)
        want_from, tol = 3, 1e-4
    else:  # refuse
        run([galaxy_run, plan, *common, "--steps", "3", *ranks(args.world), *first],
            "run of 3 steps")
        other = compile_plan(galaxyc, work, "b", args.mode, args.world, args.stages,
                             args.schedule, args.dropout, args.peft, args.model,
                             edit={"intermediate_size": 96})
        out = run([galaxy_run, other, *common, "--steps", str(STEPS), *ranks(args.world),
                   "--resume", ck], "resume under another model", ok=(2, 1))
        if "intermediate_size is 96 in the plan but 128 in the checkpoint" not in out:
            fail("the refusal does not name intermediate_size:\n" + out[-2000:])
        print("run_resume.py: a plan of another intermediate_size is refused naming it")
        return 0

    if args.drop_moments:
        drop_moments(os.path.join(ck, f"step-{want_from:08d}"))
    out = run([galaxy_run, resume_plan, *common, "--steps", str(STEPS), *ranks(resume_world),
               "--resume", ck, "--metrics", p("resumed.jsonl"), "--save",
               p("resumed.safetensors")], "resumed run")
    if f"resuming from {ck}/step-{want_from:08d} (step {want_from} of {STEPS})" not in out:
        fail(f"the resumed run did not start from step {want_from}:\n{out[-2000:]}")
    if tol is not None and "resharding:" not in out:
        fail("the resumed run did not report the resharding")
    resumed = losses(p("resumed.jsonl"))
    want = {s: full[s] for s in range(want_from + 1, STEPS + 1)}
    bad = []
    if sorted(resumed) != sorted(want):
        bad.append(f"steps {sorted(resumed)}, expected {sorted(want)}")
    for s in sorted(set(want) & set(resumed)):
        a, b = resumed[s], want[s]
        same = a == b if tol is None else abs(a - b) <= tol * abs(b)
        print(f"step {s}: resumed {a!r} uninterrupted {b!r}{'' if same else '  DIFFERENT'}")
        if not same:
            bad.append(f"step {s}: {a!r} != {b!r}")
    if tol is None:
        with open(p("full.safetensors"), "rb") as f1, open(p("resumed.safetensors"), "rb") as f2:
            if f1.read() != f2.read():
                bad.append("the final weights differ from the uninterrupted run's")
            else:
                print("final weights: byte-identical")
    if bad:
        fail("resumed run differs: " + "; ".join(bad) + " (rerun with --keep-dir DIR)")
    how = "bit-identical" if tol is None else f"within rtol {tol}"
    print(f"run_resume.py: {args.case}: resumed from step {want_from}, losses {how}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
