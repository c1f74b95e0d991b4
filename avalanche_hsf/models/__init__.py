"""Models: the scenario builders, and the Piggyback conversion of an ordinary model."""

from .piggyback import PiggybackNet, piggyback
from .scenario_models import SmallCNN, build_mlp_autoencoder, build_model

__all__ = ["PiggybackNet", "SmallCNN", "build_mlp_autoencoder", "build_model", "piggyback"]
