"""Piggyback (Mallya et al., ECCV 2018): one learned binary mask per task over a frozen backbone.

`piggyback(model)` converts an ordinary model in place: its Linear and Conv2d layers become masked
layers that share the original weights, its BatchNorm layers can be frozen (or copied per task), and
its classifier becomes one head per task. A classifier that already has one head per task (Avalanche's
`MultiHeadClassifier`, as in `MTSimpleMLP`) keeps its heads: Avalanche's model adaptation adds each
task's head, and a head is frozen when its task ends. The result is a `MultiTaskModule`, so Avalanche
passes the task labels to it.

Every per-task layer follows the same life cycle, driven by `PiggybackNet.begin_task` / `end_task`:
while a task trains its state is parameters (real-valued mask scores, a head, optionally a BatchNorm
copy); when it ends that state is frozen into buffers (masks packed to 1 bit per weight) under
`finished[<task>]`, so it is saved in the state_dict but can no longer be optimised. A task with no
state of its own (the one that trained the backbone, or one never seen) uses the plain backbone and
the classifier the model came with.

A finished task's masked weight is computed once and cached, one task per layer (the task being
evaluated), so inference on it costs what the plain model costs; the cache is rebuilt whenever
the backbone weight has changed, and it is never saved.
"""

import copy
from typing import Any, Self

import torch
from avalanche.models import IncrementalClassifier, MultiHeadClassifier, MultiTaskModule
from torch import nn
from torch.nn import functional as F

from ..errors import DivergedError
from .bitpack import pack_bits, unpack_bits

MASK_INIT = 1e-2  # the paper's initial real-valued mask score...
THRESHOLD = 5e-3  # ...and the threshold that binarises it, so training starts from the full backbone


class BinarizeSTE(torch.autograd.Function):
    """`scores > threshold` as 0/1 in the forward pass; the gradient passes straight through."""

    @staticmethod
    def forward(ctx: Any, scores: torch.Tensor, threshold: float) -> torch.Tensor:
        return (scores > threshold).to(scores.dtype)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad_output, None


class TaskTensors(nn.Module):
    """The frozen state of one finished task, held as buffers: saved, moved with the model, never trained."""

    def __init__(self, **tensors: torch.Tensor | None) -> None:
        super().__init__()
        for name, tensor in tensors.items():
            self.register_buffer(name, tensor)


def _frozen_copy(tensor: torch.Tensor | None) -> torch.Tensor | None:
    return None if tensor is None else tensor.detach().clone()


class TaskLayer:
    """Mixin for the layers that keep per-task state; `active_task` is set before every forward."""

    active_task = None

    def _init_tasks(self) -> None:
        self.finished = nn.ModuleDict()  # str(task) -> TaskTensors

    def end_task(self, task: int) -> None:
        raise NotImplementedError


class MaskedWeight(TaskLayer):
    """Mixin for a layer whose `weight` is multiplied by the active task's binary mask."""

    def _init_tasks(self) -> None:
        super()._init_tasks()
        self.scores = nn.ParameterDict()  # str(task) -> real-valued scores, only while the task trains
        self.threshold = THRESHOLD
        self._cached = None  # (task, weight version, masked weight) of the last finished task used

    def __getstate__(self) -> dict:
        return {**super().__getstate__(), "_cached": None}  # derived, so never saved

    def begin_task(self, task: int, mask_init: float, threshold: float) -> None:
        self.threshold = threshold
        self.scores[str(task)] = nn.Parameter(torch.full_like(self.weight, mask_init))

    def end_task(self, task: int) -> None:
        if str(task) not in self.scores:  # a task trained without a mask uses the plain backbone
            return
        scores = self.scores.pop(str(task))
        if not torch.isfinite(scores).all():
            raise DivergedError(f"Piggyback: the mask scores of task {task} are not finite (NaN or inf); "
                                "the masks were not stored. Lower the learning rate.")
        self.finished[str(task)] = TaskTensors(mask=pack_bits(scores > self.threshold))

    def mask(self, task: int) -> torch.Tensor | None:
        """Task `task`'s binary mask as a bool tensor, or None if the task uses the plain weight."""
        key = str(task)
        if key in self.scores:
            return self.scores[key].detach() > self.threshold
        if key in self.finished:
            return unpack_bits(self.finished[key].mask, self.weight.shape)
        return None

    def masked_fraction(self, task: int) -> float | None:
        """The fraction of weights that task `task`'s mask switches off, or None without a mask."""
        mask = self.mask(task)
        return None if mask is None else 1.0 - mask.float().mean().item()

    def task_weight(self) -> torch.Tensor:
        key = str(self.active_task)
        if key in self.scores:
            return self.weight * BinarizeSTE.apply(self.scores[key], self.threshold)
        if key in self.finished:
            return self._finished_weight(key)
        return self.weight

    def unpacked_weight(self, key: str) -> torch.Tensor:
        """A finished task's masked weight, unpacked from its bits (what the cache holds)."""
        return self.weight * unpack_bits(self.finished[key].mask, self.weight.shape).to(self.weight.dtype)

    def _finished_weight(self, key: str) -> torch.Tensor:
        if self.weight.requires_grad and torch.is_grad_enabled():  # the backbone still trains: nothing to cache
            return self.unpacked_weight(key)
        stamp = (key, self.weight._version, self.weight.device, self.weight.dtype)
        if self._cached is None or self._cached[0] != stamp:
            with torch.no_grad():
                self._cached = (stamp, self.unpacked_weight(key))
        return self._cached[1]


