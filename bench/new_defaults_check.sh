#!/usr/bin/env bash
# Does HSF lose anything with the target's current defaults (unit_init, a two-layer encoder) where its
# rows were tuned with the earlier ones? `hsf` is tuned and reported again under the protocol
# (bench/protocol.sh, the same trials as its table) from a copy of each file whose [strategies.hsf]
# drops its `encoder_layers` and `unit_init` pins (it keeps the output regulariser and its
# hypernetwork, which the file also pins); the shipped files and their tables are left as they are.
#
#   bench/new_defaults_check.sh [TRIALS] [WORKERS]   (defaults: 10 trials, every core)
#
# SCENARIOS="a b" picks the files (default: the four whose HSF rows pin the earlier defaults).
# STRATEGY=hsf_null_space (or another HSF variant) asks the same of that variant instead: the copy
# gains its section, [strategies.hsf] without those pins, without the regulariser's (chunk_size,
# frozen_features, null_space) and without what the variant fixes itself, so that it runs with the
# current defaults (for hsf_null_space: the old tasks kept exactly, in few large chunks).
# Runs land under runs/new_defaults/, records in bench/results/SCENARIO/new_defaults/ (for another
# STRATEGY, new_defaults_STRATEGY/; RECORDS=NAME names that folder instead).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
TRIALS=${1:-10}
WORKERS=${2:-$(nproc)}
STRATEGY=${STRATEGY:-hsf}
DEFAULT_RECORDS=new_defaults
[[ $STRATEGY != hsf ]] && DEFAULT_RECORDS+="_$STRATEGY"
RECORDS=${RECORDS:-$DEFAULT_RECORDS}
COPIES=$(mktemp -d)
for scenario in ${SCENARIOS:-split_mnist5k_til split_mnist5k_cil split_digits_cil seed_curves}; do
  $PY - "scenarios/$scenario.toml" "$COPIES/$scenario.toml" "$STRATEGY" <<'PYTHON'
import sys
import tomllib

import tomli_w

from avalanche_hsf.lab.strategies import STRATEGIES

source, copy, strategy = sys.argv[1:]
document = tomllib.loads(open(source).read())
regulariser = ("chunk_size", "frozen_features", "null_space") if strategy != "hsf" else ()
dropped = ("encoder_layers", "unit_init", *regulariser, *STRATEGIES[strategy].variant)
section = {key: value for key, value in document["strategies"]["hsf"].items() if key not in dropped}
document["strategies"][strategy] = section
open(copy, "w").write(tomli_w.dumps(document))
PYTHON
  OUT=runs/$RECORDS RESULTS="bench/results/$scenario/$RECORDS" STRATEGIES=$STRATEGY \
    bench/protocol.sh "$COPIES/$scenario.toml" "$TRIALS" "$WORKERS"
done
