"""avalanche-hsf: continual-learning plugins (HSF, MAS, Piggyback) and their models for Avalanche.

The library is `avalanche_hsf.plugins` and `avalanche_hsf.models`; `avalanche_hsf.lab` is the
application on top of it (scenario files, registries, runner, CLI), which the library never imports.
"""

from . import compat

compat.apply_fixes()

from .plugins import FiniteLossGuard, HSFPlugin, MASPlugin, PiggybackPlugin  # noqa: E402  (after the fixes)

__all__ = ["FiniteLossGuard", "HSFPlugin", "MASPlugin", "PiggybackPlugin"]
__version__ = "0.1.0"