class MaskedLinear(MaskedWeight, nn.Linear):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_tasks()

    @classmethod
    def from_dense(cls, layer: nn.Linear) -> Self:
        # Built on the meta device, then given the original parameters: the weights are shared, not copied.
        masked = cls(layer.in_features, layer.out_features, bias=layer.bias is not None, device="meta")
        masked.weight, masked.bias = layer.weight, layer.bias
        return masked

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.task_weight(), self.bias)


class MaskedConv2d(MaskedWeight, nn.Conv2d):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_tasks()

    @classmethod
    def from_dense(cls, layer: nn.Conv2d) -> Self:
        masked = cls(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
                     layer.dilation, layer.groups, layer.bias is not None, layer.padding_mode, device="meta")
        masked.weight, masked.bias = layer.weight, layer.bias
        return masked

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.task_weight(), self.bias)


class PerTaskCopy(TaskLayer, nn.Module):
    """A module that each task trains as its own copy of `source`, then freezes into buffers."""

    frozen_names = ("weight", "bias")

    def __init__(self, source: nn.Module) -> None:
        super().__init__()
        self.source = source
        self.trainable = nn.ModuleDict()  # str(task) -> the copy being trained
        self._init_tasks()

    def begin_task(self, task: int) -> None:
        self.trainable[str(task)] = copy.deepcopy(self.source).requires_grad_(True)

    def end_task(self, task: int) -> None:
        if str(task) in self.trainable:
            module = self.trainable.pop(str(task))
            self.finished[str(task)] = TaskTensors(**{n: _frozen_copy(getattr(module, n)) for n in self.frozen_names})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        key = str(self.active_task)
        if key in self.trainable:
            return self.trainable[key](x)
        return self.frozen_forward(x, self.finished[key] if key in self.finished else self.source)

    def frozen_forward(self, x: torch.Tensor, tensors: nn.Module) -> torch.Tensor:
        raise NotImplementedError


class TaskHeads(PerTaskCopy):
    """One linear head per task, each started from the model's original classifier (the template)."""

    def __init__(self, template: nn.Linear) -> None:
        super().__init__(template.requires_grad_(False))

    def frozen_forward(self, x: torch.Tensor, tensors: nn.Module) -> torch.Tensor:
        return F.linear(x, tensors.weight, tensors.bias)


class ExistingHeads(TaskLayer, nn.Module):
    """The heads of a classifier that is already multi-head (Avalanche's `MultiHeadClassifier`).

    Avalanche's model adaptation creates each task's head (sized by the task's class ids, global or
    from zero) before the task trains; this lets only the current task's head train and freezes it
    when the task ends. The heads stay where they are, in the classifier; what is kept here is which
    tasks are finished (saved in the state_dict as extra state).
    """

    def __init__(self, classifier: MultiHeadClassifier) -> None:
        super().__init__()
        self._init_tasks()
        self._classifier = (classifier,)  # a reference, not a submodule: the heads are saved once, in the model
        self._begun: set[int] = set()

    @property
    def classifier(self) -> MultiHeadClassifier:
        return self._classifier[0]

    def head(self, task: int) -> nn.Module:
        if str(task) not in self.classifier.classifiers:
            raise ValueError(f"piggyback: the MultiHeadClassifier has no head for task {task} yet; Avalanche's "
                             "strategies add it in model adaptation (avalanche_model_adaptation(model, experience))")
        return self.classifier.classifiers[str(task)]

    def begin_task(self, task: int) -> None:
        self.head(task).requires_grad_(True)
        self._begun.add(task)

    def end_task(self, task: int) -> None:
        if task in self._begun:
            self._begun.discard(task)
            self.head(task).requires_grad_(False)
            self.finished[str(task)] = TaskTensors()

    def finished_heads(self) -> list[nn.Module]:
        return [self.classifier.classifiers[key] for key in self.finished]

    def get_extra_state(self) -> dict[str, Any]:
        return {"finished": sorted(int(task) for task in self.finished)}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        for task in state["finished"]:
            self.finished[str(task)] = TaskTensors()
        for task in self.finished:
            if task in self.classifier.classifiers:  # a head not made yet is frozen when its task ends
                self.classifier.classifiers[task].requires_grad_(False)


