"""One run of one strategy on one seed, with the evaluation protocol every run shares.

The scored stream (test, or validation when tuning) is evaluated once before training and after
every training experience, which gives the accuracy matrix R and the untrained accuracies that
FWT needs.
"""

import json
import math
import os
import re
import time
from dataclasses import asdict, replace
from functools import lru_cache
from pathlib import Path

import torch
from avalanche.evaluation.metrics import accuracy_metrics, loss_metrics
from avalanche.logging import InteractiveLogger, TensorboardLogger
from avalanche.models import MultiHeadClassifier
from avalanche.training.determinism.rng_manager import RNGManager
from avalanche.training.plugins import EvaluationPlugin
from tqdm.auto import tqdm

from ..errors import DivergedError, NoRoomError, UserError
from ..plugins import FiniteLossGuard
from . import metrics
from .benchmarks import build_benchmark
from .calibration import final_test_pass
from .checkpoint import RunCheckpoint, RunProgress
from .loggers import close_loggers, live_metrics, make_loggers
from .models import build_model, pretrain
from .plots import matrix_figure
from .resources import peak_rss_mb, reset_peak_rss
from .scenario import Scenario
from .state_size import TrainedParameters, state_bytes
from .stopping import StopCheck
from .strategies import STRATEGIES, TRAINING_KEYS, build_strategy, validate_strategy

_EXP_METRIC = re.compile(r"^(Top1_Acc_Exp|Loss_Exp)/eval_phase/(\w+)_stream/Task\d+/Exp(\d+)$")


def make_optimizer_factory(training):
    def make(model):
        if training.optimizer == "adam":
            return torch.optim.Adam(model.parameters(), lr=training.lr)
        return torch.optim.SGD(model.parameters(), lr=training.lr, momentum=training.momentum)
    return make


def stream_scores(strategy, stream, regression: bool = False) -> list[float]:
    """Accuracy (or, for regression, the MSE loss) on each experience of `stream`, read from
    Avalanche's own metrics."""
    wanted = ("Loss_Exp" if regression else "Top1_Acc_Exp", stream.name)
    found = {}
    for key, value in strategy.eval(stream).items():
        match = _EXP_METRIC.match(key)
        if match and match.group(1, 2) == wanted:
            found[int(match.group(3))] = float(value)
    return [found[i] for i in range(len(stream))]


def fwt_by_construction(model, setting: str) -> bool:
    """Whether FWT is zero by construction: Avalanche's per-task heads in task-IL are created when
    their task is first trained, so before it every model scores what the untrained model scores."""
    return setting == "task-il" and any(isinstance(m, MultiHeadClassifier) for m in model.modules())


def head_size(benchmark) -> int:
    return 1 + max(max(exp.classes_in_this_experience) for exp in benchmark.train_stream)


@lru_cache(maxsize=4)
def _cached_benchmark(name: str, setting: str, params: str, dataset_root):
    return build_benchmark(name, setting, json.loads(params), dataset_root)


def scenario_benchmark(scenario: Scenario, dataset_root=None):
    """The scenario's benchmark, built once per process: the runs of a sweep, and a worker's
    successive jobs, share it."""
    return _cached_benchmark(scenario.benchmark, scenario.setting, json.dumps(scenario.benchmark_params,
                                                                              sort_keys=True), dataset_root)


def _pretraining(benchmark, training, device):
    """How a model is pretrained on the benchmark's held-out classes (None if it has none): with the
    scenario's own optimizer settings, the same for every strategy."""
    dataset = getattr(benchmark, "pretrain_dataset", None)
    if dataset is None:
        return None
    return lambda model: pretrain(model, dataset, benchmark.pretrain_epochs, training.batch_size,
                                  make_optimizer_factory(training), device)


def run_hparams(scenario: Scenario, strategy_name: str) -> dict:
    """The strategy's full hyperparameters in `scenario`: its defaults, updated by its table."""
    return {**STRATEGIES[strategy_name].defaults_for(scenario.training), **scenario.strategies.get(strategy_name, {})}


