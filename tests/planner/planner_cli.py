#!/usr/bin/python3
"""galaxyc --auto on the command line.

  planner_cli.py GALAXYC SOURCE_DIR

Checks: the plans and chosen-config.json are written, and `galaxyc
chosen-config.json` compiles to the same plans (compared decoded, protoc
--decode); the report names the choice, each rank and a runner-up, and
--explain lists candidates; --devices without --auto predicts a given config (the
chosen one as --auto did, its even split slower); a device without enough memory exits 2 naming it;
a DEVICES.json with a misspelt key or a bad value exits 2 naming the key.
"""

import json
import os
import subprocess
import sys
import tempfile

GALAXYC, SRC = sys.argv[1], sys.argv[2]
PROTO = os.path.join(SRC, "runtime", "plan")
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def galaxyc(*args):
    return subprocess.run([GALAXYC, *args], capture_output=True, text=True)


def decoded(plan_dir):
    out = {}
    for f in sorted(os.listdir(plan_dir)):
        if f.endswith(".plan.pb"):
            with open(os.path.join(plan_dir, f), "rb") as fh:
                text = subprocess.run(
                    ["protoc", "-I", PROTO, os.path.join(PROTO, "plan.proto"),
                     "--decode=galaxy.plan.Plan"], stdin=fh, capture_output=True,
                    check=True).stdout.decode()
            out[f] = text
    return out


def devices(specs, gbps=10):
    return {"devices": [dict(name=n, gflops=g, memory_gib=m) for n, g, m in specs],
            "network": {"bandwidth_gbps": gbps, "latency_us": 20}}


with tempfile.TemporaryDirectory(prefix="planner-cli.") as work:
    def path(name):
        return os.path.join(work, name)

    with open(os.path.join(SRC, "configs", "bert", "tiny.json")) as f:
        cfg = json.load(f)
    cfg.update({"num_attention_heads": 4, "batch_size": 6})
    with open(path("tiny.json"), "w") as f:
        json.dump(cfg, f)

    def write(name, obj):
        with open(path(name), "w") as f:
            f.write(obj if isinstance(obj, str) else json.dumps(obj))
        return path(name)

    dev = write("dev.json", devices([("fast", 300, 4), ("mid", 100, 4), ("slow", 50, 4)]))
    r = galaxyc(path("tiny.json"), "--auto", "--devices", dev, "-o", path("auto"),
                "--explain")
    check(r.returncode == 0, f"--auto over 3 devices compiles (exit {r.returncode}: "
          f"{r.stderr.strip()[-400:]})")
    check("chosen: " in r.stdout and "runner-up: " in r.stdout,
          "the report names the choice and a runner-up")
    check(all(n in r.stdout for n in ("fast", "mid", "slow")) and "compute ms" in r.stdout,
          "the report has a line per rank with compute / comm / idle")
    check("candidates considered" in r.stdout, "--explain lists the candidates")
    chosen = path("auto/chosen-config.json")
    check(os.path.exists(chosen), "chosen-config.json is written")
    if os.path.exists(chosen):
        r2 = galaxyc(chosen, "--emit", "none", "-o", path("again"))
        check(r2.returncode == 0, f"galaxyc chosen-config.json compiles ({r2.stderr.strip()})")
        a, b = decoded(path("auto")), decoded(path("again"))
        check(len(a) == 3 and a == b, f"chosen-config.json compiles to the same {len(a)} plans")

        # --devices without --auto predicts a given config: the chosen one as
        # --auto predicted it, the even split slower.
        predicted = [l for l in r.stdout.splitlines() if l.startswith("predicted step")]
        r3 = galaxyc(chosen, "--devices", dev)
        check(r3.returncode == 0 and predicted and
              r3.stdout.startswith(predicted[0].split(" (")[0]),
              f"--devices predicts chosen-config.json as --auto did ({r3.stdout[:80]!r})")
        mode = json.load(open(chosen))["parallel_mode"]
        r4 = galaxyc(path("tiny.json"), "--mode", mode, "--world", "3", "--devices", dev)
        def ms(text):
            return float(text.split("predicted step ")[1].split(" ms")[0])
        check(r4.returncode == 0 and predicted and ms(r4.stdout) > ms(predicted[0]),
              f"the even split of {mode} is predicted slower ({r4.stdout[:60]!r})")
        r5 = galaxyc(chosen, "--devices", write("two.json", devices([("a", 1, 1), ("b", 1, 1)])))
        check(r5.returncode == 2 and "one device per rank" in r5.stderr,
              f"a device count other than the world exits 2 ({r5.stderr.strip()})")

    dev = write("small.json", devices([("big", 100, 4), ("tiny-board", 100, 1e-5)]))
    r = galaxyc(path("tiny.json"), "--auto", "--devices", dev, "-o", path("none"))
    check(r.returncode == 2 and '"tiny-board"' in r.stderr and "lacks" in r.stderr,
          f"no fit exits 2 naming the device (exit {r.returncode}: {r.stderr.strip()})")
    check(not os.path.exists(path("none")), "no fit writes nothing")

    dev = write("typo.json", '{"devices": [{"name": "a", "gflop": 1, "memory_gib": 1}]}')
    r = galaxyc(path("tiny.json"), "--auto", "--devices", dev)
    check(r.returncode == 2 and "gflop" in r.stderr and "typo.json" in r.stderr,
          f"a misspelt key exits 2 naming it ({r.stderr.strip()})")
    dev = write("neg.json", devices([("a", 1, 1), ("b", 1, -3)]))
    r = galaxyc(path("tiny.json"), "--auto", "--devices", dev)
    check(r.returncode == 2 and 'devices[1] ("b").memory_gib' in r.stderr,
          f"a negative memory_gib exits 2 naming the key ({r.stderr.strip()})")
    r = galaxyc(path("tiny.json"), "--auto")
    check(r.returncode == 2 and "--devices" in r.stderr, "--auto without --devices exits 2")

print("planner_cli: %d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
