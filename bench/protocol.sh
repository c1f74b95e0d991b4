#!/usr/bin/env bash
# The comparison protocol for one scenario, as the README's tables are made:
#   1. `avalanche-hsf tune`: every strategy in the file, the same number of trials each, scored on
#      the validation stream over the tuning seeds (never the test stream);
#   2. `avalanche-hsf run` of the tuned scenario file on the scenario's own reporting seeds, scored
#      on the test stream once.
#
#   bench/protocol.sh SCENARIO [TRIALS] [WORKERS] [EPOCHS]    (defaults: 20 trials, every core, the file's epochs)
#
# STRATEGIES=a,b,c restricts both steps to those strategies (default: every strategy in the file).
# TUNE_SEEDS=1000,1001,... sets the tuning seeds (default: tune's own, 1000 and 1001).
# Both steps run WORKERS local processes (`--workers`). Finished trials and runs are kept, so the
# same command resumes an interrupted protocol. Everything lands under $OUT/SCENARIO (default
# runs/); the wall-clock of each step goes to $OUT/SCENARIO/protocol.log, and the tuning records,
# the tuned file and results.json are copied to $RESULTS (default bench/results/SCENARIO/).
set -euo pipefail
cd "$(dirname "$0")/.."
CLI=${CLI:-.venv/bin/avalanche-hsf}
PY=${PY:-.venv/bin/python}
SCENARIO=$1
TRIALS=${2:-20}
WORKERS=${3:-$(nproc)}
EPOCHS=${4:-}
OUT=${OUT:-runs}
NAME=$($PY -c "import sys; from avalanche_hsf.lab.scenario import load_scenario; print(load_scenario(sys.argv[1]).name)" "$SCENARIO")
RESULTS=${RESULTS:-bench/results/$NAME}
mkdir -p "$OUT/$NAME"
LOG="$OUT/$NAME/protocol.log"
ARGS=(--workers "$WORKERS" --threads 1 --quiet --out "$OUT")
[[ -n "${STRATEGIES:-}" ]] && ARGS+=(--strategies "$STRATEGIES")

start=$(date +%s)
TUNE_ARGS=()
[[ -n "$EPOCHS" ]] && TUNE_ARGS=(--epochs "$EPOCHS")
[[ -n "${TUNE_SEEDS:-}" ]] && TUNE_ARGS+=(--seeds "$TUNE_SEEDS")
$CLI tune "$SCENARIO" --trials "$TRIALS" "${ARGS[@]}" "${TUNE_ARGS[@]}" > "$OUT/$NAME/tune.txt" 2>&1
echo "$(date -u +%FT%TZ) tune $SCENARIO --trials $TRIALS ${TUNE_ARGS[*]} ${STRATEGIES:+--strategies $STRATEGIES} --workers $WORKERS: $(( $(date +%s) - start ))s" >> "$LOG"

start=$(date +%s)
$CLI run "$OUT/$NAME/tuning/$NAME.toml" "${ARGS[@]}" > "$OUT/$NAME/report.txt" 2>&1
echo "$(date -u +%FT%TZ) run $OUT/$NAME/tuning/$NAME.toml ${STRATEGIES:+--strategies $STRATEGIES} --workers $WORKERS: $(( $(date +%s) - start ))s" >> "$LOG"

mkdir -p "$RESULTS"
cp "$OUT/$NAME"/tuning/*.json "$OUT/$NAME/tuning/$NAME.toml" "$OUT/$NAME/results.json" "$OUT/$NAME/report.txt" \
   "$LOG" "$RESULTS/"
cat "$OUT/$NAME/report.txt"
