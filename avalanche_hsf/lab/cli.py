"""`avalanche-hsf run | tune | report | list`."""

import argparse
import contextlib
import os
import sys
import warnings
from dataclasses import fields, replace
from pathlib import Path

import torch

from ..errors import DivergedError, UserError
from .benchmarks import BENCHMARKS
from .executors import available_cores, make_executor
from .loggers import LOGGERS, WANDB_MODES
from .params import COUNT, SEED, Range
from .results import format_table
from .scenario import load_scenario, shipped_scenarios
from .spec import LoggingSpec, spec_defaults, spec_rules
from .stopping import Preempted, sigterm_stops
from .strategies import STRATEGIES
from .sweep import merge, run_scenario
from .tune import DEFAULT_TRIALS, TUNING_SEEDS, format_tuning, tune_scenario

RESUME_HINT = ("rerun the same command to go on: finished runs and trials are kept, and unfinished runs "
               "resume from their last finished experience")
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


def _resource(minimum: float):
    """An argparse type: a number of CPUs or GPUs, at least `minimum` (fractions allowed)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not value >= minimum or value == float("inf"):
            raise argparse.ArgumentTypeError(f"expected a finite number >= {minimum:g}, got {text!r}")
        return value
    return parse


def _name_list(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected comma-separated strategy names")
    return names


def _logger_names(text: str) -> str:
    problem = spec_rules(LoggingSpec)["loggers"].problem(text)
    if problem:
        raise argparse.ArgumentTypeError(f"expected {problem}, got {text!r}")
    return text


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit 2, as for every other bad input
        self.exit(2, f"{self.prog}: error: {_one_line(message)}\n")


def _executor_options() -> argparse.ArgumentParser:
    """Where the runs (or the trials' runs) go: the options `run` and `tune` share."""
    options = _Parser(add_help=False)
    cores = available_cores()
    options.add_argument("--workers", type=_count, default=cores,
                         help=f"local runs at once, each in its own process (default: the {cores} cores available; "
                              "1: one after another, in this process)")
    options.add_argument("--threads", type=_threads, default=1,
                         help="torch CPU threads per run (default 1: for tiny models the fastest)")
    options.add_argument("--executor", choices=("local", "ray"), default="local",
                         help="local processes (default), or tasks on a Ray cluster")
    options.add_argument("--ray-address", help="the Ray cluster to join (`auto`: the one started on this machine "
                         "with `ray start`; default: RAY_ADDRESS, else a new local instance)")
    options.add_argument("--cpus-per-run", type=_resource(0.01), default=1,
                         help="Ray: CPUs each run holds (default 1)")
    options.add_argument("--gpus-per-run", type=_resource(0), default=0,
                         help="Ray: GPUs each run holds; a fraction packs runs onto one GPU (needs --device cuda)")
    return options


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="avalanche-hsf", description="Run continual-learning scenarios with Avalanche.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    executor_options = _executor_options()
    run = sub.add_parser("run", help="run a scenario across strategies", parents=[executor_options])
    run.add_argument("scenario", help="a scenario name (see `list`) or a path to a TOML file")
    run.add_argument("--strategies", type=_name_list, help="comma-separated subset, e.g. naive,ewc")
    run.add_argument("--epochs", type=int, help="override the scenario's epochs per experience")
    run.add_argument("--seeds", type=_int_list, help="comma-separated seeds, e.g. 0,1,2")
    run.add_argument("--out", default="runs", help="output folder (default: runs)")
    run.add_argument("--dataset-root", help="where full benchmarks' data lives")
    run.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    run.add_argument("--checkpoint-dir", help="keep each run's checkpoint (saved after every training experience) "
                     "there, also after it finished; by default it sits in the run's folder until the run ends")
    run.add_argument("--deterministic", action="store_true", help="use only deterministic torch kernels")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument("--verbose", action="store_true", help="also write Avalanche's per-metric log to each run's "
                     "log.txt")
    # Each overrides its key in the scenario's [logging] table, whose defaults are LoggingSpec's.
    logging_defaults = spec_defaults(LoggingSpec)
    run.add_argument("--loggers", type=_logger_names, help=f"comma-separated, from {', '.join(LOGGERS)} "
                     f"(default: the scenario's, else {logging_defaults['loggers']})")
    run.add_argument("--wandb-project", help=f"W&B project (default: {logging_defaults['wandb_project']})")
    run.add_argument("--wandb-entity", help="W&B entity, a user or team (default: W&B's own)")
    run.add_argument("--wandb-group", help="W&B group of the runs (default: the scenario's name)")
    run.add_argument("--wandb-mode", choices=WANDB_MODES, help=f"default: {logging_defaults['wandb_mode']}; "
                     "offline writes files only, with no account or network (`wandb sync` uploads them later)")
    report = sub.add_parser("report", help="rebuild results.json, the plots and the table from a folder's run records")
    report.add_argument("folder", help="a scenario's output folder, e.g. runs/split_digits_til")
    tune = sub.add_parser("tune", help="choose each strategy's hyperparameters on the validation stream",
                          parents=[executor_options])
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


def _worker_died(runs: int) -> None:
    print(f"avalanche-hsf: a worker process died; running its {runs} unfinished job(s) again "
          "(runs from their last checkpoint)", file=sys.stderr)


def _executor(args):
    if args.gpus_per_run and args.device != "cuda":
        raise UserError("--gpus-per-run needs --device cuda")
    torch.set_num_threads(args.threads)  # for the runs that this process runs itself
    return contextlib.closing(make_executor(args.executor, args.workers, args.threads, args.ray_address,
                                            args.cpus_per_run, args.gpus_per_run, on_restart=_worker_died))


def _with_logging_options(scenario, args):
    """The scenario with the `--loggers` and `--wandb-*` options that were given."""
    given = {f.name: getattr(args, f.name) for f in fields(LoggingSpec) if getattr(args, f.name) is not None}
    return replace(scenario, logging=replace(scenario.logging, **given))


def _run(args) -> None:
    scenario = _with_logging_options(load_scenario(args.scenario), args)
    with _executor(args) as executor:
        results = run_scenario(scenario, args.out, strategies=args.strategies, seeds=args.seeds, epochs=args.epochs,
                               dataset_root=args.dataset_root, device=args.device, verbose=args.verbose,
                               progress=not args.quiet, checkpoint_dir=args.checkpoint_dir,
                               deterministic=args.deterministic, executor=executor)
    print(format_table(results))
    print(f"results, plots and logs ({scenario.logging.loggers}): {os.path.join(args.out, scenario.name)}")


def _report(args) -> None:
    print(format_table(merge(Path(args.folder))))


def _tune(args) -> None:
    scenario = load_scenario(args.scenario)
    with _executor(args) as executor:
        records = tune_scenario(scenario, args.out, strategies=args.strategies, trials=args.trials, seeds=args.seeds,
                                epochs=args.epochs, dataset_root=args.dataset_root, device=args.device,
                                progress=not args.quiet, executor=executor)
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
        with sigterm_stops():
            {"run": _run, "tune": _tune, "report": _report, "list": lambda _: _list()}[args.command](args)
    except Preempted as err:
        print(f"avalanche-hsf: {err}; {RESUME_HINT}", file=sys.stderr)
        return 128 + 15
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
        print(f"avalanche-hsf: interrupted; {RESUME_HINT}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
