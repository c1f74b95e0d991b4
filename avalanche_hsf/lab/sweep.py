"""A sweep: a scenario's strategies over its seeds, one unit of work per run.

One run is a unit of work: (scenario, strategy, hyperparameters, seed) -> one record.

A unit writes its record atomically to `<out>/<scenario>/<strategy>/seed<k>/record.json`, beside
its TensorBoard logs and its own log file; `results.json`, the plots and the table are built by
merging the records that exist, so merging is idempotent, runs writing into one folder at the
same time never lose a record, and a sweep that is restarted skips the units it finished.

Every unit saves a checkpoint after each training experience (in its folder, deleted once its
record is written, unless a checkpoint folder is given), so a unit that is stopped (its worker
killed, the job preempted) resumes from its last finished experience with the same numbers.
Units run wherever the executor (`executors.py`) sends them.
"""

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from ..errors import DivergedError, UserError
from .executors import InProcess
from .files import atomic_write_json, ensure_writable_dir
from .plots import comparison_figure, first_task_curve_figure, matrix_figure, save_figure, task_curves_figure
from .results import aggregate_seeds, provenance
from .runner import prepare, run_config, run_strategy_seed, scenario_benchmark
from .scenario import Scenario
from .stopping import Preempted

RECORD = "record.json"
LOG = "log.txt"
CHECKPOINT = "checkpoint.pkl"  # in the unit's folder while it runs, when no checkpoint folder is given


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
    def checkpoint_path(self) -> Path:
        if self.checkpoint_dir is None:
            return self.folder / CHECKPOINT
        return self.checkpoint_dir / self.strategy / f"seed{self.seed}.ckpt"

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


def run_unit(unit: Unit) -> dict:
    """Train the unit, write its record, and return the record; its log goes to a file beside it."""
    scenario = unit.scenario
    benchmark = scenario_benchmark(scenario, unit.dataset_root)
    unit.folder.mkdir(parents=True, exist_ok=True)
    try:
        with open(unit.folder / LOG, "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            result = run_strategy_seed(scenario, benchmark, unit.strategy, unit.seed, unit.folder, device=unit.device,
                                       verbose=unit.verbose, progress=False, checkpoint_path=unit.checkpoint_path,
                                       # Asked for explicitly, a checkpoint that cannot be written is an
                                       # error; by default such a strategy runs without.
                                       checkpoint_required=unit.checkpoint_dir is not None)
    except BaseException:
        # Refused before it wrote anything (bad settings): leave no empty log or folder behind.
        if (unit.folder / LOG).stat().st_size == 0 and not unit.checkpoint_path.exists():
            (unit.folder / LOG).unlink()
            for folder in (unit.folder, unit.folder.parent):
                with contextlib.suppress(OSError):
                    folder.rmdir()
        raise
    record = {"scenario": scenario.name, "setting": scenario.setting,
              "task": "regression" if scenario.regression else "classification",
              "config": unit.config, "result": result}
    atomic_write_json(unit.folder / RECORD, record)
    if unit.checkpoint_dir is None:
        unit.checkpoint_path.unlink(missing_ok=True)
    return record


def run_units(units: list[Unit], executor=None, progress: bool = True) -> None:
    """Run the units that are not finished yet, on `executor` (default: one after another, here).

    A failed unit does not stop the others; when all are done the first failure is raised again,
    naming its strategy and seed. Records are written where the units run and, if that is not
    this machine's disk (a Ray cluster without a shared file system), again here."""
    todo = [unit for unit in units if unit.finished() is None]
    bar = tqdm(total=len(units), initial=len(units) - len(todo), desc="runs", unit="run", disable=not progress)
    failures = []
    with contextlib.closing((executor or InProcess()).map(run_unit, todo)) as outcomes:
        for index, record, error in outcomes:
            unit = todo[index]
            if isinstance(error, Preempted):
                raise error
            if error is not None:
                failures.append(error)
                bar.write(f"avalanche-hsf: {unit.strategy} seed {unit.seed} failed: "
                          f"{' '.join(str(error).split())} (log: {unit.folder / LOG})")
            elif unit.finished() is None:
                atomic_write_json(unit.folder / RECORD, record)
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
        save_figure(task_curves_figure(results["strategies"], results["scenario"]), out_dir / "task_mse.png")
    else:
        save_figure(comparison_figure(results["strategies"], results["scenario"]), out_dir / "comparison.png")
    atomic_write_json(out_dir / "results.json", results)
    return results


def run_scenario(scenario: Scenario, out_dir, strategies=None, seeds=None, epochs=None, dataset_root=None,
                 device: str = "cpu", verbose: bool = False, progress: bool = True, checkpoint_dir=None,
                 deterministic: bool = False, executor=None) -> dict:
    """Run `strategies` (default: all in the file) over `seeds`, scored on the test stream, as one unit
    of work per (strategy, seed), skipping units whose record already exists; write results.json
    and the plots from the records, and return the results.

    A rerun resumes unfinished units from their last finished experience; their checkpoints are
    kept in `checkpoint_dir` if given. The units run on `executor` (default: one after another, in
    this process); the matrices are the same on every executor."""
    scenario, strategies = prepare(scenario, strategies, epochs, device, deterministic)
    seeds = list(seeds if seeds is not None else scenario.seeds)
    out_dir = Path(out_dir) / scenario.name
    ensure_writable_dir(out_dir)
    if checkpoint_dir is not None:
        checkpoint_dir = Path(checkpoint_dir) / scenario.name
        ensure_writable_dir(checkpoint_dir)
    units = [Unit(scenario, name, seed, out_dir, checkpoint_dir, dataset_root, device, verbose)
             for name in strategies for seed in seeds]
    run_units(units, executor, progress=progress)
    return merge(out_dir, units)
