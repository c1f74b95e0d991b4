"""Compatibility fixes for avalanche-lib 0.6.0, applied on import of `avalanche_hsf`.

Synaptic Intelligence: `SynapticIntelligencePlugin.extract_weights` stores
`param.detach().cpu().flatten()`. On a CPU model that is a view of the live parameter, not a
copy, so the "old" and "new" weights it compares are the same tensor, the path integral is
always zero, and SI silently degrades to naive fine-tuning. Storing a copy restores the method.
The plugin calls the function through its class name, so it is replaced there.
"""

import torch
from avalanche.training.plugins.synaptic_intelligence import SynapticIntelligencePlugin


@torch.no_grad()
def _extract_weights_copy(model, target, excluded_parameters):
    for name, param in SynapticIntelligencePlugin.allowed_parameters(model, excluded_parameters):
        target[name].data = param.detach().cpu().flatten().clone()


SynapticIntelligencePlugin.extract_weights = staticmethod(_extract_weights_copy)
