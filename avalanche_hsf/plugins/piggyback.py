"""Piggyback (Mallya et al., ECCV 2018) as an Avalanche plugin: it drives a `PiggybackNet` through
the experiences. The first experience trains the backbone as usual (skipped with `pretrained=True`);
every later one freezes it and trains only its own binary masks and head. Finished tasks are packed
and kept as buffers, so nothing of an old task can change and forgetting is zero by construction.

The mask scores are trained by the plugin's own optimizer, the paper's Adam at lr 1e-4 by default,
whatever the strategy's optimizer does for the heads: scores that start at 1e-2 must move by 5e-3
to switch a weight off, which plain SGD at the usual learning rates never does.

On an online stream (`OnlineNaive` over `split_online_stream`) a task spans many sub-experiences:
it begins with the first and is frozen after the last, which the stream must let the plugin see
(`access_task_boundaries=True`).
"""

import math
from typing import Any

import torch
from avalanche.benchmarks.scenarios.online import OnlineCLExperience
from avalanche.training.plugins import SupervisedPlugin
from avalanche.training.templates import SupervisedTemplate

from ..models.piggyback import MASK_INIT, THRESHOLD, PiggybackNet
from .online import check_online_experience, ends_task, whole_experience

_NEED_TASK_LABELS = ("Piggyback needs task labels: it learns one mask per task and must know which "
                     "to use. Build the scenario with task labels (a 'task-il' scenario, "
                     "e.g. nc_benchmark(..., task_labels=True) or SplitMNIST(..., return_task_id=True)).")


MASK_OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}
MASK_OPTIMIZER = "adam"  # the paper's...
MASK_LR = 1e-4  # ...and its learning rate


def options_problem(mask_init: float, threshold: float, mask_lr: float = MASK_LR) -> str | None:
    """What is wrong with the mask options, or None."""
    if not (math.isfinite(mask_lr) and mask_lr > 0):
        return f"mask_lr ({mask_lr}) must be a positive number"
    if not (math.isfinite(mask_init) and math.isfinite(threshold)):
        return f"mask_init ({mask_init}) and threshold ({threshold}) must be finite"
    if mask_init <= threshold:
        return (f"mask_init ({mask_init}) must be above threshold ({threshold}), so that every task "
                "starts from the whole backbone")
    return None


