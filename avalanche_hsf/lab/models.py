"""A scenario's `[model]` table and a strategy's model hyperparameters made into a model.

Avalanche's SimpleMLP or the library's SmallCNN, with one head per task (Avalanche's
`as_multitask`) in task-IL and a single head otherwise, optionally pretrained first on classes
that the stream never shows; the seed benchmark's MLP, alone, with a head per task, or one per
task; HSF. Sizes too large to allocate
become a one-line error.
"""

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from avalanche.models import SimpleMLP, as_multitask
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

from ..errors import UserError
from ..models import MLPTaskHeads, PerTaskMLPs, SmallCNN, hsf_model, mlp_autoencoder
from ..models.hsf import HSFModel
from .spec import ModelSpec
from .stopping import raise_if_stopped


@contextmanager
def allocation_checked(what: str) -> Iterator[None]:
    """Sizes in a scenario file too large to allocate become a UserError naming `what`."""
    try:
        yield
    except (MemoryError, RuntimeError) as err:
        raise UserError(f"model: cannot allocate {what}: {err}") from err


def output_size(spec: ModelSpec, needed: int) -> int:
    """[model] num_outputs, or `needed` (the benchmark's largest label + 1) when it is 0 (automatic)."""
    if spec.num_outputs and spec.num_outputs < needed:
        raise UserError(f"model.num_outputs: {spec.num_outputs} is fewer than the benchmark's {needed} classes "
                        f"(labels 0..{needed - 1}); set it to at least {needed}, or to 0 to size it automatically")
    return spec.num_outputs or needed


def pretrain(model: nn.Module, dataset, epochs: int, batch_size: int,
             make_optimizer: Callable[[nn.Module], torch.optim.Optimizer], device: str = "cpu") -> None:
    """Train `model`'s backbone on `dataset` jointly, before the continual stream, through a head of
    its own that is dropped afterwards (the model keeps its untrained classifier), as a backbone
    pretrained on another dataset comes without that dataset's classifier. A plain loop, not an
    Avalanche experience, so that no strategy or plugin sees (or protects) the pretraining task."""
    classifier = model.classifier
    model.classifier = nn.Linear(classifier.in_features, max(dataset.targets) + 1)
    model.to(device).train()
    optimizer = make_optimizer(model)
    for _ in range(epochs):
        for x, y in DataLoader(dataset, batch_size=batch_size, shuffle=True):
            optimizer.zero_grad()
            F.cross_entropy(model(x.to(device)), y.to(device)).backward()
            optimizer.step()
            raise_if_stopped()  # outside Avalanche, so StopCheck does not see these steps
    model.classifier = classifier.to(device)


def build_model(spec: ModelSpec, input_shape, num_outputs: int, multi_head: bool,
                prepare: Callable[[nn.Module], None] | None = None) -> nn.Module:
    """`num_outputs` is the size of each head (task-IL) or of the single head. `prepare` (for
    example pretraining) gets the single-head model before its head is made one per task."""
    num_outputs = output_size(spec, num_outputs)
    if spec.type == "cnn" and (len(input_shape) != 3 or min(input_shape[1:]) < 2):
        raise UserError(f"model.type: 'cnn' needs images of shape (channels, height, width), at least 2x2; "
                        f"this benchmark's inputs have shape {tuple(input_shape)} (use type = \"mlp\")")
    with allocation_checked(f"a {spec.type} with hidden_size = {spec.hidden_size}, "
                            f"hidden_layers = {spec.hidden_layers} and {num_outputs} outputs"):
        if spec.type == "mlp":
            model = SimpleMLP(num_classes=num_outputs, input_size=math.prod(input_shape),
                              hidden_size=spec.hidden_size, hidden_layers=spec.hidden_layers,
                              drop_rate=spec.drop_rate)
        else:
            model = SmallCNN(input_shape[0], num_outputs, spec.hidden_size, spec.drop_rate)
    if prepare is not None:
        prepare(model)
    return as_multitask(model, "classifier") if multi_head else model


def build_mlp_autoencoder(spec: ModelSpec, input_shape, num_outputs: int, setting: str) -> nn.Module:
    return mlp_autoencoder(math.prod(input_shape), output_size(spec, num_outputs))


def build_mlp_task_heads(spec: ModelSpec, input_shape, num_outputs: int, setting: str) -> nn.Module:
    return MLPTaskHeads(math.prod(input_shape), output_size(spec, num_outputs))


def build_per_task_mlps(spec: ModelSpec, input_shape, num_outputs: int, setting: str) -> nn.Module:
    return PerTaskMLPs(math.prod(input_shape), output_size(spec, num_outputs))


def build_hsf(spec: ModelSpec, input_shape, num_outputs: int, setting: str, **options) -> HSFModel:
    """An HSF model whose target has the scenario's hidden width; the task is inferred unless the
    setting is task-IL. `options` are keywords of `HSFTarget` and `HSFModel`."""
    num_outputs = output_size(spec, num_outputs)
    sizes = ", ".join(f"{key} = {value}" for key, value in options.items() if isinstance(value, int)
                      and not isinstance(value, bool))
    with allocation_checked(f"an HSF model with hidden_size = {spec.hidden_size}, {sizes}"):
        return hsf_model(input_shape, num_outputs, hidden=spec.hidden_size, infer_task=setting != "task-il",
                         **options)
