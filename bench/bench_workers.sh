#!/usr/bin/env bash
# Wall-clock of one scenario (default: the demo), in one invocation: one unit after another in one
# process (--workers 1), with --workers 2, and as tasks on a local Ray instance with 2 CPUs. Prints
# each time, the ratios to one process, Ray's overhead per unit against --workers 2, and whether
# the accuracy matrices are the same bit for bit. Fresh output folders each time, so no unit is
# skipped; the Ray instance is started and stopped here (not counted), as a cluster would be.
#
#   bench/bench_workers.sh [SCENARIO]
set -euo pipefail
cd "$(dirname "$0")/.."
CLI=${CLI:-.venv/bin/avalanche-hsf}
PY=${PY:-.venv/bin/python}
RAY=${RAY:-.venv/bin/ray}
SCENARIO=${1:-split_digits_til}
OUT=${OUT:-/tmp/bench_workers}
rm -rf "$OUT"
mkdir -p "$OUT"
$RAY start --head --num-cpus 2 --include-dashboard false --disable-usage-stats > "$OUT/ray_start.txt" 2>&1
trap '$RAY stop > /dev/null 2>&1' EXIT
STAMPS=()
for mode in workers1 workers2 ray; do
  case $mode in
    workers1) args=(--workers 1) ;;
    workers2) args=(--workers 2) ;;
    ray) args=(--executor ray --ray-address auto) ;;
  esac
  STAMPS+=("$(date +%s.%N)")
  $CLI run "$SCENARIO" "${args[@]}" --threads 1 --quiet --out "$OUT/$mode" > "$OUT/$mode.txt"
  STAMPS+=("$(date +%s.%N)")
done
$PY - "$OUT" "${STAMPS[@]}" <<'PY'
import json, sys
from pathlib import Path
out, stamps = Path(sys.argv[1]), list(map(float, sys.argv[2:]))
one, two, ray = (stamps[i + 1] - stamps[i] for i in (0, 2, 4))
def matrices(folder):
    results = json.loads(next(folder.glob("*/results.json")).read_text())
    return {n: [r.get("acc_matrix", r.get("mse_matrix")) for r in s["per_seed"]] for n, s in results["strategies"].items()}
reference = matrices(out / "workers1")
units = sum(len(runs) for runs in reference.values())
print(f"{units} units. one process: {one:.1f} s; --workers 2: {two:.1f} s (ratio {two / one:.2f}); "
      f"Ray, 2 CPUs: {ray:.1f} s (ratio {ray / one:.2f}); Ray's overhead against --workers 2: "
      f"{(ray - two) / units:+.2f} s per unit")
print("same matrices:", all(matrices(out / mode) == reference for mode in ("workers2", "ray")))
PY
