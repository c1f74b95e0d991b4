#!/usr/bin/env bash
# Wall-clock of one scenario (default: the demo) run one unit after another in one process, then
# with --workers 2, in one invocation; prints both times, their ratio, and whether the accuracy
# matrices are the same bit for bit. Fresh output folders each time, so no unit is skipped.
#
#   bench/bench_workers.sh [SCENARIO]
set -euo pipefail
cd "$(dirname "$0")/.."
CLI=${CLI:-.venv/bin/avalanche-hsf}
PY=${PY:-.venv/bin/python}
SCENARIO=${1:-split_digits_til}
OUT=${OUT:-/tmp/bench_workers}
rm -rf "$OUT"
mkdir -p "$OUT"
STAMPS=("$(date +%s.%N)")
for workers in 1 2; do
  $CLI run "$SCENARIO" --workers $workers --threads 1 --quiet --out "$OUT/workers$workers" > "$OUT/workers$workers.txt"
  STAMPS+=("$(date +%s.%N)")
done
$PY - "$OUT" "${STAMPS[@]}" <<'PY'
import json, sys
from pathlib import Path
out, (start, middle, end) = Path(sys.argv[1]), map(float, sys.argv[2:])
one, two = middle - start, end - middle
def matrices(folder):
    results = json.loads(next(folder.glob("*/results.json")).read_text())
    return {n: [r.get("acc_matrix", r.get("mse_matrix")) for r in s["per_seed"]] for n, s in results["strategies"].items()}
same = matrices(out / "workers1") == matrices(out / "workers2")
print(f"one after another: {one:.1f} s; --workers 2: {two:.1f} s; ratio {two / one:.2f}; same matrices: {same}")
PY
