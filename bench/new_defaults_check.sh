#!/usr/bin/env bash
# Does HSF lose anything with its current defaults (unit_init, a two-layer encoder) where its rows were
# tuned with the earlier ones? `hsf` is tuned and reported again under the protocol (bench/protocol.sh,
# the same trials as its table) from a copy of each file whose [strategies.hsf] drops its
# `encoder_layers` and `unit_init` pins; the shipped files and their tables are left as they are.
#
#   bench/new_defaults_check.sh [TRIALS] [WORKERS]   (defaults: 10 trials, every core)
#
# SCENARIOS="a b" picks the files (default: the four whose HSF rows pin the earlier defaults).
# Runs land under runs/new_defaults/, records in bench/results/SCENARIO/new_defaults/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
TRIALS=${1:-10}
WORKERS=${2:-$(nproc)}
COPIES=$(mktemp -d)
for scenario in ${SCENARIOS:-split_mnist5k_til split_mnist5k_cil split_digits_cil seed_curves}; do
  $PY - "scenarios/$scenario.toml" "$COPIES/$scenario.toml" <<'EOF'
import sys
import tomllib

import tomli_w

document = tomllib.loads(open(sys.argv[1]).read())
for pin in ("encoder_layers", "unit_init"):
    document["strategies"]["hsf"].pop(pin, None)
open(sys.argv[2], "w").write(tomli_w.dumps(document))
EOF
  OUT=runs/new_defaults RESULTS="bench/results/$scenario/new_defaults" STRATEGIES=hsf \
    bench/protocol.sh "$COPIES/$scenario.toml" "$TRIALS" "$WORKERS"
done
