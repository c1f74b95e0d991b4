#!/usr/bin/env bash
# What HSF's default initialisation (HSFModel unit_init) does to the tuned files that pin it off:
# their HSF strategies with the same tuned values and unit_init = true, on their 5 reporting seeds.
# Not the protocol (which would tune again); it shows what re-tuning starts from (README, conflicting_curves).
#
#   bench/unit_init_check.sh        (results under $OUT, default runs/unit_init_check)
set -euo pipefail
cd "$(dirname "$0")/.."
CLI=${CLI:-.venv/bin/avalanche-hsf}
OUT=${OUT:-runs/unit_init_check}
FILES=$(mktemp -d)
for scenario in split_digits_cil seed_curves; do
    sed 's/^unit_init = false$/unit_init = true/' "scenarios/$scenario.toml" > "$FILES/$scenario.toml"
done
$CLI run "$FILES/split_digits_cil.toml" --strategies hsf,hsf_ent,hsf_nosde,hsf_noflow --workers 1 --threads 1 \
    --quiet --out "$OUT"
$CLI run "$FILES/seed_curves.toml" --strategies hsf --workers 1 --threads 1 --quiet --out "$OUT"