def run_config(scenario: Scenario, strategy_name: str, seed: int) -> dict:
    """Everything that determines a run's numbers, as stored in checkpoints and run records (through
    JSON, so that tuples and lists, ints and floats compare as stored); a checkpoint only resumes,
    and a record only stands for, the same run."""
    config = {"scenario": scenario.name, "setting": scenario.setting, "benchmark": scenario.benchmark,
              "benchmark_params": scenario.benchmark_params, "model": asdict(scenario.model),
              "training": asdict(scenario.training), "strategy": strategy_name,
              "hparams": run_hparams(scenario, strategy_name), "seed": seed}
    return json.loads(json.dumps(config, sort_keys=True, default=str))


def run_strategy_seed(scenario: Scenario, benchmark, strategy_name: str, seed: int, log_dir: Path | None = None,
                      device: str = "cpu", verbose: bool = False, progress: bool = True,
                      checkpoint_path: Path | None = None, checkpoint_required: bool = True,
                      split: str = "test") -> dict:
    """Train one strategy on one seed; returns its accuracy matrix and measurements.

    The matrix is scored on the benchmark's `split` stream: "test" for reported results, "valid"
    for tuning, when the test stream is never evaluated. With `log_dir`, the loggers that
    `scenario.logging` names write there. With `checkpoint_path`, the run resumes from the last
    experience saved there and saves after every training experience; a strategy that cannot be
    saved is an error if `checkpoint_required`, else it runs without checkpoints."""
    RNGManager.set_random_seeds(seed)
    entry = STRATEGIES[strategy_name]
    hparams = run_hparams(scenario, strategy_name)
    training = replace(scenario.training, **{k: hparams[k] for k in TRAINING_KEYS})
    regression = scenario.regression
    scored_stream = benchmark.valid_stream if split == "valid" else benchmark.test_stream
    input_shape = tuple(benchmark.train_stream[0].dataset[0][0].shape)
    # A regression model outputs its targets' size (the input's, for autoencoding).
    num_outputs = math.prod(benchmark.train_stream[0].dataset[0][1].shape) if regression else head_size(benchmark)
    if entry.build_model is not None:
        model = entry.build_model(scenario.model, input_shape, num_outputs, scenario.setting,
                                  **{k: hparams[k] for k in entry.model_params})
    else:
        model = build_model(scenario.model, input_shape, num_outputs,
                            multi_head=scenario.setting == "task-il" and entry.multi_head,
                            prepare=_pretraining(benchmark, scenario.training, device))
    config = run_config(scenario, strategy_name, seed)
    # A run that resumes gets back the loggers it was saved with, in the checkpoint: new ones would
    # start their files (CSV) and runs (W&B) over.
    resuming = checkpoint_path is not None and checkpoint_path.exists()
    loggers = [] if log_dir is None or resuming else make_loggers(
        scenario.logging, log_dir, f"{strategy_name}/seed{seed}", scenario.name, config)
    loggers += [InteractiveLogger()] if verbose and not resuming else []
    scores = [] if regression else [accuracy_metrics(epoch=True, experience=True, stream=True), *live_metrics()]
    evaluator = EvaluationPlugin(*scores, loss_metrics(epoch=True, experience=True, stream=True),
                                 loggers=loggers)
    trained = TrainedParameters()
    strategy = build_strategy(
        strategy_name, hparams, model=model, make_optimizer=make_optimizer_factory(training),
        plugins=[FiniteLossGuard(), trained, StopCheck()],
        criterion=torch.nn.MSELoss() if regression else torch.nn.CrossEntropyLoss(),
        train_mb_size=scenario.training.batch_size, train_epochs=scenario.training.epochs,
        eval_mb_size=scenario.training.eval_batch_size, device=device, evaluator=evaluator,
    )

    no_room = entry.room_check and entry.room_check(strategy, len(benchmark.train_stream))
    if no_room:
        raise NoRoomError(f"{strategy_name}: {no_room}")

    reset_peak_rss()
    checkpoint = RunCheckpoint(checkpoint_path, config, checkpoint_required) if checkpoint_path else None
    run = checkpoint.restore(strategy, device) if checkpoint else RunProgress(config)
    trained = next(p for p in strategy.plugins if isinstance(p, TrainedParameters))  # restored with the strategy
    if run.initial is None:
        run.initial = stream_scores(strategy, scored_stream, regression)
    experiences = tqdm(benchmark.train_stream, desc=f"{strategy_name} seed {seed}", unit="exp",
                       leave=False, disable=not progress, initial=len(run.matrix))
    for index in range(len(run.matrix), len(benchmark.train_stream)):
        start = time.perf_counter()
        try:
            strategy.train(benchmark.train_stream[index])
        except DivergedError as err:
            clock = strategy.clock
            raise DivergedError(f"{strategy_name} (seed {seed}), experience {index}, epoch {clock.train_exp_epochs}, "
                                f"iteration {clock.train_epoch_iterations}: {err}") from err
        run.train_seconds += time.perf_counter() - start
        run.matrix.append(stream_scores(strategy, scored_stream, regression))
        if checkpoint:
            checkpoint.save(strategy, run)
        experiences.update()
    experiences.close()
    peak = peak_rss_mb()

    extra = state_bytes(entry.state(strategy), exclude=(strategy.model, strategy.optimizer, strategy))
    matrix, initial = run.matrix, run.initial
    if regression:
        scored = {"mse_matrix": matrix, "initial_mse": initial, **metrics.summarize_regression(matrix)}
    else:
        scored = {"acc_matrix": matrix, "initial_acc": initial,
                  **metrics.summarize(matrix, initial, fwt_defined=not fwt_by_construction(model, scenario.setting))}
    result = {
        "seed": seed, "split": split, **scored,
        "train_seconds": run.train_seconds, "peak_rss_mb": peak,
        "trained_parameters": trained.count, "extra_state_bytes_per_task": extra // len(matrix),
        "hparams": hparams, "resumed_at": run.resumed_at,
    }
    if not regression and split == "test":
        result.update(final_test_pass(strategy.model, scored_stream, scenario.training.eval_batch_size, device))
    if entry.report is not None:
        result.update(entry.report(strategy))
    for tb_logger in (log for log in strategy.evaluator.loggers if isinstance(log, TensorboardLogger)):
        _log_summary(tb_logger, result, strategy_name, scenario, regression)
    close_loggers(strategy.evaluator.loggers)
    return result


