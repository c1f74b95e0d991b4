"""Grid search of one hyperparameter of one strategy on a scenario, same budget for every value.

    python bench/tune.py split_mnist5k_til mas lambda_reg 0.01,0.1,1,10 --seeds 0 --out /tmp/tuning
    python bench/tune.py split_mnist5k_til mas lambda_reg 0.1,1 --set per_sample=false --set accumulate=ema

A value whose run raises (e.g. MAS's "non-finite importance" when λ is too large for the step
size) is recorded as failed instead of ending the grid. `--set key=value` fixes another hyperparameter for the
whole grid (true/false, numbers and strings are parsed). Prints ACC and BWT per value, the best
by ACC among the values that finished, and writes <out>/<scenario>_<strategy>[_<tag>].json.
"""

import argparse
import time
import traceback
import warnings
from dataclasses import replace

from avalanche_hsf.lab.files import atomic_write_json
from avalanche_hsf.lab.runner import run_scenario
from avalanche_hsf.lab.scenario import load_scenario
from avalanche_hsf.lab.strategies import validate_strategy


def parse_value(raw: str):
    low = raw.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(raw) if raw.strip().lstrip("-").isdigit() else float(raw)
    except ValueError:
        return raw.strip()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario")
    parser.add_argument("strategy")
    parser.add_argument("param")
    parser.add_argument("values", help="comma-separated values")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="fix another hyperparameter for the whole grid")
    parser.add_argument("--tag", default="", help="suffix for the output file and run names")
    parser.add_argument("--out", default="runs/tuning")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    scenario = load_scenario(args.scenario)
    seeds = [int(s) for s in args.seeds.split(",")]
    fixed = {}
    for item in args.set:
        key, _, raw = item.partition("=")
        fixed[key.strip()] = parse_value(raw)
    base = {**scenario.strategies.get(args.strategy, {}), **fixed}
    suffix = f"_{args.tag}" if args.tag else ""
    grid = []
    for raw in args.values.split(","):
        value = parse_value(raw)
        hparams = validate_strategy(args.strategy, scenario.setting, {**base, args.param: value},
                                    f"{args.param}={raw}", scenario.training)
        tuned = replace(scenario, name=f"{scenario.name}_{args.strategy}{suffix}_{args.param}_{raw}",
                        strategies={args.strategy: hparams})
        start = time.perf_counter()
        try:
            result = run_scenario(tuned, args.out, strategies=[args.strategy], seeds=seeds,
                                  epochs=args.epochs, progress=False)["strategies"][args.strategy]
        except Exception as err:  # noqa: BLE001 - a failed value is a result of the grid
            seconds = time.perf_counter() - start
            message = f"{type(err).__name__}: {err}"
            grid.append({args.param: value, "failed": message, "seconds": seconds})
            print(f"{args.param}={raw:>10}  FAILED ({message.splitlines()[0]})  [{seconds:.0f} s]", flush=True)
            traceback.print_exc(limit=1)
            continue
        seconds = time.perf_counter() - start
        grid.append({args.param: value, "acc": result["acc"], "acc_std": result["acc_std"],
                     "bwt": result["bwt"], "seconds": seconds,
                     **{k: result[k] for k in ("task_inference_acc",) if k in result}})
        inferred = (f"  task inference {100 * result['task_inference_acc']:5.1f}"
                    if "task_inference_acc" in result else "")
        print(f"{args.param}={raw:>10}  ACC {100 * result['acc']:5.1f} ± {100 * result['acc_std']:.1f}"
              f"  BWT {100 * result['bwt']:6.1f}{inferred}  [{seconds:.0f} s]", flush=True)
    finished = [g for g in grid if "acc" in g]
    best = max(finished, key=lambda g: g["acc"]) if finished else None
    print(f"best by ACC: {args.param}={best[args.param]}" if best else "best by ACC: none (all failed)")
    atomic_write_json(f"{args.out}/{scenario.name}_{args.strategy}{suffix}.json",
                      {"scenario": scenario.name, "strategy": args.strategy, "seeds": seeds, "fixed": fixed,
                       "grid": grid, "best": best})


if __name__ == "__main__":
    main()
