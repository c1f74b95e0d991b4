"""Stops training at the first non-finite loss, before the optimizer step writes it into the weights."""

from typing import Any

import torch
from avalanche.core import SupervisedPlugin
from avalanche.training.templates import SupervisedTemplate

from ..errors import DivergedError


class FiniteLossGuard(SupervisedPlugin):
    """Raises `DivergedError` when the loss is NaN or inf.

    It checks in `before_update`, after every plugin has added its penalty in `before_backward`
    (some strategies append their plugin after user plugins) and before the optimizer step, so
    neither the weights nor any plugin's end-of-experience state ever see the bad value.
    """

    def before_update(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        loss = strategy.loss
        if not torch.isfinite(loss).all():
            raise DivergedError(f"the loss is {loss.detach().flatten()[0].item()}; lower the learning rate or the "
                                "regularisation strength")
