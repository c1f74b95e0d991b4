"""avalanche-hsf: continual-learning plugins and declarative benchmarks for Avalanche."""

from . import compat  # noqa: F401  (fixes for avalanche-lib 0.6.0; see compat.py)
from .benchmarks import build_benchmark
from .errors import UserError
from .scenario import load_scenario

__all__ = ["UserError", "build_benchmark", "load_scenario"]
__version__ = "0.1.0"
