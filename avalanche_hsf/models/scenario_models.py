"""Model builders for scenarios: Avalanche's SimpleMLP, or a small CNN, with one head per task
(Avalanche's `as_multitask`) in task-IL and a single head otherwise."""

import math

from avalanche.models import SimpleMLP, as_multitask
from torch import nn

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


def build_model(spec: ModelSpec, input_shape, num_outputs: int, multi_head: bool) -> nn.Module:
    """`num_outputs` is the size of each head (task-IL) or of the single head."""
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
    sizes = [math.prod(input_shape), 64, 64, 24, 64, 64, num_outputs]
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), nn.GELU()]
    return nn.Sequential(nn.Flatten(), *layers[:-1])
