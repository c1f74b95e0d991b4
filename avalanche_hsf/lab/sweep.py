"""A sweep: a scenario's strategies over its seeds, one unit of work per run.

One run is a unit of work: (scenario, strategy, hyperparameters, seed) -> one record.

A unit writes its record atomically to `<out>/<scenario>/<strategy>/seed<k>/record.json`, beside
its TensorBoard logs and its own log file; `results.json`, the plots and the table are built by
merging the records that exist, so merging is idempotent, runs writing into one folder at the
same time never lose a record, and a sweep that is restarted skips the units it finished.
Units run in this process, or in `workers` local processes, each with its own torch threads.
"""

import concurrent.futures
import contextlib
import json
import multiprocessing
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..errors import DivergedError, UserError
from .benchmarks import BENCHMARKS, build_benchmark
from .files import atomic_write_json, ensure_writable_dir
from .plots import comparison_figure, first_task_curve_figure, matrix_figure, save_figure
from .results import aggregate_seeds, provenance
from .runner import prepare, run_config, run_strategy_seed
from .scenario import Scenario

RECORD = "record.json"
LOG = "log.txt"


@dataclass(frozen=True)
class Unit:
    scenario: Scenario
    strategy: str
    seed: int
    out_dir: Path  # <out>/<scenario>
    checkpoint_dir: Path | None = None  # <checkpoint-dir>/<scenario>
    dataset_root: str | None = None
    device: str = "cpu"
    verbose: bool = False  # Avalanche's per-metric log too, in the unit's log file

    @property
    def folder(self) -> Path:
        return self.out_dir / self.strategy / f"seed{self.seed}"

    @property
    def config(self) -> dict:
        """What determines the unit's numbers, as a record stores it."""
        return run_config(self.scenario, self.strategy, self.seed)

    def finished(self) -> dict | None:
        """The unit's result if a record of these very settings exists."""
        path = self.folder / RECORD
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return record["result"] if record.get("config") == self.config else None


@lru_cache(maxsize=4)
def _benchmark(name: str, setting: str, params: str, dataset_root):
    return build_benchmark(name, setting, json.loads(params), dataset_root)


def run_unit(unit: Unit, progress: bool = False) -> dict:
    """Train the unit, write its record, and return its result; its log goes to a file beside it."""
    scenario = unit.scenario
    benchmark = _benchmark(scenario.benchmark, scenario.setting, json.dumps(scenario.benchmark_params,
                                                                             sort_keys=True), unit.dataset_root)
    unit.folder.mkdir(parents=True, exist_ok=True)
    try:
        with open(unit.folder / LOG, "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            result = run_strategy_seed(scenario, benchmark, unit.strategy, unit.seed, unit.folder, device=unit.device,
                                       verbose=unit.verbose, progress=progress, checkpoint_path=unit.checkpoint_dir
                                       and unit.checkpoint_dir / unit.strategy / f"seed{unit.seed}.ckpt")
    except BaseException:
        # Refused before it wrote anything (bad settings): leave no empty log or folder behind.
        if (unit.folder / LOG).stat().st_size == 0:
            (unit.folder / LOG).unlink()
            for folder in (unit.folder, unit.folder.parent):
                with contextlib.suppress(OSError):
                    folder.rmdir()
        raise
    atomic_write_json(unit.folder / RECORD, {"scenario": scenario.name, "setting": scenario.setting,
                                             "task": "regression" if BENCHMARKS[scenario.benchmark].regression
                                             else "classification", "config": unit.config, "result": result})
    return result


def _start_worker(threads: int) -> None:
    warnings.filterwarnings("ignore")
    torch.set_num_threads(threads)


