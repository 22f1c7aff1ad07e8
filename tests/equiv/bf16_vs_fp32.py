#!/usr/bin/python3
"""bf16 plans end to end: the shipped tiny BERT trains in bf16 close to fp32, but not as fp32.

  bf16_vs_fp32.py BUILD_DIR [--steps 8] [--keep DIR]

Compiles configs/bert/tiny.json (dropout 0.1, AdamW) with "dtype": "fp32" and "bf16",
trains each --steps steps on the demo data (configs/data/demo) from the same seed, and
checks:
  - the fp32 plan run twice gives bit-identical losses (so any difference below is the
    dtype's, not run-to-run noise: one GEMM library and thread count are forced; oneDNN,
    so bf16 runs natively where the CPU has AVX512-BF16);
  - bf16 losses are within rtol 2e-2 of fp32 but not all bit-identical to them (a bf16
    plan that silently ran in fp32 fails here).
Partitioned and pipelined bf16 runs against the serial bf16 run: run_equiv.py --dtype
bf16 (its logits check notices an N-rank run that lost bf16; these losses would not:
bf16 and fp32 differ by < 1e-4 over a few steps here).
Env: GALAXYC / GALAXY_RUN override BUILD_DIR/tools/{galaxyc,galaxy-run}.
Exit status: 0 pass, 1 fail, 2 bad usage.
"""

import argparse
import json
import os
import subprocess
import sys

import harness  # this directory: binaries and work directory

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
COMPARE = os.path.join(HERE, "..", "oracle", "compare.py")
DEMO = os.path.join(ROOT, "configs", "data", "demo")


def fail(msg, code=1):
    print(f"bf16_vs_fp32.py: {msg}", file=sys.stderr)
    sys.exit(code)


def run(cmd, env=None):
    print("+ " + " ".join(cmd), flush=True)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    if p.returncode != 0:
        fail(f"{cmd[0]} failed (exit {p.returncode}):\n" + p.stdout[-3000:])
    return p.stdout


def losses(path):
    with open(path) as f:
        return [json.loads(line)["loss"] for line in f if line.strip()]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--keep", help="work in this directory and keep it")
    args = ap.parse_args(argv)
    galaxyc, galaxy_run = harness.tools(args.build, lambda msg: fail(msg, 2))
    with harness.work_dir(args.keep, "galaxy-bf16.") as work:
        return check(args, work, galaxyc, galaxy_run)


def check(args, work, galaxyc, galaxy_run):
    def p(name):
        return os.path.join(work, name)

    with open(os.path.join(ROOT, "configs", "bert", "tiny.json")) as f:
        base = json.load(f)
    for dtype in ("fp32", "bf16"):
        with open(p(f"{dtype}.json"), "w") as f:
            json.dump(dict(base, dtype=dtype), f, indent=1)
    for dtype in ("fp32", "bf16"):
        run([galaxyc, p(f"{dtype}.json"), "--emit", "none", "-o", p(f"{dtype}.plan")])

    # One GEMM library and thread count: same-plan runs are then bit-identical.
    # oneDNN, so that bf16 runs natively where the CPU can (OpenBLAS would keep
    # the emulation: docs/kernels.md "Matmul precision").
    env = dict(os.environ, GALAXY_GEMM="onednn", GALAXY_THREADS="2")
    common = ["--data", os.path.join(DEMO, "train.tsv"), "--vocab", os.path.join(DEMO, "vocab.txt"),
              "--steps", str(args.steps), "--seed", "7"]
    for name, plan in (("fp32", "fp32"), ("fp32.again", "fp32"), ("bf16", "bf16")):
        run([galaxy_run, p(f"{plan}.plan"), *common, "--metrics", p(f"{name}.jsonl")], env)

    fp32, again, bf16 = losses(p("fp32.jsonl")), losses(p("fp32.again.jsonl")), losses(p("bf16.jsonl"))
    print("step  fp32          bf16          rel diff")
    for i, (a, b) in enumerate(zip(fp32, bf16), 1):
        print(f"{i:>4}  {a:.8f}  {b:.8f}  {abs(a - b) / abs(a):.3e}")
    status = 0
    if len(fp32) != args.steps or len(bf16) != args.steps:
        print(f"FAIL: expected {args.steps} losses, got fp32 {len(fp32)}, bf16 {len(bf16)}")
        status = 1
    if fp32 != again:
        print("FAIL: two fp32 runs differ, so the bf16 difference below proves nothing")
        status = 1
    if fp32 == bf16:
        print("FAIL: bf16 losses are bit-identical to fp32: the bf16 plan ran in fp32")
        status = 1
    py = os.environ.get("PYTHON", "/usr/bin/python3")
    print("+ compare.py losses bf16 fp32 --rtol 2e-2", flush=True)
    if subprocess.run([py, COMPARE, "losses", p("bf16.jsonl"), p("fp32.jsonl"),
                       "--rtol", "2e-2"]).returncode:
        status = 1
    print("bf16_vs_fp32.py: " + ("FAILED" if status else "bf16 trains close to, not as, fp32"))
    return status


if __name__ == "__main__":
    sys.exit(main())
