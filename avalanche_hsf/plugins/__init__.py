"""Continual-learning plugins for Avalanche strategies."""

from .guard import FiniteLossGuard
from .mas import MASPlugin
from .piggyback import PiggybackPlugin

__all__ = ["FiniteLossGuard", "MASPlugin", "PiggybackPlugin"]
