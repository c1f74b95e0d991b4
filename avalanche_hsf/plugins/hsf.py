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

from ..errors import DivergedError, NoRoomError
from ..models.hsf import HSFModel
from .online import check_online_experience, whole_experience

# Old tasks' weights are generated in groups of at most this many numbers (2 MB of float32): one
# batched call pays off for small targets that stay in cache, not for large ones, which go one
# at a time (bench/NOTES.md).
GROUP_WEIGHTS = 2 ** 19
NO_ROOM_ADVICE = "use fewer, larger chunks (chunk_size) or a wider hypernetwork (hnet_hidden)"


def candidate_update(optimizer: torch.optim.Optimizer, named_grads: Mapping[str, torch.Tensor],
                     params: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The step Δθ that `optimizer` would take from the gradients `named_grads` alone, without taking it
    (the look-ahead of von Oswald et al. 2020; hypnettorch's `calc_delta_theta`): Adam's bias-corrected
    moment update from its current state, or −lr·g for any other optimizer. Detached: the look-ahead
    shifts where the regulariser is evaluated, it is not differentiated through.

    :param optimizer: the optimizer that trains `params`.
    :param named_grads: parameter name -> gradient of the current task's loss.
    :param params: parameter name -> the parameter itself, to find its state and group.
    """
    # Written out because torch.optim has no call that returns the step it would take without taking it.
    groups = {id(p): group for group in optimizer.param_groups for p in group["params"]}
    delta = {}
    for name, grad in named_grads.items():
        param = params[name]
        group, state = groups[id(param)], optimizer.state.get(param, {})
        if isinstance(optimizer, torch.optim.Adam) and not group.get("amsgrad") and not group.get("weight_decay"):
            beta1, beta2 = group["betas"]
            step = float(state.get("step", 0)) + 1
            m = beta1 * state["exp_avg"] + (1 - beta1) * grad if "exp_avg" in state else (1 - beta1) * grad
            v = (beta2 * state["exp_avg_sq"] + (1 - beta2) * grad ** 2 if "exp_avg_sq" in state
                 else (1 - beta2) * grad ** 2)
            delta[name] = -group["lr"] * (m / (1 - beta1 ** step)) / ((v / (1 - beta2 ** step)).sqrt() + group["eps"])
        else:
            delta[name] = -group["lr"] * grad
    return {name: d.detach() for name, d in delta.items()}


def output_regularizer(model: HSFModel, targets: Mapping[int, torch.Tensor], tasks: Sequence[int],
                       delta: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
    """von Oswald et al. 2020's output regulariser: `mean_{j in tasks} ‖h(e_j; θ + Δθ) − h*_j‖²`, where
    `h(e_j; θ + Δθ)` are the weights the hypernetwork generates for old task j after the candidate
    step Δθ (`delta`; none: Δθ = 0, the regulariser without look-ahead) and `h*_j = targets[j]` the
    ones it generated before learning the current task.

    :param model: the HSF model whose hypernetwork is regularised.
    :param targets: task id -> the flat weights stored for that task.
    :param tasks: the old tasks to regularise (a non-empty subset of `targets`).
    :param delta: hypernetwork parameter name -> the candidate update Δθ (`candidate_update`), or None.
    """
    group = max(1, GROUP_WEIGHTS // model.hnet.num_target_params)
    distances = []
    for start in range(0, len(tasks), group):
        chunk = list(tasks[start:start + group])
        # A single target is used as it is; stacking would copy it.
        stored = targets[chunk[0]].unsqueeze(0) if len(chunk) == 1 else torch.stack([targets[j] for j in chunk])
        generated = model.generate_many(chunk, delta)
        # ‖h − h*‖² per task: mse_loss does the float operations of (h − h*).pow(2), with a fused backward.
        distances.append(mse_loss(generated, stored, reduction="none").sum(1))
    return torch.cat(distances).mean()


def options_problem(null_space: bool, lookahead: bool, frozen_features: bool = True) -> str | None:
    """What is wrong with the way old tasks are protected, or None; `frozen_features` is the model's."""
    if null_space and lookahead:
        return "lookahead moves the output regulariser, which null_space (the default) replaces: turn null_space off"
    if null_space and not frozen_features:
        return ("null_space (the default) keeps old tasks through the hypernetwork's last layer alone, so the "
                "model must be built with frozen_features; with null_space off the output regulariser keeps them")
    return None


def null_space_room(model: HSFModel) -> int:
    """How many tasks `HSFPlugin(null_space=True)` can keep in `model`: the hypernetwork's last
    layer takes hnet_hidden + 1 input directions (the bias's among them) and each old task fills one
    per chunk, so a task has room while the old ones fill fewer than all. The count takes those
    inputs as independent; ReLU units that no task reaches can leave their actual span (what the
    plugin checks) smaller, but a model beyond this count would leave a new task only those units."""
    return model.hnet.net[-1].in_features // model.hnet.num_chunks + 1


def row_space_basis(rows: torch.Tensor) -> torch.Tensor:
    """An orthonormal basis of the span of `rows` (n, d), as the columns of a (d, r) matrix, r its
    rank; singular values below numpy's default rank tolerance count as zero."""
    _, singular, right = torch.linalg.svd(rows.double(), full_matrices=False)
    rank = int((singular > singular.max() * max(rows.shape) * torch.finfo(rows.dtype).eps).sum())
    return right[:rank].T.to(rows.dtype)


def old_task_inputs(model: HSFModel, tasks: Sequence[int]) -> torch.Tensor:
    """What the hypernetwork's last layer sees for `tasks`: one row per (task, chunk), its features
    and a 1 for the bias. With `frozen_features` and the tasks' embeddings frozen these rows never
    change, so a step of that layer orthogonal to them leaves the tasks' generated weights as they are."""
    embeddings = torch.stack([model.task_embeddings[str(task)] for task in tasks])
    features = model.hnet.features(embeddings)
    return torch.cat([features, torch.ones(len(features), 1, device=features.device)], dim=1)


class HSFPlugin(SupervisedPlugin):
    """Continual learning with a hypernetwork (von Oswald et al. 2020), plus a flow NLL.

    Before each experience: add the task's embedding, freeze the old ones, store the targets
    `h(e_j; θ*)` of every old task j, and rebuild the optimizer. At each step: keep the old tasks'
    generated weights exactly (`null_space`, the default), or else add
    `beta * mean_j ‖h(e_j; θ) − h*_j‖²` over a random subset of at most `reg_tasks` old tasks
    (so the cost stays flat as tasks accumulate); and add `gamma * NLL` of the current task's
    latent codes under its flow. After each experience: record the task's classes and the
    statistics of its latent codes, which task inference needs.

    :param beta: weight of the output regulariser, which protects old tasks with `null_space=False`
        (0 switches it off: the unprotected model).
    :param gamma: weight of the flow's negative log-likelihood of the current task's latent codes.
    :param reg_tasks: old tasks regularised per step, drawn at random when there are more.
    :param seed: seed of that draw.
    :param reconstruction: weight of the decoder's reconstruction error per input feature, where
        the target has a decoder.
    :param lookahead: evaluate the regulariser after the candidate step Δθ that the optimizer would
        take on the current task's loss alone (`candidate_update`), as von Oswald et al. do, so that
        it protects old tasks against the step about to be taken. Costs one more backward pass.
    :param null_space: keep the old tasks' generated weights exactly (the default) instead of
        penalising their change (`False`: the output regulariser). After every optimizer step, the
        step of the hypernetwork's last layer loses its component along the old tasks' inputs to
        that layer (`old_task_inputs`), as orthogonal-projection methods do for a network's own
        layers (OWM, Zeng et al. 2019; Adam-NSCL, Wang et al. 2021). Needs
        `HSFModel(frozen_features=True)` (its default), under which those inputs never change; the
        output regulariser is then zero, so it is not computed and `beta` is unused. The default
        because, under the protocol, it kept tasks that disagree where the regulariser traded their
        fit for their keeping, and was level or better on the five other benchmarks measured once
        its search no longer spent trials on hypernetworks without room (README); its price is a
        last layer with room for the tasks (`HSFModel`'s defaults).
    """

    def __init__(self, beta: float = 0.1, gamma: float = 0.1, reg_tasks: int = 8, seed: int = 0,
                 reconstruction: float = 1.0, lookahead: bool = False, null_space: bool = True) -> None:
        super().__init__()
        if beta < 0 or gamma < 0 or reconstruction < 0:
            raise ValueError(f"HSF: beta, gamma and reconstruction must be >= 0, got beta={beta}, gamma={gamma}, "
                             f"reconstruction={reconstruction}")
        if reg_tasks < 1:
            raise ValueError(f"HSF: reg_tasks must be >= 1, got {reg_tasks}")
        if problem := options_problem(null_space, lookahead):
            raise ValueError(f"HSF: {problem}")
        self.beta, self.gamma, self.reg_tasks = beta, gamma, reg_tasks
        self.reconstruction, self.lookahead, self.null_space = reconstruction, lookahead, null_space
        self.targets: dict[int, torch.Tensor] = {}
        self.current_task = None
        self._rng = random.Random(seed)
        # With null_space: an orthonormal basis of the old tasks' inputs to the last layer, and
        # `_along_old_inputs` before the optimizer step being taken.
        self._old_inputs_basis: torch.Tensor | None = None
        self._before_step: torch.Tensor | None = None

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
        if self.null_space:  # also on a later piece of an online task, so that a resumed run has it
            self._old_inputs_basis = self._inputs_basis(model, [j for j in model.learned_tasks if j != task])
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

    @staticmethod
    @torch.no_grad()
    def _inputs_basis(model: HSFModel, old_tasks: list[int]) -> torch.Tensor | None:
        if problem := options_problem(null_space=True, lookahead=False, frozen_features=model.frozen_features):
            raise ValueError(f"HSF: {problem}")
        if not old_tasks:
            return None
        basis = row_space_basis(old_task_inputs(model, old_tasks))
        if basis.shape[1] == basis.shape[0]:
            raise NoRoomError(f"HSF: null_space has no room left: the {len(old_tasks)} old tasks' inputs to the "
                              f"hypernetwork's last layer (one per task and chunk) span all its {basis.shape[0]} "
                              f"input directions, so no step could fit a new task; {NO_ROOM_ADVICE}")
        return basis

    def _along_old_inputs(self, model: HSFModel) -> torch.Tensor:
        """The last layer's [weight | bias] times the basis of the old tasks' inputs (out, r): what
        the old tasks' generated weights depend on."""
        layer, basis = model.hnet.net[-1], self._old_inputs_basis
        return layer.weight.detach() @ basis[:-1] + layer.bias.detach()[:, None] * basis[-1]

    def before_update(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        if self._old_inputs_basis is not None:
            self._before_step = self._along_old_inputs(self._model(strategy))

    @torch.no_grad()
    def after_update(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        # The step is projected after the optimizer takes it, not the gradient before: Adam rescales
        # each coordinate, which would turn a projected gradient back towards the old tasks' inputs.
        if self._before_step is None:
            return
        model = self._model(strategy)
        layer, basis = model.hnet.net[-1], self._old_inputs_basis
        # The step's component in the old tasks' span is (step @ basis) @ basis.T; take it back.
        along = self._along_old_inputs(model) - self._before_step
        layer.weight.sub_(along @ basis[:-1].T)
        layer.bias.sub_(along @ basis[-1])
        self._before_step = None

    def regularizer(self, model: HSFModel, delta: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """The output regulariser over a random subset of at most `reg_tasks` old tasks, after the
        candidate step `delta` if given."""
        old = list(self.targets)
        if len(old) > self.reg_tasks:
            old = self._rng.sample(old, self.reg_tasks)
        return output_regularizer(model, self.targets, old, delta)

    @staticmethod
    def candidate_step(strategy: SupervisedTemplate, model: HSFModel) -> dict[str, torch.Tensor]:
        """Δθ of the hypernetwork from the current task's loss alone (`strategy.loss` before this
        plugin adds its terms)."""
        params = {name: p for name, p in model.hnet.named_parameters() if p.requires_grad}
        grads = torch.autograd.grad(strategy.loss, list(params.values()), retain_graph=True, allow_unused=True)
        named = {name: g for name, g in zip(params, grads) if g is not None}
        return candidate_update(strategy.optimizer, named, params)

    def before_backward(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        model = self._model(strategy)
        if self.beta > 0 and self.targets and not self.null_space:
            delta = self.candidate_step(strategy, model) if self.lookahead else None
            strategy.loss += self.beta * self.regularizer(model, delta)
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
