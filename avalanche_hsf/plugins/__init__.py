"""Continual-learning plugins for Avalanche strategies."""

from .mas import MASPlugin
from .piggyback import PiggybackPlugin

__all__ = ["MASPlugin", "PiggybackPlugin"]
