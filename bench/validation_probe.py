"""One strategy of a scenario file with some of its values changed, scored on the VALIDATION stream
of the given seeds (use tuning seeds; the test stream is never evaluated): where a probe says to look,
not a result to report.

    OMP_NUM_THREADS=1 .venv/bin/python bench/validation_probe.py SCENARIO STRATEGY [--set JSON] [--seeds 1000,1001]

Prints one JSON line per seed: the final average score (ACC or MSE), the matrix's diagonal (each
task right after it was learned), its last row, the mean change of the old tasks' scores from the
one to the other, and the training seconds.
"""

import argparse
import json
import sys
from dataclasses import replace

import torch

from avalanche_hsf.lab.runner import run_strategy_seed, scenario_benchmark
from avalanche_hsf.lab.scenario import load_scenario
from avalanche_hsf.lab.strategies import validate_strategy


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario")
    parser.add_argument("strategy")
    parser.add_argument("--set", default="{}", help="JSON of values applied over the file's")
    parser.add_argument("--seeds", default="1000,1001")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    scenario, changes = load_scenario(args.scenario), json.loads(args.set)
    values = {**scenario.strategies.get(args.strategy, {}), **changes}
    hparams = validate_strategy(args.strategy, scenario.setting, values, "--set", scenario.training)
    run = replace(scenario, strategies={args.strategy: hparams})
    benchmark = scenario_benchmark(run)
    matrix_key, score = ("mse_matrix", "avg_mse") if scenario.regression else ("acc_matrix", "acc")
    for seed in (int(s) for s in args.seeds.split(",")):
        result = run_strategy_seed(run, benchmark, args.strategy, seed, progress=False, split="valid")
        matrix = result[matrix_key]
        print(json.dumps({"strategy": args.strategy, "seed": seed, "set": changes,
                          score: result[score],
                          "old_tasks_change": sum(matrix[-1][j] - matrix[j][j] for j in range(len(matrix) - 1))
                          / max(1, len(matrix) - 1),
                          "diagonal": [round(matrix[j][j], 4) for j in range(len(matrix))],
                          "final_row": [round(v, 4) for v in matrix[-1]],
                          "train_seconds": round(result["train_seconds"], 1)}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
