#!/usr/bin/env bash
# The comparison protocol for one scenario, as the README's tables are made:
#   1. `avalanche-hsf tune`: every strategy in the file, the same number of trials each, scored on
#      the validation stream over the tuning seeds (never the test stream);
#   2. `avalanche-hsf run` of the tuned scenario file on the scenario's own reporting seeds, scored
#      on the test stream once.
#
#   bench/protocol.sh SCENARIO [TRIALS] [JOBS] [EPOCHS]    (defaults: 20 trials, 2 jobs, the file's epochs)
#
# STRATEGIES=a,b,c restricts both steps to those strategies (default: every strategy in the file).
# Tuning runs JOBS processes side by side, each on its share of the strategies. Everything lands
# under $OUT/SCENARIO (default runs/); the wall-clock of each step goes to $OUT/SCENARIO/protocol.log,
# and the tuning records, the tuned file and results.json are copied to bench/results/SCENARIO/.
set -euo pipefail
cd "$(dirname "$0")/.."
CLI=${CLI:-.venv/bin/avalanche-hsf}
PY=${PY:-.venv/bin/python}
SCENARIO=$1
TRIALS=${2:-20}
JOBS=${3:-2}
EPOCHS=${4:-}
OUT=${OUT:-runs}
NAME=$($PY -c "import sys; from avalanche_hsf.lab.scenario import load_scenario; print(load_scenario(sys.argv[1]).name)" "$SCENARIO")
mapfile -t GROUPS_ < <($PY - "$SCENARIO" "$JOBS" <<'PY'
import sys
from avalanche_hsf.lab.scenario import load_scenario
import os
names, jobs = list(load_scenario(sys.argv[1]).strategies), int(sys.argv[2])
names = [n for n in os.environ.get("STRATEGIES", ",".join(names)).split(",") if n]
for job in range(jobs):
    if names[job::jobs]:
        print(",".join(names[job::jobs]))
PY
)
mkdir -p "$OUT/$NAME"
LOG="$OUT/$NAME/protocol.log"
EPOCH_ARGS=()
[[ -n "$EPOCHS" ]] && EPOCH_ARGS=(--epochs "$EPOCHS")

start=$(date +%s)
for group in "${GROUPS_[@]}"; do
  $CLI tune "$SCENARIO" --strategies "$group" --trials "$TRIALS" --threads 1 --quiet --out "$OUT" "${EPOCH_ARGS[@]}" \
    > "$OUT/$NAME/tune_${group//,/_}.txt" 2>&1 &
done
wait
tuned=$(( $(date +%s) - start ))
echo "$(date -u +%FT%TZ) tune $SCENARIO --trials $TRIALS ${EPOCH_ARGS[*]} in $JOBS jobs: ${tuned}s" >> "$LOG"

start=$(date +%s)
RUN_ARGS=()
[[ -n "${STRATEGIES:-}" ]] && RUN_ARGS=(--strategies "$STRATEGIES")
$CLI run "$OUT/$NAME/tuning/$NAME.toml" --threads 1 --quiet --out "$OUT" "${RUN_ARGS[@]}" > "$OUT/$NAME/report.txt" 2>&1
reported=$(( $(date +%s) - start ))
echo "$(date -u +%FT%TZ) run $OUT/$NAME/tuning/$NAME.toml ${RUN_ARGS[*]}: ${reported}s" >> "$LOG"

mkdir -p "bench/results/$NAME"
cp "$OUT/$NAME"/tuning/*.json "$OUT/$NAME/tuning/$NAME.toml" "$OUT/$NAME/results.json" "$OUT/$NAME/report.txt" \
   "$LOG" "bench/results/$NAME/"
cat "$OUT/$NAME/report.txt"
