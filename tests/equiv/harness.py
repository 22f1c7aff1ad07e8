"""What the equivalence scripts share: the binaries under test and a work directory."""

import contextlib
import os
import shutil
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