class PiggybackPlugin(SupervisedPlugin):
    """Drives a model converted by `piggyback(model)`: one binary mask and head per task.

    :param mask_init: initial real-valued mask score of every weight.
    :param threshold: scores above it keep their weight.
    :param per_task_bn: give each masked task its own BatchNorm (default: BatchNorm stays frozen).
    :param pretrained: the backbone is already trained: mask it from the first experience on.
    :param mask_optimizer: "adam" or "sgd", the optimizer of the mask scores (the heads keep the strategy's).
    :param mask_lr: its learning rate.
    :param masks: learn masks; False trains only each task's head on the frozen backbone (a control).
    """

    def __init__(self, mask_init: float = MASK_INIT, threshold: float = THRESHOLD, per_task_bn: bool = False,
                 pretrained: bool = False, mask_optimizer: str = MASK_OPTIMIZER, mask_lr: float = MASK_LR,
                 masks: bool = True) -> None:
        super().__init__()
        problem = options_problem(mask_init, threshold, mask_lr)
        if mask_optimizer not in MASK_OPTIMIZERS:
            problem = f"mask_optimizer must be one of {sorted(MASK_OPTIMIZERS)}, got {mask_optimizer!r}"
        if problem:
            raise ValueError(problem)
        self.mask_init, self.threshold = mask_init, threshold
        self.per_task_bn, self.pretrained = per_task_bn, pretrained
        self.mask_optimizer, self.mask_lr, self.masks = mask_optimizer, mask_lr, masks
        self.task = None  # the task being trained
        self.pieces = 0  # on an online stream, the pieces of the current task trained so far
        self.optimizer = None  # the mask scores' optimizer while a task trains masks

    @staticmethod
    def _net(strategy: SupervisedTemplate) -> PiggybackNet:
        if not isinstance(strategy.model, PiggybackNet):
            raise TypeError("PiggybackPlugin: convert the model with avalanche_hsf.models.piggyback(model) first "
                            f"(got {type(strategy.model).__name__})")
        return strategy.model

    def _experience_task(self, experience: Any, net: PiggybackNet) -> int:
        labels = sorted(set(getattr(experience, "task_labels", None) or []))
        if not labels:
            raise ValueError(f"{_NEED_TASK_LABELS} This experience has no task labels.")
        if len(labels) > 1:
            raise ValueError(f"Piggyback trains one task per experience; this one mixes task labels {labels}")
        if labels[0] in net.finished_tasks:
            raise ValueError(f"{_NEED_TASK_LABELS} Experience {experience.current_experience} has task label "
                             f"{labels[0]}, which an earlier experience already used (a class- or "
                             "domain-incremental scenario gives every experience task label 0).")
        classes = list(getattr(whole_experience(experience), "classes_in_this_experience", []))
        problem = net.head_size_problem(labels[0], classes)
        if problem:
            raise ValueError(problem)
        return labels[0]

    @staticmethod
    def _online(experience: Any) -> bool:
        """Whether `experience` is one piece of a task split into an online stream."""
        return isinstance(experience, OnlineCLExperience)

    def before_train_dataset_adaptation(self, strategy: SupervisedTemplate, *args: Any, **kwargs: Any) -> None:
        # Before Avalanche adapts the model, which on such a stream would fail with less to say.
        check_online_experience(strategy.experience, "Piggyback", task_labels=True)

    def before_training_exp(self, strategy: SupervisedTemplate, *args: Any, **kwargs: Any) -> None:
        net = self._net(strategy)
        if self._online(strategy.experience) and not strategy.experience.is_first_subexp:
            return  # the task begun by the first sub-experience goes on
        self.pieces = 0
        self.task = self._experience_task(strategy.experience, net)
        dense = not self.pretrained and not net.finished_tasks
        net.begin_task(self.task, dense=dense, masks=self.masks, mask_init=self.mask_init, threshold=self.threshold,
                       per_task_bn=self.per_task_bn)
        # The new task's scores and head are new parameters and the last task's are gone: Avalanche's
        # optimizer update adds the former, drops the latter, and starts from a fresh optimizer state.
        strategy.make_optimizer(reset_optimizer_state=True, remove_params=True)
        scores = net.mask_scores()
        self.optimizer = MASK_OPTIMIZERS[self.mask_optimizer](scores, lr=self.mask_lr) if scores else None
        # ...and then takes the scores back out: they are the mask optimizer's alone. Frozen parameters
        # (the backbone, finished heads kept in a MultiHeadClassifier) go too: nothing may step them.
        owned = {id(score) for score in scores}

        def kept(p: torch.Tensor) -> bool:
            return id(p) not in owned and p.requires_grad

        for group in strategy.optimizer.param_groups:
            group["params"] = [p for p in group["params"] if kept(p)]
        strategy.optimized_param_id = {name: p for name, p in strategy.optimized_param_id.items() if kept(p)}

    def after_update(self, strategy: SupervisedTemplate, *args: Any, **kwargs: Any) -> None:
        if self.optimizer is not None:
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)

    def before_training_iteration(self, strategy: SupervisedTemplate, *args: Any, **kwargs: Any) -> None:
        batch = strategy.mbatch
        if len(batch) < 3:
            raise ValueError(f"{_NEED_TASK_LABELS} The mini-batch has no task labels.")
        if (batch[-1] != self.task).any():
            raise ValueError(f"Piggyback: a mini-batch of task {self.task} holds samples of other tasks (replay?); "
                             "Piggyback trains one task at a time and keeps the finished ones exactly, so it needs "
                             "no replay: use it in Naive or OnlineNaive")

    def after_training_exp(self, strategy: SupervisedTemplate, *args: Any, **kwargs: Any) -> None:
        if self._online(strategy.experience):
            self.pieces += 1
            if not ends_task(strategy.experience, self.pieces):
                return  # the task goes on in the next sub-experience
        self._net(strategy).end_task(self.task)
        self.task, self.optimizer = None, None

    def before_eval_exp(self, strategy: SupervisedTemplate, *args: Any, **kwargs: Any) -> None:
        if not getattr(strategy.experience, "task_labels", None):
            raise ValueError(f"{_NEED_TASK_LABELS} The evaluation experience has no task labels.")
