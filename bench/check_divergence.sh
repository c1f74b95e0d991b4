#!/usr/bin/env bash
# Shipped hyperparameters must survive a quick check: every strategy of each scenario trains without
# diverging, with 2 epochs per experience and with the file's own epochs, on every reporting seed.
#
#   bench/check_divergence.sh SCENARIO [SCENARIO ...]   (default: every embedded shipped scenario)
#
# One line per (scenario, epochs, strategy): "ok" or the one-line error. Outputs go to $OUT
# (default /tmp/check_divergence); the exit status is non-zero if any run failed. A strategy's seeds
# run in $WORKERS local processes (default 1). CHECK_EPOCHS=2 checks only the short runs, for a
# scenario whose table (every seed, the file's epochs) already shows the rest.
set -uo pipefail
cd "$(dirname "$0")/.."
CLI=${CLI:-.venv/bin/avalanche-hsf}
PY=${PY:-.venv/bin/python}
OUT=${OUT:-/tmp/check_divergence}
WORKERS=${WORKERS:-1}
SCENARIOS=("$@")
if [[ ${#SCENARIOS[@]} -eq 0 ]]; then
  mapfile -t SCENARIOS < <($PY -c "
from avalanche_hsf.lab.benchmarks import BENCHMARKS
from avalanche_hsf.lab.scenario import load_scenario, shipped_scenarios
for path in shipped_scenarios():
    if BENCHMARKS[load_scenario(str(path)).benchmark].embedded:
        print(path.stem)")
fi
status=0
for scenario in "${SCENARIOS[@]}"; do
  strategies=$($PY -c "import sys; from avalanche_hsf.lab.scenario import load_scenario; print(' '.join(load_scenario(sys.argv[1]).strategies))" "$scenario")
  for epochs in ${CHECK_EPOCHS:-2 file}; do
    for strategy in $strategies; do
      args=(run "$scenario" --strategies "$strategy" --workers "$WORKERS" --threads 1 --quiet --out "$OUT/$epochs")
      [[ $epochs == 2 ]] && args+=(--epochs 2)
      if err=$($CLI "${args[@]}" 2>&1 >/dev/null); then
        echo "$scenario epochs=$epochs $strategy: ok"
      else
        echo "$scenario epochs=$epochs $strategy: ${err##*$'\n'}"
        status=1
      fi
    done
  done
done
exit $status
