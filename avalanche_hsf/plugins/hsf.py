"""The HSF plugin: protects the hypernetwork's outputs for old tasks and fits each task's flow.

Drop it into any Avalanche template whose model is an `HSFModel`:
`Naive(model, opt, criterion, plugins=[HSFPlugin()])`. On an online stream (`OnlineNaive` over
`split_online_stream`) a task spans many sub-experiences: its old tasks' targets are stored when it
begins, and the stream must show where tasks begin and end (`access_task_boundaries=True`).
"""

import random
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from avalanche.benchmarks.scenarios.online import OnlineCLExperience
from avalanche.training.plugins import SupervisedPlugin
from avalanche.training.templates import SupervisedTemplate
from torch.nn.functional import mse_loss
from torch.utils.data import DataLoader

from ..errors import DivergedError
from ..models.hsf import HSFModel
from .online import check_online_experience, whole_experience

# Old tasks' weights are generated in groups of at most this many numbers (2 MB of float32): one
# batched call pays off for small targets that stay in cache, not for large ones, which go one
# at a time (bench/NOTES.md).
GROUP_WEIGHTS = 2 ** 19


def output_regularizer(model: HSFModel, targets: Mapping[int, torch.Tensor], tasks: Sequence[int]) -> torch.Tensor:
    """von Oswald et al. 2020's output regulariser, without the look-ahead:
    `mean_{j in tasks} ‖h(e_j; θ) − h*_j‖²`, where `h(e_j; θ)` are the weights the hypernetwork
    generates now for old task j and `h*_j = targets[j]` the ones it generated before learning the
    current task.

    :param model: the HSF model whose hypernetwork is regularised.
    :param targets: task id -> the flat weights stored for that task.
    :param tasks: the old tasks to regularise (a non-empty subset of `targets`).
    """
    group = max(1, GROUP_WEIGHTS // model.hnet.num_target_params)
    distances = []
    for start in range(0, len(tasks), group):
        chunk = list(tasks[start:start + group])
        # A single target is used as it is; stacking would copy it.
        stored = targets[chunk[0]].unsqueeze(0) if len(chunk) == 1 else torch.stack([targets[j] for j in chunk])
        # ‖h − h*‖² per task: mse_loss does the float operations of (h − h*).pow(2), with a fused backward.
        distances.append(mse_loss(model.generate_many(chunk), stored, reduction="none").sum(1))
    return torch.cat(distances).mean()


class HSFPlugin(SupervisedPlugin):
    """Continual learning with a hypernetwork (von Oswald et al. 2020), plus a flow NLL.

    Before each experience: add the task's embedding, freeze the old ones, store the targets
    `h(e_j; θ*)` of every old task j, and rebuild the optimizer. At each step: add
    `beta * mean_j ‖h(e_j; θ) − h*_j‖²` over a random subset of at most `reg_tasks` old tasks
    (so the cost stays flat as tasks accumulate), and `gamma * NLL` of the current task's
    latent codes under its flow. After each experience: record the task's classes and the
    statistics of its latent codes, which task inference needs.

    :param beta: weight of the output regulariser (0 switches it off: the unprotected model).
    :param gamma: weight of the flow's negative log-likelihood of the current task's latent codes.
    :param reg_tasks: old tasks regularised per step, drawn at random when there are more.
    :param seed: seed of that draw.
    :param reconstruction: weight of the decoder's reconstruction error per input feature, where
        the target has a decoder.
    """

    def __init__(self, beta: float = 0.1, gamma: float = 0.1, reg_tasks: int = 8, seed: int = 0,
                 reconstruction: float = 1.0) -> None:
        super().__init__()
        if beta < 0 or gamma < 0 or reconstruction < 0:
            raise ValueError(f"HSF: beta, gamma and reconstruction must be >= 0, got beta={beta}, gamma={gamma}, "
                             f"reconstruction={reconstruction}")
        if reg_tasks < 1:
            raise ValueError(f"HSF: reg_tasks must be >= 1, got {reg_tasks}")
        self.beta, self.gamma, self.reg_tasks = beta, gamma, reg_tasks
        self.reconstruction = reconstruction
        self.targets: dict[int, torch.Tensor] = {}
        self.current_task = None
        self._rng = random.Random(seed)

    @staticmethod
    def _model(strategy: SupervisedTemplate) -> HSFModel:
        if not isinstance(strategy.model, HSFModel):
            raise TypeError(f"HSFPlugin needs an HSFModel, got {type(strategy.model).__name__}")
        return strategy.model

    @staticmethod
    def task_of(model: HSFModel, experience: Any) -> int:
        """The task label with task labels; the experience's index when the task is inferred (on an
        online stream, the index of the experience it was split from)."""
        if not model.infer_task:
            return int(experience.task_labels[0])
        if isinstance(experience, OnlineCLExperience):
            return experience.origin_experience.current_experience
        return experience.current_experience

    def before_train_dataset_adaptation(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        # Before Avalanche adapts the model, which on such a stream would fail with less to say.
        check_online_experience(strategy.experience, "HSF", task_labels=not self._model(strategy).infer_task)

    @staticmethod
    def _continues(experience: Any) -> bool:
        """Whether `experience` goes on with the task being trained: a later piece of it on an online stream."""
        return isinstance(experience, OnlineCLExperience) and not experience.is_first_subexp

    def before_training_exp(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        model = self._model(strategy)
        task = self.task_of(model, strategy.experience)
        classes = sorted(whole_experience(strategy.experience).classes_in_this_experience) if model.infer_task else None
        if self._continues(strategy.experience):
            if model.infer_task:
                model.training_task, model.training_classes = task, classes
            return
        self.current_task = task
        model.add_task(task)
        for key, embedding in model.task_embeddings.items():
            embedding.requires_grad_(key == str(task))
        with torch.no_grad():
            targets = {j: model.generate(j).detach().clone() for j in model.learned_tasks if j != task}
        for j, target in targets.items():
            if not torch.isfinite(target).all():
                raise DivergedError(f"HSF: the hypernetwork's output for task {j} is not finite; "
                                  "refusing to store it as a regularisation target")
        self.targets = targets
        if model.infer_task:
            model.training_task = task
            model.training_classes = classes
        # Avalanche builds the optimizer before plugins run: rebuild it so the new embedding trains.
        strategy.make_optimizer(reset_optimizer_state=True)

    def regularizer(self, model: HSFModel) -> torch.Tensor:
        """The output regulariser over a random subset of at most `reg_tasks` old tasks."""
        old = list(self.targets)
        if len(old) > self.reg_tasks:
            old = self._rng.sample(old, self.reg_tasks)
        return output_regularizer(model, self.targets, old)

    def before_backward(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        model = self._model(strategy)
        if self.beta > 0 and self.targets:
            strategy.loss += self.beta * self.regularizer(model)
        if self.gamma > 0 and model.latent_log_prob is not None:
            strategy.loss += -self.gamma * model.latent_log_prob.mean()
        if self.reconstruction > 0 and model.reconstruction_error is not None:
            # Per input feature, so the weight does not depend on the input's size.
            strategy.loss += self.reconstruction * model.reconstruction_error.mean() / model.target.in_features

    def after_training_exp(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        model = self._model(strategy)
        # Regression experiences have no classes; the task still counts as learned.
        model.class_sets[self.current_task] = sorted(getattr(whole_experience(strategy.experience),
                                                             "classes_in_this_experience", []))
        was_training = model.training
        model.eval()
        loader = DataLoader(strategy.experience.dataset.eval(), batch_size=256)
        model.record_latent_stats(self.current_task, (batch[0].to(strategy.device) for batch in loader))
        model.train(was_training)
        model.training_task, model.training_classes = None, None

    def state_dict(self) -> dict:
        return {"targets": dict(self.targets), "current_task": self.current_task}

    def load_state_dict(self, state: dict) -> None:
        self.targets = {int(j): t.clone() for j, t in state["targets"].items()}
        self.current_task = state["current_task"]
