"""Shared plumbing of the PEFT runtime tests (run_merge_lora.py, run_side_only.py):
temp work dir, tiny data, torch init, galaxyc / galaxy-run calls and numeric checks."""

import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ORACLE = os.path.join(HERE, "..", "oracle")
sys.path.insert(0, ORACLE)

import numpy as np  # noqa: E402

import safetensors_io  # noqa: E402
import tiny_case  # noqa: E402


class Failed(Exception):
    pass


class Case:
    def __init__(self, build, name):
        self.galaxyc = os.environ.get("GALAXYC") or os.path.join(build, "tools", "galaxyc")
        self.galaxy_run = os.environ.get("GALAXY_RUN") or os.path.join(build, "tools", "galaxy-run")
        self.py = os.environ.get("PYTHON", "/usr/bin/python3")
        keep = os.environ.get("PEFT_WORKDIR")
        if keep:
            os.makedirs(keep, exist_ok=True)
            self.work = keep
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix=f"galaxy-{name}.")
            self.work = self._tmp.name
        for b in (self.galaxyc, self.galaxy_run):
            if not os.access(b, os.X_OK):
                raise Failed(f"{b} does not exist; build the galaxyc and galaxy-run targets")

    def p(self, name):
        return os.path.join(self.work, name)

    def run(self, cmd, what):
        print("+ " + " ".join(cmd), flush=True)
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            tail = "\n".join(r.stdout.strip().splitlines()[-15:])
            raise Failed(f"{what} failed (exit {r.returncode}):\n{tail}")
        return r.stdout

    def data(self):
        for name, n, seed in (("train.jsonl", 24, 1), ("eval.jsonl", 8, 2)):
            with open(self.p(name), "w") as f:
                for row in tiny_case.rows(n, seed):
                    f.write(json.dumps(row) + "\n")

    def config(self, name, cfg):
        with open(self.p(name + ".json"), "w") as f:
            json.dump(cfg, f, indent=1)
        return self.p(name + ".json")

    def init(self, config, out):
        self.run([self.py, os.path.join(ORACLE, "bert_torch.py"), "init", config, "--seed", "1234",
                  "--out", self.p(out)], "bert_torch.py init")
        return self.p(out)

    def compile(self, config, plan, mode="serial", world=1):
        self.run([self.galaxyc, config, "--mode", mode, "--world", str(world), "-o", self.p(plan),
                  "--emit", "none"], f"galaxyc {config} --mode {mode} --world {world}")
        return self.p(plan)

    def galaxy(self, plan, *args, world=1):
        ranks = ["--nproc", str(world), "--timeout", "60"] if world > 1 else []
        return self.run([self.galaxy_run, plan, *args, *ranks], f"galaxy-run {plan}")


def logits(path):
    with open(path) as f:
        return np.array(json.load(f)["logits"], dtype=np.float64)


def losses(path):
    with open(path) as f:
        return np.array([json.loads(line)["loss"] for line in f if line.strip()])


def close(what, a, b, atol=0.0, rtol=0.0):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise Failed(f"{what}: shapes differ {a.shape} vs {b.shape}")
    err = np.abs(a - b)
    bad = err > atol + rtol * np.abs(b)
    if bad.any():
        i = np.unravel_index(np.argmax(err - atol - rtol * np.abs(b)), err.shape)
        raise Failed(f"{what}: {int(bad.sum())} of {a.size} differ; worst at {i}: "
                     f"{a[i]!r} vs {b[i]!r} (atol {atol}, rtol {rtol})")
    print(f"ok: {what} (max |diff| {err.max() if err.size else 0:.3g})")


def load(path):
    return {k: np.asarray(v, np.float64) for k, v in safetensors_io.load(path).items()}


def main(fn):
    try:
        fn()
    except Failed as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    print("PASS")
    return 0
