"""`avalanche-hsf run | tune | report | list`."""

import argparse
import os
import sys
import warnings
from pathlib import Path

import torch

from ..errors import DivergedError, UserError
from .benchmarks import BENCHMARKS
from .params import COUNT, SEED, Range
from .results import format_table
from .scenario import load_scenario, shipped_scenarios
from .strategies import STRATEGIES
from .sweep import merge, run_scenario
from .tune import DEFAULT_TRIALS, TUNING_SEEDS, format_tuning, tune_scenario

MAX_THREADS = 1024  # torch.set_num_threads takes a C int; more threads than this is a typo


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(SEED.problem(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected integers from {SEED.low} to {SEED.high}, got {text!r}")
    return values


def _integer(rule: Range, unit: str = ""):
    """An argparse type: an integer within `rule`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        problem = rule.problem(value)
        if problem:
            raise argparse.ArgumentTypeError(f"expected {problem}{unit}, got {text!r}")
        return value
    return parse


_threads = _integer(Range(1, MAX_THREADS), " threads")
_count = _integer(COUNT)


def _name_list(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected comma-separated strategy names")
    return names


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit 2, as for every other bad input
        self.exit(2, f"{self.prog}: error: {_one_line(message)}\n")


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="avalanche-hsf", description="Run continual-learning scenarios with Avalanche.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="run a scenario across strategies")
    run.add_argument("scenario", help="a scenario name (see `list`) or a path to a TOML file")
    run.add_argument("--strategies", type=_name_list, help="comma-separated subset, e.g. naive,ewc")
    run.add_argument("--epochs", type=int, help="override the scenario's epochs per experience")
    run.add_argument("--seeds", type=_int_list, help="comma-separated seeds, e.g. 0,1,2")
    run.add_argument("--out", default="runs", help="output folder (default: runs)")
    run.add_argument("--dataset-root", help="where full benchmarks' data lives")
    run.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    run.add_argument("--workers", type=_count, default=1,
                     help="runs at once, each in its own process (default 1: one after another, in this process)")
    run.add_argument("--threads", type=_threads, default=1,
                     help="torch CPU threads per run (default 1: for tiny models the fastest)")
    run.add_argument("--checkpoint-dir", help="save after every training experience; rerun the same command "
                     "to resume an interrupted run")
    run.add_argument("--deterministic", action="store_true", help="use only deterministic torch kernels")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument("--verbose", action="store_true", help="also write Avalanche's per-metric log to each run's "
                     "log.txt")
    report = sub.add_parser("report", help="rebuild results.json, the plots and the table from a folder's run records")
    report.add_argument("folder", help="a scenario's output folder, e.g. runs/split_digits_til")
    tune = sub.add_parser("tune", help="choose each strategy's hyperparameters on the validation stream")
    tune.add_argument("scenario", help="a scenario name (see `list`) or a path to a TOML file")
    tune.add_argument("--strategies", type=_name_list, help="comma-separated subset, e.g. naive,ewc")
    tune.add_argument("--trials", type=_count, default=DEFAULT_TRIALS,
                      help=f"trials per strategy, the same for every strategy (default: {DEFAULT_TRIALS})")
    tune.add_argument("--seeds", type=_int_list, default=list(TUNING_SEEDS),
                      help=f"tuning seeds, not among the scenario's reporting seeds (default: "
                           f"{','.join(map(str, TUNING_SEEDS))})")
    tune.add_argument("--epochs", type=int, help="override the scenario's epochs per experience")
    tune.add_argument("--out", default="runs", help="output folder (default: runs)")
    tune.add_argument("--dataset-root", help="where full benchmarks' data lives")
    tune.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    tune.add_argument("--threads", type=_threads, help="torch CPU threads")
    tune.add_argument("--quiet", action="store_true", help="no progress bars")
    sub.add_parser("list", help="list scenarios and strategies")
    return parser


def _list() -> None:
    print("Scenarios:")
    for path in shipped_scenarios():
        try:
            scenario = load_scenario(str(path))
            print(f"  {path.stem:<24}{scenario.description or scenario.benchmark}")
        except UserError as err:
            print(f"  {path.stem:<24}(invalid: {err})")
    print("Benchmarks:")
    for name, entry in BENCHMARKS.items():
        print(f"  {name:<24}{entry.description} [{', '.join(entry.settings)}]")
    print("Strategies:")
    for name, entry in STRATEGIES.items():
        print(f"  {name:<24}{entry.description} [{', '.join(entry.settings)}]")


def _run(args) -> None:
    scenario = load_scenario(args.scenario)
    torch.set_num_threads(args.threads)
    results = run_scenario(scenario, args.out, strategies=args.strategies, seeds=args.seeds, epochs=args.epochs,
                           dataset_root=args.dataset_root, device=args.device, verbose=args.verbose,
                           progress=not args.quiet, checkpoint_dir=args.checkpoint_dir,
                           deterministic=args.deterministic, workers=args.workers, threads=args.threads)
    print(format_table(results))
    print(f"results, plots and TensorBoard logs: {os.path.join(args.out, scenario.name)}")


def _report(args) -> None:
    print(format_table(merge(Path(args.folder))))


def _tune(args) -> None:
    scenario = load_scenario(args.scenario)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    records = tune_scenario(scenario, args.out, strategies=args.strategies, trials=args.trials, seeds=args.seeds,
                            epochs=args.epochs, dataset_root=args.dataset_root, device=args.device,
                            progress=not args.quiet)
    print(format_tuning(records))
    folder = os.path.join(args.out, scenario.name, "tuning")
    print(f"trials: {folder}/<strategy>.json; tuned scenario: {os.path.join(folder, scenario.name + '.toml')} "
          f"(report it with `avalanche-hsf run` on its own seeds)")


def _one_line(err: object) -> str:
    return " ".join(str(err).split())


def main(argv=None) -> int:
    args = make_parser().parse_args(argv)
    warnings.filterwarnings("ignore")  # Avalanche's deprecation chatter drowns the table
    try:
        {"run": _run, "tune": _tune, "report": _report, "list": lambda _: _list()}[args.command](args)
    except UserError as err:
        print(f"avalanche-hsf: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except DivergedError as err:
        print(f"avalanche-hsf: error: training diverged: {_one_line(err)}", file=sys.stderr)
        return 3
    except Exception as err:  # a bug, not bad input: still one line, with the way to see more
        if os.environ.get("AVALANCHE_HSF_DEBUG"):
            raise
        print(f"avalanche-hsf: internal error: {type(err).__name__}: {_one_line(err)} "
              "(set AVALANCHE_HSF_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("avalanche-hsf: interrupted; results.json holds the strategies that finished "
              "(with --checkpoint-dir, rerun the same command to resume)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
