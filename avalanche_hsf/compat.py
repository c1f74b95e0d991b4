"""Compatibility fixes for avalanche-lib 0.6.0, applied on import of `avalanche_hsf`.
Tested with avalanche-lib 0.6.0, torch 2.14.1, dill 0.4.1 and typing_extensions 4.16.

Synaptic Intelligence: `SynapticIntelligencePlugin.extract_weights` stores
`param.detach().cpu().flatten()`. On a CPU model that is a view of the live parameter, not a
copy, so the "old" and "new" weights it compares are the same tensor, the path integral is
always zero, and SI silently degrades to naive fine-tuning. Storing a copy restores the method.
The plugin calls the function through its class name, so it is replaced there.

Checkpointing: `avalanche.checkpointing.save_checkpoint` pickles the strategy with dill and
fails with "Can't pickle sentinel: it's not the same object as typing_extensions.sentinel".
Two faults meet:
1. torch.optim's `__init__` deletes its submodule attributes (`del sgd`, `del adam`, ...). dill
   locates a class by walking attributes from the package (`torch.optim` -> `sgd` -> `SGD`), so
   it concludes that `torch.optim.sgd.SGD` cannot be imported and pickles the whole class by
   value, methods and all.
2. Among those methods is a `typing_extensions.deprecated` wrapper whose code refers to
   typing_extensions' private `_marker` sentinel. That sentinel is created as
   `sentinel("sentinel")`, so it pickles as the global `typing_extensions.sentinel`, which is the
   sentinel class itself, and pickle refuses.
Re-attaching the loaded submodules to their package fixes (1): dill pickles optimizers by
reference again, so a loaded optimizer is a real `torch.optim.SGD`. Naming the sentinel after
the variable that holds it fixes (2) for anything else that is still pickled by value.
"""

import pickle
import sys

import torch
import torch.optim
import typing_extensions
from avalanche.training.plugins.synaptic_intelligence import SynapticIntelligencePlugin


@torch.no_grad()
def _extract_weights_copy(model, target, excluded_parameters):
    for name, param in SynapticIntelligencePlugin.allowed_parameters(model, excluded_parameters):
        target[name].data = param.detach().cpu().flatten().clone()


SynapticIntelligencePlugin.extract_weights = staticmethod(_extract_weights_copy)


def _reattach_submodules(package) -> None:
    prefix = package.__name__ + "."
    for name, module in list(sys.modules.items()):
        child = name[len(prefix):]
        if name.startswith(prefix) and module is not None and "." not in child and not hasattr(package, child):
            setattr(package, child, module)


def _sentinel_is_picklable() -> bool:
    try:
        return pickle.loads(pickle.dumps(typing_extensions._marker)) is typing_extensions._marker
    except (pickle.PicklingError, AttributeError, TypeError):
        return False


_reattach_submodules(torch.optim)
if hasattr(typing_extensions, "_marker") and not _sentinel_is_picklable():
    typing_extensions._marker._name = "_marker"  # what `__reduce__` returns; setting `__name__` warns
