"""What the equivalence scripts share: the binaries under test and a work directory."""

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile


def tools(build, fail):
    """galaxyc and galaxy-run from BUILD/tools (GALAXYC / GALAXY_RUN override); fail() if missing."""
    galaxyc = os.environ.get("GALAXYC") or os.path.join(build, "tools", "galaxyc")
    galaxy_run = os.environ.get("GALAXY_RUN") or os.path.join(build, "tools", "galaxy-run")
    for b in (galaxyc, galaxy_run):
        if not os.access(b, os.X_OK):
            fail(f"{b} does not exist; build the galaxyc and galaxy-run targets")
    return galaxyc, galaxy_run


@contextlib.contextmanager
def work_dir(keep, prefix):
    """`keep` (created if needed, left in place) or a temporary directory removed afterwards."""
    if keep:
        os.makedirs(keep, exist_ok=True)
        yield keep
        return
    work = tempfile.mkdtemp(prefix=prefix)
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def script_main(name, prefix, check):
    """The command line of a check script: BUILD [--keep DIR]; runs check(work, galaxyc,
    galaxy_run) in a work directory (DIR, or a temporary one) and returns its status."""
    ap = argparse.ArgumentParser(prog=name)
    ap.add_argument("build")
    ap.add_argument("--keep", help="keep the work files in DIR")
    args = ap.parse_args()

    def fail(msg):
        print(f"{name}: {msg}")
        sys.exit(1)

    galaxyc, galaxy_run = tools(args.build, fail)
    with work_dir(args.keep, prefix) as work:
        return check(work, galaxyc, galaxy_run)


def write_prompts(path, prompts):
    """A --generate file: one {"input_ids": [...]} a line."""
    with open(path, "w") as f:
        for ids in prompts:
            f.write(json.dumps({"input_ids": ids}) + "\n")