def run_units(units: list[Unit], workers: int = 1, threads: int = 1, progress: bool = True) -> None:
    """Run the units that are not finished yet; `workers` > 1 runs them in that many local processes.

    A failed unit does not stop the others; when all are done the first failure is raised again,
    naming its strategy and seed."""
    todo = [unit for unit in units if unit.finished() is None]
    bar = tqdm(total=len(units), initial=len(units) - len(todo), desc="runs", unit="run", disable=not progress)
    failures = []
    if workers <= 1:
        for unit in todo:
            run_unit(unit)
            bar.update()
    else:
        # Fresh interpreters: a forked copy of a process that has started torch's thread pools can hang.
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                                    initargs=(threads,)) as pool:
            futures = {pool.submit(run_unit, unit): unit for unit in todo}
            for future in concurrent.futures.as_completed(futures):
                unit, error = futures[future], future.exception()
                if error is not None:
                    failures.append(error)
                    bar.write(f"avalanche-hsf: {unit.strategy} seed {unit.seed} failed: "
                              f"{' '.join(str(error).split())} (log: {unit.folder / LOG})")
                bar.update()
    bar.close()
    if failures:
        raise failures[0] if isinstance(failures[0], (UserError, DivergedError)) else UserError(str(failures[0]))


def merge(out_dir: Path, units: list[Unit] | None = None) -> dict:
    """Write results.json and the plots of `out_dir` (`<out>/<scenario>`) from its records: those of
    `units` if given (each must be finished), else every record there; return the results."""
    if units is not None:
        missing = [f"{u.strategy} seed {u.seed}" for u in units if u.finished() is None]
        if missing:
            raise UserError(f"{out_dir}: no record for {', '.join(missing)}")
        paths = [u.folder / RECORD for u in units]
    else:
        paths = sorted(out_dir.glob(f"*/seed*/{RECORD}"))
        if not paths:
            raise UserError(f"{out_dir}: no run records (<strategy>/seed<k>/{RECORD}) to report")
    records = [json.loads(path.read_text()) for path in paths]
    first, regression = records[0], records[0]["task"] == "regression"
    runs = {}
    for record in records:  # in the units' order: strategies as given, seeds as given
        runs.setdefault(record["config"]["strategy"], []).append(record["result"])
    results = {"scenario": first["scenario"], "setting": first["setting"], "task": first["task"], "split": "test",
               "seeds": sorted({result["seed"] for results in runs.values() for result in results}),
               "provenance": provenance(),
               "strategies": {name: aggregate_seeds(results) for name, results in runs.items()}}
    matrix_key = "mse_matrix" if regression else "acc_matrix"
    for name, aggregated in results["strategies"].items():
        save_figure(matrix_figure(aggregated[matrix_key], f"{results['scenario']}: {name}", regression),
                    out_dir / f"{matrix_key}_{name}.png")
    if regression:
        save_figure(first_task_curve_figure(results["strategies"], results["scenario"]), out_dir / "task0_mse.png")
    else:
        save_figure(comparison_figure(results["strategies"], results["scenario"]), out_dir / "comparison.png")
    atomic_write_json(out_dir / "results.json", results)
    return results


def run_scenario(scenario: Scenario, out_dir, strategies=None, seeds=None, epochs=None, dataset_root=None,
                 device: str = "cpu", verbose: bool = False, progress: bool = True, checkpoint_dir=None,
                 deterministic: bool = False, workers: int = 1, threads: int = 1) -> dict:
    """Run `strategies` (default: all in the file) over `seeds`, scored on the test stream, as one unit
    of work per (strategy, seed), skipping units whose record already exists; write results.json
    and the plots from the records, and return the results.

    With `checkpoint_dir`, every unit saves after each training experience and a rerun resumes
    where it stopped. `workers` > 1 runs the units in that many local processes of `threads` torch
    threads each; the matrices are the same as in one process."""
    scenario, strategies = prepare(scenario, strategies, epochs, device, deterministic)
    seeds = list(seeds if seeds is not None else scenario.seeds)
    out_dir = Path(out_dir) / scenario.name
    ensure_writable_dir(out_dir)
    if checkpoint_dir is not None:
        checkpoint_dir = Path(checkpoint_dir) / scenario.name
        ensure_writable_dir(checkpoint_dir)
    units = [Unit(scenario, name, seed, out_dir, checkpoint_dir, dataset_root, device, verbose)
             for name in strategies for seed in seeds]
    run_units(units, workers=workers, threads=threads, progress=progress)
    return merge(out_dir, units)
