"""Count, rather than estimate, what a strategy keeps and trains: the bytes of its state (every
distinct tensor storage reachable from the objects that hold it, and every sample of stored
datasets) and the parameters its optimizer trains."""

from collections.abc import Mapping
from types import FunctionType, MethodType, ModuleType

import torch
from avalanche.benchmarks.utils import AvalancheDataset
from avalanche.core import SupervisedPlugin
from torch import nn
from torch.utils.data import Dataset


def _sample_bytes(sample) -> int:
    if isinstance(sample, torch.Tensor):
        return sample.nelement() * sample.element_size()
    if isinstance(sample, (int, float)):  # a stored label or task id: one int64/float64
        return 8
    if isinstance(sample, (list, tuple)):
        return sum(_sample_bytes(s) for s in sample)
    return 0


def state_bytes(holders, exclude=()) -> int:
    """Bytes of all tensors reachable from `holders`, each storage counted once.

    Objects in `exclude` (the live model, the optimizer, the strategy) are not entered, and
    tensors sharing storage with a live model's parameters are not counted: they are not extra
    state. A holder may still name a model buffer (PackNet's masks), which is counted.
    A stored dataset counts as its length times the size of one sample.
    """
    skip_objects = {id(obj) for obj in exclude}
    seen_storages = {
        t.untyped_storage().data_ptr()
        for obj in exclude if isinstance(obj, nn.Module)
        for t in obj.parameters()
    }
    visited = set()

    def visit(obj, depth=0) -> int:
        if id(obj) in visited or id(obj) in skip_objects or depth > 12:
            return 0
        visited.add(id(obj))
        if isinstance(obj, torch.Tensor):
            storage = obj.untyped_storage()
            if storage.data_ptr() in seen_storages:
                return 0
            seen_storages.add(storage.data_ptr())
            return storage.nbytes()
        if isinstance(obj, nn.Module):
            return sum(visit(t, depth + 1) for t in obj.state_dict(keep_vars=True).values())
        if isinstance(obj, (Dataset, AvalancheDataset)):  # AvalancheDataset is not a torch Dataset
            return len(obj) * _sample_bytes(obj[0]) if len(obj) else 0
        if isinstance(obj, Mapping):
            return sum(visit(v, depth + 1) for v in obj.values())
        if isinstance(obj, (list, tuple, set, frozenset)):
            return sum(visit(v, depth + 1) for v in obj)
        if isinstance(obj, (type, ModuleType, FunctionType, MethodType)) or not hasattr(obj, "__dict__"):
            return 0
        return sum(visit(v, depth + 1) for v in vars(obj).values())

    return sum(visit(h) for h in holders)


class TrainedParameters(SupervisedPlugin):
    """Counts the parameters the optimizers train over a run: every parameter of the model that is
    in a parameter group of the strategy's optimizer, or of an optimizer a plugin keeps (Piggyback's
    mask optimizer), in some training epoch. So HSF's generated target, which only gives shapes,
    does not count, and every task's Piggyback masks and heads do. Parameters are known by name,
    which a checkpoint keeps."""

    def __init__(self):
        super().__init__()
        self._seen = {}  # parameter name -> number of elements

    def before_training_epoch(self, strategy, **kwargs):
        names = {id(param): name for name, param in strategy.model.named_parameters()}
        optimizers = [strategy.optimizer, *(value for plugin in strategy.plugins for value in vars(plugin).values()
                                            if isinstance(value, torch.optim.Optimizer))]
        for group in (group for optimizer in optimizers for group in optimizer.param_groups):
            for param in group["params"]:
                if param.requires_grad and id(param) in names:
                    self._seen[names[id(param)]] = param.numel()

    @property
    def count(self) -> int:
        return sum(self._seen.values())
