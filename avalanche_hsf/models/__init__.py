"""Models: HSF, the Piggyback conversion of an ordinary model, Avalanche's PackNet with a head per
task, and two small reference networks."""

from .hsf import HSFModel, HSFTarget, hsf_model
from .packnet import PackNetTaskHeads, packnet_with_task_heads
from .piggyback import PiggybackNet, piggyback
from .small import SmallCNN, mlp_autoencoder

__all__ = ["HSFModel", "HSFTarget", "PackNetTaskHeads", "PiggybackNet", "SmallCNN", "hsf_model", "mlp_autoencoder",
           "packnet_with_task_heads", "piggyback"]
