"""Where a run logs, and the continual-learning metrics that every logger shows while it runs.

Each logger is Avalanche's own class, given to the run's `EvaluationPlugin`: `TensorboardLogger`
(event files in the run's folder), `CSVLogger` (`csv/training_results.csv` and
`csv/eval_results.csv` in that folder) and `WandBLogger` (W&B's files under `wandb/` in that
folder; offline by default, so that no account and no network are needed). Avalanche's 0.6.0
`WandBLogger` needs `compat.py`'s `wandb-api` fix with recent wandb releases.

The live metrics are Avalanche's BWT, forgetting and forward transfer, per experience and over the
stream, computed from the evaluations the runner makes anyway (the scored stream before training
and after every experience), so they add no evaluation and change no number.
"""

from pathlib import Path

from avalanche.evaluation.metrics import bwt_metrics, forgetting_metrics
from avalanche.evaluation.metrics.forward_transfer import ExperienceForwardTransfer, StreamForwardTransfer
from avalanche.logging import CSVLogger, TensorboardLogger, WandBLogger

LOGGERS = ("tensorboard", "csv", "wandb")
WANDB_MODES = ("offline", "online", "disabled")
CSV_FOLDER = "csv"  # in the run's folder


class _Evaluated:
    """Avalanche's forward transfer refuses to run unless the strategy evaluates periodically
    (`eval_every > -1`), which stands for "the stream is evaluated before training". The runner
    evaluates the scored stream before training itself; periodic evaluation would also evaluate
    the training experience after it is trained, and its data loaders would draw from the RNG,
    changing every later number. So the check alone is skipped, at the end of the first evaluation."""

    def after_eval(self, strategy):
        self.at_init = False  # what the check's branch does besides asserting
        return super().after_eval(strategy)


class _ExperienceForwardTransfer(_Evaluated, ExperienceForwardTransfer):
    pass


class _StreamForwardTransfer(_Evaluated, StreamForwardTransfer):
    pass


def live_metrics() -> list:
    """BWT, forgetting (Avalanche's: `R[j][j] - R[T-1][j]`) and FWT, per experience and over the stream."""
    return [*bwt_metrics(experience=True, stream=True), *forgetting_metrics(experience=True, stream=True),
            _ExperienceForwardTransfer(), _StreamForwardTransfer()]


def make_loggers(logging, folder: Path, run_name: str, group: str, config: dict) -> list:
    """The loggers `logging` (a `spec.LoggingSpec`) names, writing into the run's `folder`."""
    loggers = []
    for name in logging.names:
        if name == "tensorboard":
            loggers.append(TensorboardLogger(tb_log_dir=str(folder)))
        elif name == "csv":
            loggers.append(CSVLogger(log_folder=str(folder / CSV_FOLDER)))
        elif name == "wandb":
            settings = {"mode": logging.wandb_mode, "group": logging.wandb_group or group,
                        "entity": logging.wandb_entity or None}
            loggers.append(WandBLogger(project_name=logging.wandb_project, run_name=run_name, dir=str(folder),
                                       save_code=False, config=config, params=settings))
    return loggers


def close_loggers(loggers) -> None:
    """Flush and close what the loggers hold open: CSV files, the W&B run (TensorBoard's writer is
    closed by the runner once it has written the summary)."""
    for logger in loggers:
        if isinstance(logger, CSVLogger):
            logger.close()
        elif isinstance(logger, WandBLogger):
            logger.wandb.finish()