class TaskBatchNorm(PerTaskCopy):
    """BatchNorm that behaves as the original until the backbone is frozen; then it always uses the
    running statistics (no updates, no gradients), or, if a task asked for it, that task's own copy."""

    frozen_names = ("weight", "bias", "running_mean", "running_var")

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm) -> None:
        if not bn.track_running_stats:
            raise ValueError("piggyback: BatchNorm without running statistics cannot be frozen")
        super().__init__(bn)
        self.backbone_frozen = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) if self.backbone_frozen else self.source(x)

    def frozen_forward(self, x: torch.Tensor, tensors: nn.Module) -> torch.Tensor:
        return F.batch_norm(x, tensors.running_mean, tensors.running_var, tensors.weight, tensors.bias,
                            training=False, eps=self.source.eps)


_MASKED = {nn.Linear: MaskedLinear, nn.Conv2d: MaskedConv2d}


def _convert(module: nn.Module, skip: nn.Module) -> None:
    for name, child in module.named_children():
        if child is skip:
            continue
        # Exact types only: subclasses (e.g. attention's out_proj) may read `.weight` directly.
        if type(child) in _MASKED:
            setattr(module, name, _MASKED[type(child)].from_dense(child))
        elif isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, TaskBatchNorm(child))
        else:
            _convert(child, skip)


