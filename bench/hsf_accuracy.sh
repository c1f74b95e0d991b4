#!/usr/bin/env bash
# HSF against the regularisers (task-IL) and against replay/distillation (class-IL), with its
# ablations, 3 seeds per table; and the grids behind the hyperparameters in the scenario files.
#
#   bench/hsf_accuracy.sh [grids|til|cil|seed|all]   (default: all)
#
# Outputs go under $OUT (default /tmp/hsf_accuracy); print tables with
#   python bench/results_table.py $OUT/<stage>/*/results.json
# Every run uses --threads 1: the models are small and the machine has 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
CLI=${CLI:-.venv/bin/avalanche-hsf}
OUT=${OUT:-/tmp/hsf_accuracy}
STAGE=${1:-all}
export OMP_NUM_THREADS=1
mkdir -p "$OUT"

grids() {
  # Two lanes, one per core. Seed 0, one change at a time.
  local T="--seeds 0 --out $OUT/tuning"
  local H="--set hnet_hidden=256 --set latent_dim=32"
  (
    # HSF's capacity and step size on split_mnist5k_til, from the registry defaults
    # (hnet_hidden 64, latent_dim 8, lr 1e-3, beta 0.1); then its beta, and LwF's alpha.
    $PY bench/tune.py split_mnist5k_til hsf hnet_hidden 64,128,256 $T
    $PY bench/tune.py split_mnist5k_til hsf lr 0.0003,0.003 $H --tag h256l32 $T
    $PY bench/tune.py split_mnist5k_til hsf beta 0.01,1.0 $H --set lr=0.003 --tag h256l32lr $T  # 0.1: the lr grid
    $PY bench/tune.py split_mnist5k_til lwf alpha 0.1,1,10,100 $T
    for S in split_digits_cil split_mnist5k_cil; do  # class-IL: the regularisers' values
      $PY bench/tune.py $S ewc ewc_lambda 100,1000,10000,100000 $T
      $PY bench/tune.py $S lwf alpha 0.1,1,10,100 $T
    done
    # class-IL HSF: the decoder's reconstruction weight (the scenario files' other values fixed)
    $PY bench/tune.py split_mnist5k_cil hsf reconstruction 1,3,10,30,100 --set gamma=0.1 $T
    # ...then the flow's weight, on all three seeds (at gamma 0.1 one seed fell to 49.7)
    $PY bench/tune.py split_mnist5k_cil hsf gamma 0.1,1.0 --seeds 0,1,2 --out $OUT/tuning
    $PY bench/tune.py split_digits_cil hsf reconstruction 1,10 $T
  ) &
  (
    # permuted_mnist5k_til is new: every regulariser gets a 4-value grid, HSF its beta.
    local S=permuted_mnist5k_til
    $PY bench/tune.py $S mas lambda_reg 0.01,0.1,1,10 $T
    $PY bench/tune.py $S ewc ewc_lambda 100,1000,10000,100000 $T
    $PY bench/tune.py $S si si_lambda 1000,10000,100000,1000000 $T
    $PY bench/tune.py $S lwf alpha 0.1,1,10,100 $T
    $PY bench/tune.py $S hsf beta 0.01,0.1,1.0 $H --set lr=0.003 $T
  ) &
  wait
}

til() {
  for scenario in split_mnist5k_til permuted_mnist5k_til; do
    $CLI run $scenario --strategies naive,ewc,si,lwf,mas,hsf,hsf_nosde,hsf_noflow --seeds 0,1,2 \
      --threads 1 --quiet --out "$OUT/til"
  done
}

cil() {
  for scenario in split_digits_cil split_mnist5k_cil; do
    $CLI run $scenario --strategies naive,ewc,lwf,icarl,hsf,hsf_ent,hsf_nosde,hsf_noflow --seeds 0,1,2 \
      --threads 1 --quiet --out "$OUT/cil"
  done
}

seed() {
  $CLI run seed_curves --threads 1 --quiet --out "$OUT/seed"
}

case "$STAGE" in
  grids) grids ;;
  til) til ;;
  cil) cil ;;
  seed) seed ;;
  all) grids; til; cil; seed ;;
  *) echo "usage: $0 [grids|til|cil|seed|all]" >&2; exit 2 ;;
esac
