#!/usr/bin/python3
"""1F1B holds fewer microbatches' activations than GPipe: measured, not assumed.

  pp_memory.py BUILD_DIR

Compiles a 4-layer tiny BERT as 2 pipeline stages [1,3] with 8 microbatches under
gpipe and under 1f1b, trains each for 3 steps with `galaxy-run --profile`, and reads
every stage's measured activation memory (peak stash slots in use x slot bytes + arena).
Checks: stage 0 peaks at 8 slots under gpipe and 2 (= stages - stage) under 1f1b, its
1f1b activation memory is below gpipe's, and both schedules give the same losses.
Exit status: 0 as expected, 1 otherwise.
"""

import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "oracle"))
import tiny_case  # noqa: E402

UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
ROW = re.compile(r"^\s*(\d+)\s+(\d+)\s+\S+\s+\S+\s+\S+\s+\S+\s+(\d+) x .* = ([\d.]+) (\w+)$")


def main():
    build = sys.argv[1]
    galaxyc = os.environ.get("GALAXYC") or os.path.join(build, "tools", "galaxyc")
    galaxy_run = os.environ.get("GALAXY_RUN") or os.path.join(build, "tools", "galaxy-run")
    work = tempfile.mkdtemp(prefix="galaxy-ppmem.")
    cfg = tiny_case.config("sgd")
    cfg.update({"num_hidden_layers": 4, "num_attention_heads": 4, "batch_size": 16,
                "parallel_mode": "pp", "stage_num_hidden_layers_list": [1, 3],
                "num_microbatches": 8})
    data = os.path.join(work, "train.jsonl")
    with open(data, "w") as f:
        for row in tiny_case.rows(48, 1):
            f.write(json.dumps(row) + "\n")
    measured, losses = {}, {}
    for schedule in ("gpipe", "1f1b"):
        cfg["pp_schedule"] = schedule
        path = os.path.join(work, f"{schedule}.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        plans = os.path.join(work, schedule)
        subprocess.run([galaxyc, path, "-o", plans, "--emit", "none"], check=True,
                       capture_output=True)
        metrics = os.path.join(work, f"{schedule}.metrics.jsonl")
        out = subprocess.run([galaxy_run, plans, "--data", data, "--steps", "3", "--nproc", "2",
                              "--profile", "--metrics", metrics, "--timeout", "60"],
                             capture_output=True, text=True)
        print(out.stderr[-1500:])
        if out.returncode != 0:
            print(f"pp_memory.py: galaxy-run ({schedule}) failed")
            return 1
        for line in out.stderr.splitlines():
            m = ROW.match(re.sub(r"^\[rank \d+\] ", "", line))
            if m:
                stage, slots = int(m.group(1)), int(m.group(3))
                measured[(schedule, stage)] = (slots, float(m.group(4)) * UNITS[m.group(5)])
        with open(metrics) as f:
            losses[schedule] = [json.loads(l)["loss"] for l in f]
    ok = True
    for schedule, want in (("gpipe", 8), ("1f1b", 2)):
        got = measured.get((schedule, 0))
        if not got or got[0] != want:
            print(f"FAIL: stage 0 under {schedule} peaked at {got and got[0]} slots, want {want}")
            ok = False
    if ok and not measured[("1f1b", 0)][1] < measured[("gpipe", 0)][1]:
        print("FAIL: stage 0's 1f1b activation memory is not below gpipe's")
        ok = False
    if losses["gpipe"] != losses["1f1b"]:
        print(f"FAIL: losses differ between schedules: {losses}")
        ok = False
    if ok:
        g, o = measured[("gpipe", 0)][1], measured[("1f1b", 0)][1]
        print(f"OK: stage 0 activation memory 1f1b {o / 1024:.1f} KiB < gpipe {g / 1024:.1f} KiB "
              f"(8 microbatches); same losses {losses['1f1b']}")
    subprocess.run(["rm", "-rf", work])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
