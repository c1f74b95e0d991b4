"""Model builders for scenarios: Avalanche's SimpleMLP, or a small CNN, with one head per task
(Avalanche's `as_multitask`) in task-IL and a single head otherwise."""

import math
from contextlib import contextmanager

from avalanche.models import SimpleMLP, as_multitask
from torch import nn

from ..errors import UserError
from ..scenario import ModelSpec


class SmallCNN(nn.Module):
    """Two conv blocks and a linear classifier; `features` / `classifier` as in SimpleMLP."""

    def __init__(self, in_channels: int, num_classes: int, hidden_size: int = 64, drop_rate: float = 0.0):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
            nn.Linear(64 * 4, hidden_size), nn.ReLU(), nn.Dropout(drop_rate),
        )
        self.classifier = nn.Linear(hidden_size, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


@contextmanager
def allocation_checked(what: str):
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


def build_model(spec: ModelSpec, input_shape, num_outputs: int, multi_head: bool) -> nn.Module:
    """`num_outputs` is the size of each head (task-IL) or of the single head."""
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
    return as_multitask(model, "classifier") if multi_head else model


def build_mlp_autoencoder(spec: ModelSpec, input_shape, num_outputs: int, setting: str) -> nn.Module:
    """The seed benchmark's baseline: d -> 64 -> 64 -> 24 -> 64 -> 64 -> d with GELU (REFERENCE §2).

    One network shared by all tasks (no task-specific part), trained sequentially."""
    sizes = [math.prod(input_shape), 64, 64, 24, 64, 64, output_size(spec, num_outputs)]
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), nn.GELU()]
    return nn.Sequential(nn.Flatten(), *layers[:-1])
