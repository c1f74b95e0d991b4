"""`avalanche-hsf tune`: every strategy's hyperparameters chosen on the validation stream, with the
same budget for each.

Each strategy's search space is its registry entry's `space` plus the optimizer and learning rate
(`TRAINING_SPACE`, the same for every strategy), less what the scenario's own values leave unused
(β when HSF keeps old tasks by null space). Optuna's TPE sampler proposes the trials through
its ask-and-tell interface, and every strategy gets the same number of trials. A trial trains the
strategy on each tuning seed and scores it on the validation stream: the mean ACC (the mean MSE
for regression, minimised). The test stream is never evaluated. A trial that diverges is recorded
as failed, not dropped. Values whose model has no room for the scenario's tasks (HSF's null space in
a narrow hypernetwork) are found before any training: they are recorded as rejected and not counted,
so that every strategy gets the same number of trained trials. The best trial must also
pass a quick check: trained for `QUICK_CHECK_EPOCHS` epochs on each tuning seed, it must not
diverge, or the next best is taken, so that the shipped values are not at the edge of stability.
The studies live in an SQLite file, so a search that is interrupted resumes where it stopped:
finished trials are kept and an unfinished one is run again.

Writes `DIR/<scenario>/tuning/<strategy>.json` (every trial and the best) and
`DIR/<scenario>/tuning/<scenario>.toml`, the scenario with the best values, which `avalanche-hsf run`
takes as it is and reports on its own seeds.
"""

import contextlib
import json
import math
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

import optuna
import tomli_w
from optuna.trial import TrialState
from tqdm.auto import tqdm

from ..errors import DivergedError, NoRoomError, UserError
from .executors import InProcess
from .files import atomic_write_bytes, atomic_write_json, ensure_writable_dir
from .runner import prepare, run_strategy_seed, scenario_benchmark
from .scenario import Scenario
from .strategies import STRATEGIES, validate_strategy

TUNING_SEEDS = (1000, 1001)  # never among a scenario's reporting seeds (checked)
DEFAULT_TRIALS = 20
SAMPLER_SEED = 0  # TPE's own randomness: the same proposals for the same results
QUICK_CHECK_EPOCHS = 2  # the best values must also train this briefly without diverging
MAX_REJECTED_PER_TRIAL = 10  # beyond this many rejected proposals per counted trial the space is mostly no room


def _record(trial) -> dict:
    return {"number": trial.number, "params": trial.params, "scores": trial.user_attrs.get("scores", []),
            "score": trial.value if trial.state == TrialState.COMPLETE else None,
            "status": "complete" if trial.state == TrialState.COMPLETE else "failed",
            **({"error": trial.user_attrs["error"]} if "error" in trial.user_attrs else {})}


def _passes(record: dict) -> bool:
    return record["status"] == "complete" and not record.get("quick_check", "ok").startswith("diverged")


def best_of(records: list[dict], minimise: bool) -> dict | None:
    """The complete trial with the best score (the first of equals), among those that did not
    diverge in the quick check."""
    complete = [r for r in records if _passes(r)]
    if not complete:
        return None
    best = (min if minimise else max)(complete, key=lambda r: r["score"])
    return {"params": best["params"], "score": best["score"], "number": best["number"]}


@dataclass(frozen=True)
class TrialRun:
    """One trial on one tuning seed: a job for an executor."""
    scenario: Scenario  # with the trial's values in the strategy's table
    strategy: str
    seed: int
    dataset_root: str | None = None
    device: str = "cpu"


def validation_score(run: TrialRun) -> float:
    """The run's score on the validation stream; DivergedError if it diverges, NoRoomError
    (before training) if the model cannot take all the tasks."""
    key = "avg_mse" if run.scenario.regression else "acc"
    return run_strategy_seed(run.scenario, scenario_benchmark(run.scenario, run.dataset_root), run.strategy,
                             run.seed, device=run.device, progress=False, split="valid")[key]


def _trial_runs(scenario: Scenario, name: str, params: dict, seeds, dataset_root, device) -> list[TrialRun]:
    hparams = validate_strategy(name, scenario.setting, {**scenario.strategies.get(name, {}), **params},
                                f"trial of {name}", scenario.training)
    trial_scenario = replace(scenario, strategies={**scenario.strategies, name: hparams})
    return [TrialRun(trial_scenario, name, seed, dataset_root, device) for seed in seeds]


