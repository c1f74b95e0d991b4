"""Models: HSF, the Piggyback conversion of an ordinary model, Avalanche's PackNet with a head per
task, two small reference networks and the task-aware regression baselines built from one of them."""

from .hsf import HSFModel, HSFTarget, hsf_model
from .packnet import PackNetTaskHeads, packnet_with_task_heads
from .piggyback import PiggybackNet, piggyback
from .small import SmallCNN, mlp_autoencoder
from .task_aware import MLPTaskHeads, PerTaskMLPs

__all__ = ["HSFModel", "HSFTarget", "MLPTaskHeads", "PackNetTaskHeads", "PerTaskMLPs", "PiggybackNet", "SmallCNN",
           "hsf_model", "mlp_autoencoder", "packnet_with_task_heads", "piggyback"]