class PiggybackNet(MultiTaskModule):
    """The converted model; see `piggyback`. Drive it with `begin_task` / `end_task` (or `PiggybackPlugin`).

    :param model: the model to convert, in place.
    :param classifier_name: attribute (dotted path allowed) of its classifier.
    :param head_size: outputs of each task's head; None copies the classifier's.
    """

    def __init__(self, model: nn.Module, classifier_name: str = "classifier", head_size: int | None = None) -> None:
        super().__init__()
        classifier = model.get_submodule(classifier_name)
        if isinstance(classifier, nn.Sequential):  # a Sequential classifier: its last layer is the head
            classifier_name = f"{classifier_name}.{len(classifier) - 1}"
            classifier = classifier[-1]
        self.model = model
        self.heads_name = classifier_name
        self.backbone_frozen = False
        if isinstance(classifier, MultiHeadClassifier):
            if head_size is not None:
                raise ValueError("piggyback: head_size applies to an nn.Linear classifier; a MultiHeadClassifier "
                                 "sizes each task's head itself")
            _convert(model, skip=classifier)
            self.existing_heads = ExistingHeads(classifier)
            self.max_class_label = classifier.max_class_label
            return
        if not isinstance(classifier, nn.Linear):
            grows = (" (a single head that grows with the classes, for class-incremental learning)"
                     if isinstance(classifier, IncrementalClassifier) else "")
            raise ValueError(f"piggyback: '{classifier_name}' is a {type(classifier).__name__}{grows}; Piggyback "
                             "needs one head per task and accepts an nn.Linear (copied per task), a Sequential "
                             "ending with one, or a MultiHeadClassifier (as in MTSimpleMLP)")
        template = classifier if head_size is None else nn.Linear(
            classifier.in_features, head_size, device=classifier.weight.device)
        _convert(model, skip=classifier)
        parent, _, attr = classifier_name.rpartition(".")
        setattr(model.get_submodule(parent), attr, TaskHeads(template))
        self.existing_heads = None
        self.max_class_label = template.out_features

    @property
    def heads(self) -> TaskHeads | MultiHeadClassifier:
        """Each task's head: the `TaskHeads` made from a Linear classifier, or the model's own
        `MultiHeadClassifier`."""
        # Looked up rather than stored, so the heads appear once in the state_dict, under the model.
        return self.model.get_submodule(self.heads_name)

    @property
    def head_tasks(self) -> TaskHeads | ExistingHeads:
        """The task layer that begins, freezes and records each task's head."""
        return self.heads if self.existing_heads is None else self.existing_heads

    def head_size_problem(self, task: int, classes: list[int]) -> str | None:
        """Why task `task`'s head cannot output the class ids `classes`, or None if it can."""
        if self.existing_heads is not None or not classes:
            return None  # a MultiHeadClassifier sizes each head by its task's class ids
        outputs = self.heads.source.out_features
        if max(classes) < outputs:
            return None
        return (f"Piggyback: task {task} has class ids {sorted(classes)}, but each task's head has {outputs} "
                f"outputs; build the model with at least {max(classes) + 1} outputs (or piggyback(..., "
                f"head_size={max(classes) + 1})), give it a MultiHeadClassifier (as MTSimpleMLP has), or number "
                "each experience's classes from zero (nc_benchmark(..., class_ids_from_zero_in_each_exp=True))")

    def task_layers(self, kind: type[TaskLayer] = TaskLayer) -> list[TaskLayer]:
        return [m for m in self.modules() if isinstance(m, kind)]

    @property
    def finished_tasks(self) -> set[int]:
        return {int(task) for task in self.head_tasks.finished}

    def task_state(self) -> list[nn.Module]:
        """The containers of every finished task's tensors: packed masks, heads, per-task BatchNorm."""
        heads = self.existing_heads.finished_heads() if self.existing_heads is not None else []
        return [layer.finished for layer in self.task_layers()] + heads

    def mask_scores(self) -> list[nn.Parameter]:
        """The real-valued mask scores of the task being trained (empty if it learns no mask)."""
        return [score for layer in self.task_layers(MaskedWeight) for score in layer.scores.values()]

    def mask_sparsity(self) -> dict[int, dict]:
        """For each finished task with masks: the fraction of weights its mask switches off, per
        masked layer (by name) and over all of them (`total`, weighted by the layers' sizes)."""
        layers = {name: m for name, m in self.model.named_modules() if isinstance(m, MaskedWeight)}
        report = {}
        for task in sorted(self.finished_tasks):
            fractions = {name: layer.masked_fraction(task) for name, layer in layers.items()}
            if all(f is None for f in fractions.values()):
                continue  # trained the backbone, or learned no mask
            sizes = {name: layers[name].weight.numel() for name in fractions}
            total = sum(fractions[n] * sizes[n] for n in fractions) / sum(sizes.values())
            report[task] = {"layers": fractions, "total": total}
        return report

    def begin_task(self, task: int, *, dense: bool = False, masks: bool = True, mask_init: float = MASK_INIT,
                   threshold: float = THRESHOLD, per_task_bn: bool = False) -> None:
        """Create task `task`'s trainable state. `dense` trains the backbone itself (the first task,
        unless the backbone is pretrained); otherwise the backbone is frozen and the task learns
        masks, or, with `masks=False`, only its head (the heads-only control)."""
        if task in self.finished_tasks:
            raise ValueError(f"piggyback: task {task} has already been trained; its masks are packed")
        if dense and self.backbone_frozen:
            raise ValueError("piggyback: the backbone is frozen; only the first task can train it")
        if not dense:
            # Everything that exists now (backbone, template, finished tasks) stays as it is.
            self.requires_grad_(False)
            self.backbone_frozen = True
            for bn in self.task_layers(TaskBatchNorm):
                bn.backbone_frozen = True
                if per_task_bn:
                    bn.begin_task(task)
            for layer in self.task_layers(MaskedWeight) if masks else ():
                layer.begin_task(task, mask_init, threshold)
        self.head_tasks.begin_task(task)

    def end_task(self, task: int) -> None:
        """Freeze task `task`: pack its masks to bits, keep its head (and BatchNorm) as buffers."""
        for layer in self.task_layers():
            layer.end_task(task)

    def forward_single_task(self, x: torch.Tensor, task_label: int) -> torch.Tensor:
        for layer in self.task_layers():
            layer.active_task = int(task_label)
        # A model with a MultiHeadClassifier takes the task label itself (MTSimpleMLP's forward(x, task_labels)).
        return self.model(x) if self.existing_heads is None else self.model(x, int(task_label))


def piggyback(model: nn.Module, classifier_name: str = "classifier", head_size: int | None = None) -> PiggybackNet:
    """Convert `model` in place for Piggyback and return it wrapped as a `PiggybackNet`.

    `classifier_name` is the attribute (dotted path allowed) of the classifier: "classifier" for
    Avalanche's SimpleMLP / SimpleCNN / MTSimpleMLP, "fc" for torchvision's ResNets. Each task's head
    starts as a copy of that classifier, or of a fresh `nn.Linear` with `head_size` outputs if given;
    a `MultiHeadClassifier` keeps its own heads, one per task. Until a task is begun, the model
    computes exactly what the original computed.

    :param model: the model to convert, in place.
    :param classifier_name: attribute (dotted path allowed) of its classifier.
    :param head_size: outputs of each task's head; None copies the classifier's.
    """
    return PiggybackNet(model, classifier_name, head_size)
