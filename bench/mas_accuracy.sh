#!/usr/bin/env bash
# Issue 3 (MAS): λ grids, the 3-seed comparison and the estimator/accumulation ablation.
#
#   bench/mas_accuracy.sh [grids|final|ablation|all]   (default: all)
#
# Every output goes under $OUT (default /tmp/mas_accuracy). The grids tune λ with the same budget
# for each regulariser: 4 decade-spaced values, seed 0, chosen by ACC; a value whose run fails
# (MAS's "non-finite importance" when λ is too large for SGD+momentum) is recorded as failed
# (bench/tune.py). The chosen values are the ones in the scenario files' [strategies.*]
# tables, which the final runs read. GRID_SCENARIOS / FINAL_SCENARIOS restrict the stages to some scenarios. split_digits_til's grids are the README's
# (set REGRID_DIGITS=1 to rerun them too).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
CLI=${CLI:-.venv/bin/avalanche-hsf}
OUT=${OUT:-/tmp/mas_accuracy}
STAGE=${1:-all}
mkdir -p "$OUT"

grids() {
  for scenario in ${GRID_SCENARIOS:-split_mnist5k_til permuted_mnist5k}; do
    $PY bench/tune.py $scenario mas           lambda_reg 0.1,1,10,100            --seeds 0 --out "$OUT/tuning"
    $PY bench/tune.py $scenario mas_avalanche lambda_reg 0.1,1,10,100            --seeds 0 --out "$OUT/tuning"
    $PY bench/tune.py $scenario ewc           ewc_lambda 1000,10000,100000,1000000 --seeds 0 --out "$OUT/tuning"
    $PY bench/tune.py $scenario si            si_lambda  1000,10000,100000,1000000 --seeds 0 --out "$OUT/tuning"
  done
  if [[ "${REGRID_DIGITS:-0}" == 1 ]]; then
    $PY bench/tune.py split_digits_til ewc ewc_lambda 10,100,1000,10000,100000,1000000 --seeds 0 --out "$OUT/tuning"
    $PY bench/tune.py split_digits_til si si_lambda 1,10,100,1000,10000 --seeds 0 --out "$OUT/tuning"
    $PY bench/tune.py split_digits_til mas lambda_reg 0.01,0.03,0.1,0.3 --seeds 0 --out "$OUT/tuning"
    $PY bench/tune.py split_digits_til mas_avalanche lambda_reg 0.1,1,10,100 --seeds 0 --out "$OUT/tuning"
  fi
}

final() {
  for scenario in ${FINAL_SCENARIOS:-split_digits_til split_mnist5k_til permuted_mnist5k}; do
    $CLI run $scenario --strategies naive,ewc,si,mas,mas_avalanche --seeds 0,1,2 --out "$OUT/final" --quiet
  done
}

ablation() {
  # Where mas and mas_avalanche differ: mas's estimator (per_sample) and accumulation across
  # experiences (sum -> ema, Avalanche's α = 0.5) swapped one at a time and together, each with
  # its own λ grid (the estimators differ in scale), next to mas_avalanche on the same grid.
  # 3 seeds per value. split_digits_til by default because it is cheap (a few s per run).
  ABL_SCENARIO=${ABL_SCENARIO:-split_digits_til}
  GRID=${ABL_GRID:-0.01,0.1,1,10}
  $PY bench/tune.py $ABL_SCENARIO mas lambda_reg $GRID --seeds 0,1,2 --set per_sample=true --set accumulate=sum --tag sample_sum --out "$OUT/ablation"
  $PY bench/tune.py $ABL_SCENARIO mas lambda_reg $GRID --seeds 0,1,2 --set per_sample=false --set accumulate=sum --tag batch_sum --out "$OUT/ablation"
  $PY bench/tune.py $ABL_SCENARIO mas lambda_reg $GRID --seeds 0,1,2 --set per_sample=true --set accumulate=ema --tag sample_ema --out "$OUT/ablation"
  $PY bench/tune.py $ABL_SCENARIO mas lambda_reg $GRID --seeds 0,1,2 --set per_sample=false --set accumulate=ema --tag batch_ema --out "$OUT/ablation"
  $PY bench/tune.py $ABL_SCENARIO mas_avalanche lambda_reg $GRID --seeds 0,1,2 --tag avalanche --out "$OUT/ablation"
}

case "$STAGE" in
  grids) grids ;;
  final) final ;;
  ablation) ablation ;;
  all) grids; final; ablation ;;
  *) echo "usage: $0 [grids|final|ablation|all]" >&2; exit 2 ;;
esac
