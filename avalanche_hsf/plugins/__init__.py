"""Continual-learning plugins for Avalanche strategies."""

from .guard import FiniteLossGuard
from .hsf import HSFPlugin
from .mas import MASPlugin
from .piggyback import PiggybackPlugin

__all__ = ["FiniteLossGuard", "HSFPlugin", "MASPlugin", "PiggybackPlugin"]
