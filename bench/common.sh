# Shared set-up of the multi-rank benchmark scripts (sourced, not run).
# Expects: bench (script name), build, galaxyc, galaxy_run, gemm.
# Sets: work (a scratch dir, removed at exit unless BENCH_WORKDIR), and points
# galaxyc / galaxy_run at snapshots so a rebuild during the run cannot swap them.

for bin in "$galaxyc" "$galaxy_run"; do
  if [[ ! -x "$bin" ]]; then
    echo "$bench: $bin is missing: build the galaxyc and galaxy-run targets in $build" \
      "(or set GALAXYC / GALAXY_RUN)" >&2
    exit 1
  fi
done

if [[ -n "${BENCH_WORKDIR:-}" ]]; then
  work=$BENCH_WORKDIR
  mkdir -p "$work"
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/galaxy-${bench%.sh}.XXXXXX")
  trap 'rm -rf "$work"' EXIT
fi

mkdir -p "$work/bin"
cp "$galaxyc" "$work/bin/galaxyc"
cp "$galaxy_run" "$work/bin/galaxy-run"
galaxyc=$work/bin/galaxyc
galaxy_run=$work/bin/galaxy-run

# Sleeping OpenMP threads unless the caller chose: the multi-rank benchmarks put
# several ranks on the same cores. bench_own_wait_defaults undoes it.
user_omp_wait_policy=${OMP_WAIT_POLICY:-}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
[[ "$gemm" == auto ]] || export GALAXY_GEMM=$gemm

# bench_torch_python: sets py to $PYTHON, else the project's .venv python if it imports
# torch, else /usr/bin/python3 (Debian's torch); exits unless py imports torch.
bench_torch_python() {
  if [[ -n "${PYTHON:-}" ]]; then
    py=$PYTHON
  elif [[ -x "$root/.venv/bin/python" ]] && "$root/.venv/bin/python" -c 'import torch' 2>/dev/null; then
    py=$root/.venv/bin/python
  else
    py=/usr/bin/python3
  fi
  if ! "$py" -c 'import torch' 2>/dev/null; then
    echo "$bench: $py cannot import torch: install python3-torch or set PYTHON" >&2
    exit 1
  fi
}

# bench_bert_rows FILE: the BERT step benchmarks' data, 256 full-length rows of 32 ids
# (vocab 21128, 10 labels, seed 7): every step costs the same.
bench_bert_rows() {
  "$py" - "$1" <<'PY'
import json, random, sys
r = random.Random(7)
with open(sys.argv[1], "w") as f:
    for i in range(256):
        ids = [101] + [r.randrange(1000, 21128) for _ in range(31)]
        f.write(json.dumps({"input_ids": ids, "label": r.randrange(10)}) + "\n")
PY
}

# bench_own_wait_defaults: for benchmarks whose sides run one at a time, each a
# single process: unless the caller set OMP_WAIT_POLICY, every side waits as its
# own libraries do by default (galaxy-run: a bounded spin, runtime/cpu/library_env.h;
# PyTorch: libgomp's default) and the start-up lines say so.
bench_own_wait_defaults() {
  [[ -n "$user_omp_wait_policy" ]] || unset OMP_WAIT_POLICY
}

# bench_rounds_env: the settings of the benchmarks that alternate sides in rounds:
# STEPS (20) timed steps after WARMUP (3) untimed ones, ROUNDS (3) rounds, THREADS (2)
# threads for every side (with OMP_WAIT_POLICY=PASSIVE above, unless the script calls
# bench_own_wait_defaults: ranks sharing the cores must not spin).
bench_rounds_env() {
  steps=${STEPS:-20}
  warmup=${WARMUP:-3}
  rounds=${ROUNDS:-3}
  threads=${THREADS:-2}
  export OMP_NUM_THREADS=$threads GALAXY_THREADS=$threads
}