def quick_check(scenario: Scenario, name: str, params: dict, seeds, executor, dataset_root, device) -> str:
    """"ok" if `params` train for QUICK_CHECK_EPOCHS epochs on every tuning seed without diverging
    (scored on the validation stream), "diverged: <error>" if not, "not run: <why>" if the strategy
    cannot train that briefly by design."""
    short = replace(scenario, training=replace(scenario.training, epochs=QUICK_CHECK_EPOCHS))
    try:
        runs = _trial_runs(short, name, params, seeds, dataset_root, device)
    except UserError as err:  # e.g. PackNet's post-pruning phase must be shorter than the training
        return f"not run: {err}"
    with contextlib.closing(executor.map(validation_score, runs)) as outcomes:
        errors = [error for _, _, error in outcomes if error is not None]
    for error in errors:
        if not isinstance(error, DivergedError):
            raise error
    return f"diverged: {' '.join(str(errors[0]).split())}" if errors else "ok"


def checked_best(records: list[dict], minimise: bool, check) -> dict | None:
    """The best trial (`best_of`) once the best ones are quick-checked in turn with `check(params)`,
    whose outcome each checked record keeps as `quick_check`."""
    ranked = sorted((r for r in records if r["status"] == "complete"), key=lambda r: r["score"], reverse=not minimise)
    for record in ranked:  # sorted() is stable, so the first of equals comes first, as in best_of
        record["quick_check"] = check(record["params"])
        if _passes(record):
            break
    return best_of(records, minimise)


