"""Avalanche's PackNet with one classifier head per task, so that it can be compared with Piggyback
on equal terms in task-incremental learning.

`PackNetModel` wraps the whole model and calls it without task labels, so every task shares one
head. Here PackNet prunes and freezes the feature extractor as usual, and the classifier becomes
Avalanche's `MultiHeadClassifier` beside it: each task trains its own head, which no later task
touches.
"""

import torch
from avalanche.models import MultiHeadClassifier
from avalanche.models.packnet import PackNetModel, PackNetModule
from torch import nn


class PackNetTaskHeads(PackNetModel):
    """PackNet over `model` without its classifier, and a head per task.

    :param model: the model to convert, in place; its classifier is replaced by the heads.
    :param classifier_name: attribute of its classifier, an `nn.Linear`.
    """

    def __init__(self, model: nn.Module, classifier_name: str = "classifier") -> None:
        classifier = model.get_submodule(classifier_name)
        if not isinstance(classifier, nn.Linear):
            raise ValueError(f"packnet: '{classifier_name}' must be an nn.Linear, got {type(classifier).__name__}")
        # PackNetModel.__init__ would wrap the heads too: only the buffers of its base classes are wanted.
        PackNetModule.__init__(self)
        parent, _, attribute = classifier_name.rpartition(".")
        setattr(model.get_submodule(parent), attribute, nn.Identity())
        self.wrappee = PackNetModel.wrap(model)
        self.heads = MultiHeadClassifier(classifier.in_features, classifier.out_features)

    def forward(self, input: torch.Tensor, task_id: torch.Tensor) -> torch.Tensor:  # noqa: A002 - PackNet's name
        return self.heads(super().forward(input, task_id), task_id)


def packnet_with_task_heads(model: nn.Module, classifier_name: str = "classifier") -> PackNetTaskHeads:
    """Convert `model` in place for Avalanche's `PackNetPlugin`, with one head per task.

    :param model: the model to convert, in place.
    :param classifier_name: attribute of its classifier, an `nn.Linear`.
    """
    return PackNetTaskHeads(model, classifier_name)
