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

export OMP_WAIT_POLICY=PASSIVE
[[ "$gemm" == auto ]] || export GALAXY_GEMM=$gemm
