"""Models: HSF, the Piggyback conversion of an ordinary model, and two small reference networks."""

from .hsf import HSFModel, HSFTarget, hsf_model
from .piggyback import PiggybackNet, piggyback
from .small import SmallCNN, mlp_autoencoder

__all__ = ["HSFModel", "HSFTarget", "PiggybackNet", "SmallCNN", "hsf_model", "mlp_autoencoder", "piggyback"]
