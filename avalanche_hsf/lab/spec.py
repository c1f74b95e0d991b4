"""What a scenario's `[model]`, `[training]` and `[logging]` tables hold: each field with its default and rule."""

import dataclasses
from dataclasses import dataclass
from typing import Any

from .loggers import LOGGERS, WANDB_MODES
from .params import COUNT, NON_NEGATIVE, POSITIVE, WIDTH, Names, OneOf, Range, Rule, check_params

SETTINGS = ("task-il", "class-il", "domain-il")


def _field(default: Any, rule: Rule | None = None) -> Any:
    return dataclasses.field(default=default, metadata={"rule": rule})


@dataclass(frozen=True)
class ModelSpec:
    type: str = _field("mlp", OneOf(("mlp", "cnn")))
    hidden_size: int = _field(100, WIDTH)
    hidden_layers: int = _field(2, COUNT)
    drop_rate: float = _field(0.0, Range(0, 1, high_open=True))
    # classifier outputs; 0 sizes them to the benchmark's labels
    num_outputs: int = _field(0, NON_NEGATIVE)


@dataclass(frozen=True)
class TrainingSpec:
    epochs: int = _field(1, COUNT)
    batch_size: int = _field(32, COUNT)
    eval_batch_size: int = _field(256, COUNT)
    lr: float = _field(0.01, POSITIVE)
    optimizer: str = _field("sgd", OneOf(("sgd", "adam")))
    momentum: float = _field(0.0, Range(0, 1, high_open=True))


@dataclass(frozen=True)
class LoggingSpec:
    """Where each run logs (`loggers.py`); the `--loggers` and `--wandb-*` options override it."""
    loggers: str = _field("tensorboard", Names(LOGGERS))  # comma-separated, as on the command line
    wandb_project: str = _field("avalanche-hsf")
    wandb_entity: str = _field("")  # "": W&B's default entity
    wandb_group: str = _field("")  # "": the scenario's name
    wandb_mode: str = _field("offline", OneOf(WANDB_MODES))

    @property
    def names(self) -> tuple:
        return tuple(name.strip() for name in self.loggers.split(","))


def spec_defaults(spec_type) -> dict:
    return {f.name: f.default for f in dataclasses.fields(spec_type)}


def spec_rules(spec_type) -> dict:
    return {f.name: f.metadata["rule"] for f in dataclasses.fields(spec_type)}


def fill_spec(spec_type, table: Any, where: str):
    """A `spec_type` from a scenario table, every key checked against its field."""
    return spec_type(**check_params(table, spec_defaults(spec_type), spec_rules(spec_type), where))
