"""Grid search of one hyperparameter of one strategy on a scenario, same budget for every value.

    python bench/tune.py split_digits_til ewc ewc_lambda 1,10,100,1000 --seeds 0

Prints ACC and BWT per value and writes the grid to runs/tuning/<scenario>_<strategy>.json.
"""

import argparse
import warnings
from dataclasses import replace

from avalanche_hsf.files import atomic_write_json
from avalanche_hsf.runner import run_scenario
from avalanche_hsf.scenario import load_scenario
from avalanche_hsf.strategies import validate_strategy


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario")
    parser.add_argument("strategy")
    parser.add_argument("param")
    parser.add_argument("values", help="comma-separated values")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--out", default="runs/tuning")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    scenario = load_scenario(args.scenario)
    seeds = [int(s) for s in args.seeds.split(",")]
    base = dict(scenario.strategies.get(args.strategy, {}))
    grid = []
    for raw in args.values.split(","):
        hparams = validate_strategy(args.strategy, scenario.setting, {**base, args.param: float(raw)},
                                    f"{args.param}={raw}", scenario.training)
        tuned = replace(scenario, name=f"{scenario.name}_{args.strategy}_{args.param}_{raw}",
                        strategies={args.strategy: hparams})
        result = run_scenario(tuned, args.out, strategies=[args.strategy], seeds=seeds, epochs=args.epochs,
                              progress=False)["strategies"][args.strategy]
        grid.append({args.param: float(raw), "acc": result["acc"], "acc_std": result["acc_std"],
                     "bwt": result["bwt"]})
        print(f"{args.param}={raw:>10}  ACC {100 * result['acc']:5.1f} ± {100 * result['acc_std']:.1f}"
              f"  BWT {100 * result['bwt']:6.1f}", flush=True)
    best = max(grid, key=lambda g: g["acc"])
    print(f"best by ACC: {args.param}={best[args.param]}")
    atomic_write_json(f"{args.out}/{scenario.name}_{args.strategy}.json",
                      {"scenario": scenario.name, "strategy": args.strategy, "seeds": seeds, "grid": grid})


if __name__ == "__main__":
    main()
