"""Task-aware baselines for regression with task labels, built from the seed benchmark's MLP:
a shared trunk with one output head per task, and one independent MLP per task.

Between them and the plain MLP they separate what sharing costs: the heads keep the task-specific
last layer out of reach of later tasks but share everything below it; independent networks share
nothing, so nothing is forgotten and each task is fitted as well as the MLP alone can (the
plasticity reference). A task's module is added when its label is first met, in training or
evaluation, as Avalanche's `MultiHeadClassifier` does, but sized by the output rather than by
classes, which regression has none of.
"""

from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from avalanche.models import DynamicModule, MultiTaskModule
from torch import nn

from .small import mlp_autoencoder


class _PerTaskModules(MultiTaskModule):
    """A MultiTaskModule with one module per task label in `self.per_task`, each made by `make()`
    (a picklable callable, so that checkpoints can hold the model)."""

    def __init__(self, make: Callable[[], nn.Module]) -> None:
        super().__init__()
        self.make = make
        self.per_task = nn.ModuleDict()
        # Follows the model's device, which a model without tasks yet has no parameter to show.
        self.register_buffer("device_anchor", torch.empty(0), persistent=False)

    def adaptation(self, experience: Any) -> None:
        DynamicModule.adaptation(self, experience)  # not MultiTaskModule's: it counts classes
        for task in experience.task_labels:
            if str(task) not in self.per_task:
                self.per_task[str(task)] = self.make().to(self.device_anchor.device)
        if self.training:
            self.known_train_tasks_labels |= set(experience.task_labels)

    def forward(self, x: torch.Tensor, task_labels: torch.Tensor | int) -> torch.Tensor:
        if isinstance(task_labels, int):
            return self.forward_single_task(x, task_labels)
        out = None
        for task in task_labels.unique().tolist():
            rows = task_labels == task
            y = self.forward_single_task(x[rows], task)
            if out is None:
                out = y.new_empty(len(x), *y.shape[1:])
            out[rows] = y
        return out


class MLPTaskHeads(_PerTaskModules):
    """The seed benchmark's MLP up to its last hidden layer, shared by all tasks, and one linear
    output layer per task.

    :param in_features: size of the (flattened) input.
    :param out_features: outputs of each task's head.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        layers = mlp_autoencoder(in_features, out_features)
        super().__init__(partial(nn.Linear, layers[-1].in_features, out_features))
        self.trunk = nn.Sequential(*layers[:-1], nn.GELU())  # up to the last hidden layer's activation

    def forward_single_task(self, x: torch.Tensor, task_label: int) -> torch.Tensor:
        return self.per_task[str(task_label)](self.trunk(x))


class PerTaskMLPs(_PerTaskModules):
    """One seed-benchmark MLP per task, sharing nothing.

    :param in_features: size of the (flattened) input.
    :param out_features: outputs of each task's network.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(partial(mlp_autoencoder, in_features, out_features))
        # Task 0's network exists from the start: Avalanche builds the optimizer before the first
        # adaptation, and an optimizer needs parameters.
        self.per_task["0"] = self.make()

    def forward_single_task(self, x: torch.Tensor, task_label: int) -> torch.Tensor:
        return self.per_task[str(task_label)](x)
