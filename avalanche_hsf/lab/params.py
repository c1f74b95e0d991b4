"""Checking the numbers and choices of a scenario file: the rules, and one check per key.

Each rule is declared where its key is: a strategy's with its registry entry, a benchmark's with
its entry, the model's and training's with their fields (`spec.py`). This module only knows how
to check. Every error names the file and the key, so that the CLI can report it on one line.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import UserError


@dataclass(frozen=True)
class Range:
    """Allowed numbers: from `low` to `high` (None: unbounded), each end included unless open."""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def problem(self, value) -> str | None:
        too_low = self.low is not None and (value < self.low or self.low_open and value == self.low)
        too_high = self.high is not None and (value > self.high or self.high_open and value == self.high)
        if not (too_low or too_high):
            return None
        ends = [f"{'>' if self.low_open else '>='} {self.low}"] if self.low is not None else []
        ends += [f"{'<' if self.high_open else '<='} {self.high}"] if self.high is not None else []
        return " and ".join(ends)


@dataclass(frozen=True)
class OneOf:
    choices: tuple

    def problem(self, value) -> str | None:
        return None if value in self.choices else f"one of {', '.join(map(str, self.choices))}"


@dataclass(frozen=True)
class Names:
    """A comma-separated list of one or more names, each one of `choices`."""
    choices: tuple

    def problem(self, value) -> str | None:
        names = [name.strip() for name in value.split(",")]
        if all(name in self.choices for name in names):
            return None
        return f"comma-separated names from {', '.join(self.choices)}"


Rule = Range | OneOf | Names

COUNT = Range(1)
NON_NEGATIVE = Range(0)  # a weight or size where 0 switches the thing off
POSITIVE = Range(0, low_open=True)
FRACTION = Range(0, 1)
# A layer width: torch's size arithmetic overflows far beyond it (a TypeError, not an allocation
# error), while any width up to it is a clean "cannot allocate" when too large for memory.
MAX_WIDTH = 2**31 - 1
WIDTH, OPTIONAL_WIDTH = Range(1, MAX_WIDTH), Range(0, MAX_WIDTH)
SEED = Range(0, 2**32 - 1)  # what numpy's seeding accepts


def check_value(value: Any, default: Any, where: str) -> Any:
    """Check `value` against the type of `default`; ints are accepted where floats are expected."""
    expected = type(default)
    if isinstance(value, int) and not -2**63 <= value < 2**63:  # TOML's range; tomllib reads any size
        raise UserError(f"{where}: integers must fit in 64 bits (TOML's range), "
                        f"got one of {len(str(abs(value)))} digits")
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    bool_for_number = isinstance(value, bool) and expected is not bool
    if default is not None and (not isinstance(value, expected) or bool_for_number):
        raise UserError(f"{where}: expected {expected.__name__}, got {type(value).__name__} {value!r}")
    if isinstance(value, float) and not math.isfinite(value):  # TOML has nan and inf; no setting wants them
        raise UserError(f"{where}: expected a finite number, got {value}")
    return value


def check_rule(rule: Rule | None, value: Any, where: str) -> None:
    problem = rule and rule.problem(value)
    if problem:
        raise UserError(f"{where}: must be {problem}, got {value!r}")


def check_keys(table: dict, allowed, where: str) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise UserError(f"{where}: unknown key '{unknown[0]}' (expected one of: {', '.join(sorted(allowed))})")


def check_params(params: Any, defaults: Mapping, rules: Mapping[str, Rule | None], where: str) -> dict:
    """Known keys only, each of its default's type and within its rule."""
    if not isinstance(params, dict):
        raise UserError(f"{where}: expected a table of parameters")
    check_keys(params, defaults, where)
    checked = {k: check_value(v, defaults[k], f"{where}.{k}") for k, v in params.items()}
    for key, value in checked.items():
        check_rule(rules.get(key), value, f"{where}.{key}")
    return checked


def registry_entry(registry: dict, kind: str, name: str, setting: str, where: str):
    """The entry for `name`, after checking that it exists and fits the setting."""
    if name not in registry:
        raise UserError(f"{where}: unknown {kind} '{name}' (known: {', '.join(registry)})")
    entry = registry[name]
    if setting not in entry.settings:
        raise UserError(f"{where}: {kind} '{name}' does not fit setting '{setting}' "
                        f"(it needs: {', '.join(entry.settings)})")
    return entry