def tune_strategy(scenario: Scenario, name: str, trials: int, seeds, storage: str, executor=None,
                  dataset_root=None, device: str = "cpu", progress: bool = True) -> dict:
    """Run the trials `name` still lacks, on `executor` (default: one after another, here); return
    its tuning record.

    Trials are proposed in rounds of as many as the executor runs at once, counting a trial's
    seeds: with no more slots than tuning seeds, one trial at a time, as in one process."""
    minimise = scenario.regression
    executor = executor or InProcess()
    storage = optuna.storages.RDBStorage(storage)
    existing = next((s for s in optuna.get_all_study_summaries(storage) if s.study_name == name), None)
    study = optuna.create_study(study_name=name, storage=storage, load_if_exists=True,
                                direction="minimize" if minimise else "maximize",
                                # Seeded by the trials so far, so a resumed search does not propose its
                                # first random trials again.
                                sampler=optuna.samplers.TPESampler(seed=SAMPLER_SEED + (existing.n_trials
                                                                                        if existing else 0)))
    # A trial left running by a process that stopped is closed as failed without an error: it is
    # not counted, and its place in the budget is run again.
    for stale in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(stale.number, state=TrialState.FAIL)

    def counted():
        return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL))
                if t.state == TrialState.COMPLETE or "error" in t.user_attrs]

    def rejected():
        return [t for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)) if "rejected" in t.user_attrs]

    space = STRATEGIES[name].search_space(scenario.strategies.get(name, {}))
    per_round = max(1, executor.slots // len(seeds))
    bar = tqdm(total=trials, initial=min(len(counted()), trials), desc=f"tune {name}", unit="trial",
               leave=False, disable=not progress)
    while len(counted()) < trials:
        asked = [study.ask(space) for _ in range(min(per_round, trials - len(counted())))]
        runs = [run for trial in asked for run in _trial_runs(scenario, name, trial.params, seeds, dataset_root,
                                                              device)]
        scores, failures, rejections = [None] * len(runs), {}, {}
        with contextlib.closing(executor.map(validation_score, runs)) as outcomes:
            for index, score, error in outcomes:
                if error is None:
                    scores[index] = score
                elif isinstance(error, DivergedError):
                    failures.setdefault(index // len(seeds), error)
                elif isinstance(error, NoRoomError):
                    rejections.setdefault(index // len(seeds), error)
                else:  # bad input or a bug, not a property of the trial's values
                    raise error
        for number, trial in enumerate(asked):
            trial_scores = scores[number * len(seeds):(number + 1) * len(seeds)]
            if number in rejections:
                trial.set_user_attr("rejected", " ".join(str(rejections[number]).split()))
                study.tell(trial, state=TrialState.FAIL)
                continue
            if number in failures:
                trial.set_user_attr("error", " ".join(str(failures[number]).split()))
                study.tell(trial, state=TrialState.FAIL)
            else:
                trial.set_user_attr("scores", trial_scores)
                score = sum(trial_scores) / len(trial_scores)
                if math.isfinite(score):
                    study.tell(trial, score)
                else:
                    trial.set_user_attr("error", f"non-finite validation score {score}")
                    study.tell(trial, state=TrialState.FAIL)
            bar.update()
        if len(so_far := rejected()) > MAX_REJECTED_PER_TRIAL * trials:
            raise UserError(f"tune {name}: {len(so_far)} proposals had no room for the scenario's tasks, "
                            f"for example: {so_far[-1].user_attrs['rejected']}")
    bar.close()
    records = [_record(t) for t in counted()][:trials]
    if scenario.training.epochs == QUICK_CHECK_EPOCHS:  # the trials themselves trained that briefly
        best = best_of(records, minimise)
    else:
        best = checked_best(records, minimise, lambda params: quick_check(scenario, name, params, seeds, executor,
                                                                          dataset_root, device))
    return {"scenario": scenario.name, "strategy": name, "split": "valid", "seeds": list(seeds),
            "score": "avg_mse" if minimise else "acc", "direction": "minimize" if minimise else "maximize",
            "epochs": scenario.training.epochs, "space": {k: repr(v) for k, v in space.items()},
            "trials": records, "best": best,
            "rejected": [{"number": t.number, "params": t.params, "reason": t.user_attrs["rejected"]}
                         for t in rejected()]}


def tuned_scenario_text(scenario: Scenario, best: dict[str, dict]) -> str:
    """The scenario file with each tuned strategy's best values (`best`: strategy -> values), the
    epochs it was tuned with, and its data path made absolute, so that `avalanche-hsf run` takes it
    from any folder."""
    document = tomllib.loads(Path(scenario.path).read_text())
    document["training"] = {**document.get("training", {}), "epochs": scenario.training.epochs}
    document["benchmark"] = {"name": scenario.benchmark, **scenario.benchmark_params}
    for name, params in best.items():
        document["strategies"][name] = {**document["strategies"].get(name, {}), **params}
    return tomli_w.dumps(document)


def tune_scenario(scenario: Scenario, out_dir, strategies=None, trials: int = DEFAULT_TRIALS,
                  seeds=TUNING_SEEDS, epochs=None, dataset_root=None, device: str = "cpu",
                  progress: bool = True, executor=None) -> dict[str, dict]:
    """Tune `strategies` (default: all in the file) with trials run on `executor` (default: one
    after another, here); returns each one's tuning record."""
    if trials < 1:
        raise UserError(f"--trials must be >= 1, got {trials}")
    shared = sorted(set(seeds) & set(scenario.seeds))
    if shared:
        raise UserError(f"tuning seeds {shared} are among the scenario's reporting seeds {list(scenario.seeds)}; "
                        "tune on other seeds (--seeds)")
    scenario, strategies = prepare(scenario, strategies, epochs, device)
    folder = Path(out_dir) / scenario.name / "tuning"
    ensure_writable_dir(folder)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    scenario_benchmark(scenario, dataset_root)  # missing or bad data stops here, before any trial
    storage = f"sqlite:///{folder / 'optuna.db'}"
    records = {}
    for name in strategies:
        records[name] = tune_strategy(scenario, name, trials, seeds, storage, executor, dataset_root, device, progress)
        atomic_write_json(folder / f"{name}.json", records[name])
    # From every strategy's record in the folder, so that searches run side by side (one strategy
    # each) all end up in the tuned file.
    best = {}
    for name in scenario.strategies:
        path = folder / f"{name}.json"
        record = json.loads(path.read_text()) if path.is_file() else None
        if record and record["best"] is not None and record["epochs"] == scenario.training.epochs:
            best[name] = record["best"]["params"]
    atomic_write_bytes(folder / f"{scenario.name}.toml", tuned_scenario_text(scenario, best).encode())
    return records


def format_tuning(records: dict[str, dict]) -> str:
    score = next(iter(records.values()))["score"]
    lines = [f"{'strategy':<16}{'best':>9}{'failed':>8}{'rejected':>10}  best values (by validation {score})"]
    for name, record in records.items():
        failed = sum(r["status"] == "failed" for r in record["trials"])
        rejected = len(record["rejected"])
        best = record["best"]
        values = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in
                           (best["params"] if best else {}).items())
        lines.append(f"{name:<16}{best['score'] if best else float('nan'):>9.4f}{failed:>8}{rejected:>10}  "
                     f"{values or '-'}")
    return "\n".join(lines)
