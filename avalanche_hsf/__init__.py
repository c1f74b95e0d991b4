"""avalanche-hsf: continual-learning plugins and declarative benchmarks for Avalanche."""

from . import compat  # noqa: F401  (fixes for avalanche-lib 0.6.0; see compat.py)
from .benchmarks import build_benchmark
from .errors import UserError
from .plugins import MASPlugin
from .plugins import PiggybackPlugin
from .scenario import load_scenario

__all__ = ["MASPlugin", "UserError", "build_benchmark", "load_scenario", "PiggybackPlugin"]
__version__ = "0.1.0"