def _log_summary(tb_logger, result, strategy_name, scenario, regression):
    writer = tb_logger.writer
    title = f"{strategy_name}, seed {result['seed']}"
    if regression:
        writer.add_figure("mse_matrix", matrix_figure(result["mse_matrix"], title, regression=True))
        summary = {"hparam/avg_mse": result["avg_mse"], "hparam/avg_forgetting": result["avg_forgetting"]}
    else:
        writer.add_figure("accuracy_matrix", matrix_figure(result["acc_matrix"], title))
        summary = {"hparam/acc": result["acc"], "hparam/bwt": result["bwt"]}
        if result["fwt"] is not None:
            summary["hparam/fwt"] = result["fwt"]
    hparams = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in result["hparams"].items()}
    hparams.update(strategy=strategy_name, seed=result["seed"], epochs=scenario.training.epochs,
                   batch_size=scenario.training.batch_size)
    writer.add_hparams(hparams, summary, run_name=".")
    writer.close()


def use_deterministic_algorithms() -> None:
    """Same seed, same numbers: deterministic kernels everywhere, an error where none exists."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # required by deterministic cuBLAS
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True)


def prepare(scenario: Scenario, strategies=None, epochs=None, device: str = "cpu",
            deterministic: bool = False) -> tuple[Scenario, list[str]]:
    """The scenario with `epochs` applied and the strategies to run, checked before anything runs."""
    if epochs is not None:
        if epochs < 1:
            raise UserError(f"--epochs must be >= 1, got {epochs}")
        scenario = replace(scenario, training=replace(scenario.training, epochs=epochs))
    strategies = list(strategies or scenario.strategies)
    for name in strategies:
        validate_strategy(name, scenario.setting, scenario.strategies.get(name, {}), f"strategy {name}",
                          scenario.training)
        if scenario.regression and STRATEGIES[name].build_model is None:
            regressors = ", ".join(n for n, e in STRATEGIES.items() if e.build_model is not None)
            raise UserError(f"strategy {name}: it trains a classifier, and {scenario.benchmark} is a regression "
                            f"benchmark; use one of {regressors}")
        if scenario.benchmark_params.get("pretrain_classes") and STRATEGIES[name].build_model is not None:
            raise UserError(f"strategy {name}: it builds its own model, which cannot start from the backbone "
                            "pretrained on benchmark.pretrain_classes; leave it out of this scenario")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available on this machine")
    if deterministic:
        use_deterministic_algorithms()
    return scenario, strategies
