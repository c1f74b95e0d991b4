"""Small reference networks: a CNN for image benchmarks and the seed benchmark's MLP autoencoder."""

import torch
from torch import nn


class SmallCNN(nn.Module):
    """Two conv blocks and a linear classifier, split into `features` and `classifier` like
    Avalanche's `SimpleMLP`, so that `as_multitask(model, "classifier")` and `piggyback(model)` work.

    :param in_channels: channels of the input images.
    :param num_classes: outputs of the classifier.
    :param hidden_size: width of the last hidden layer.
    :param drop_rate: dropout before the classifier.
    """

    def __init__(self, in_channels: int, num_classes: int, hidden_size: int = 64, drop_rate: float = 0.0):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
            nn.Linear(64 * 4, hidden_size), nn.ReLU(), nn.Dropout(drop_rate),
        )
        self.classifier = nn.Linear(hidden_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


MLP_WIDTHS = (64, 64, 24, 64, 64)  # the seed benchmark's baseline's hidden layers (REFERENCE §2)


def mlp_autoencoder(in_features: int, out_features: int) -> nn.Sequential:
    """The seed benchmark's baseline (REFERENCE §2): in -> 64 -> 64 -> 24 -> 64 -> 64 -> out, GELU.

    One network shared by all tasks, with no task-specific part.

    :param in_features: size of the (flattened) input.
    :param out_features: size of the output.
    """
    sizes = [in_features, *MLP_WIDTHS, out_features]
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), nn.GELU()]
    return nn.Sequential(nn.Flatten(), *layers[:-1])
