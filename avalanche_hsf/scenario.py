"""Declarative scenario files: TOML in, a validated `Scenario` out.

Every error names the file and the offending key, so that the CLI can report it on one line.
"""

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError

SETTINGS = ("task-il", "class-il", "domain-il")
SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"


@dataclass(frozen=True)
class ModelSpec:
    type: str = "mlp"
    hidden_size: int = 100
    hidden_layers: int = 2
    drop_rate: float = 0.0


@dataclass(frozen=True)
class TrainingSpec:
    epochs: int = 1
    batch_size: int = 32
    eval_batch_size: int = 256
    lr: float = 0.01
    optimizer: str = "sgd"
    momentum: float = 0.0


# (lowest allowed value, whether it may equal it) for numeric fields.
_LOWER_BOUNDS = {
    "hidden_size": (1, True), "hidden_layers": (1, True), "drop_rate": (0.0, True),
    "epochs": (1, True), "batch_size": (1, True), "eval_batch_size": (1, True),
    "lr": (0.0, False), "momentum": (0.0, True),
}
_CHOICES = {"type": ("mlp", "cnn"), "optimizer": ("sgd", "adam")}


@dataclass(frozen=True)
class Scenario:
    name: str
    setting: str
    benchmark: str
    benchmark_params: dict = field(default_factory=dict)
    model: ModelSpec = ModelSpec()
    training: TrainingSpec = TrainingSpec()
    strategies: dict = field(default_factory=dict)  # name -> hyperparameters, in file order
    seeds: tuple = (0,)
    description: str = ""
    path: Path | None = None


def check_value(value: Any, default: Any, where: str) -> Any:
    """Check `value` against the type of `default`; ints are accepted where floats are expected."""
    expected = type(default)
    if default is None or isinstance(value, expected) and not (
        isinstance(value, bool) and expected is not bool
    ):
        return value
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    raise UserError(f"{where}: expected {expected.__name__}, got {type(value).__name__} {value!r}")


def check_keys(table: dict, allowed, where: str) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise UserError(f"{where}: unknown key '{unknown[0]}' (expected one of: {', '.join(sorted(allowed))})")


def registry_entry(registry: dict, kind: str, name: str, setting: str, where: str):
    """The entry for `name`, after checking that it exists and fits the setting."""
    if name not in registry:
        raise UserError(f"{where}: unknown {kind} '{name}' (known: {', '.join(registry)})")
    entry = registry[name]
    if setting not in entry.settings:
        raise UserError(f"{where}: {kind} '{name}' does not fit setting '{setting}' "
                        f"(it needs: {', '.join(entry.settings)})")
    return entry


def check_params(params: Any, defaults: dict, where: str) -> dict:
    """Known keys only, each of its default's type."""
    if not isinstance(params, dict):
        raise UserError(f"{where}: expected a table of parameters")
    check_keys(params, defaults, where)
    return {k: check_value(v, defaults[k], f"{where}.{k}") for k, v in params.items()}


def _fill(spec_type, table: Any, where: str):
    if not isinstance(table, dict):
        raise UserError(f"{where}: expected a table")
    defaults = {f.name: f.default for f in dataclasses.fields(spec_type)}
    check_keys(table, defaults, where)
    values = {}
    for key, value in table.items():
        value = check_value(value, defaults[key], f"{where}.{key}")
        if key in _LOWER_BOUNDS:
            low, inclusive = _LOWER_BOUNDS[key]
            if value < low or (value == low and not inclusive):
                raise UserError(f"{where}.{key}: must be {'>=' if inclusive else '>'} {low}, got {value}")
        if key in _CHOICES and value not in _CHOICES[key]:
            raise UserError(f"{where}.{key}: must be one of {', '.join(_CHOICES[key])}, got {value!r}")
        values[key] = value
    if values.get("drop_rate", 0.0) >= 1.0:
        raise UserError(f"{where}.drop_rate: must be < 1, got {values['drop_rate']}")
    return spec_type(**values)


def resolve_scenario_path(name_or_path: str) -> Path:
    """Accept a path to a TOML file, or the name of a shipped scenario."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    for folder in (Path("scenarios"), SCENARIO_DIR):
        candidate = folder / f"{name_or_path.removesuffix('.toml')}.toml"
        if candidate.is_file():
            return candidate
    raise UserError(f"unknown scenario '{name_or_path}': no such file, and no scenarios/{path.stem}.toml "
                    "(see `avalanche-hsf list`)")


def shipped_scenarios() -> list[Path]:
    return sorted(SCENARIO_DIR.glob("*.toml"))


def load_scenario(name_or_path: str) -> Scenario:
    # Imported here: the registries pull in Avalanche, which `load_scenario` users already need.
    from .benchmarks import validate_benchmark
    from .strategies import validate_strategy

    path = resolve_scenario_path(name_or_path)
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"{path}: malformed TOML: {err}") from err
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read: {err}") from err

    check_keys(raw, ("name", "description", "setting", "seeds", "benchmark", "model", "training",
                     "strategies"), str(path))
    for key in ("setting", "benchmark"):
        if key not in raw:
            raise UserError(f"{path}: missing key '{key}'")
    setting = check_value(raw["setting"], "", f"{path}: setting")
    if setting not in SETTINGS:
        raise UserError(f"{path}: setting: must be one of {', '.join(SETTINGS)}, got {setting!r}")

    bench = dict(raw["benchmark"]) if isinstance(raw["benchmark"], dict) else None
    if not bench or "name" not in bench:
        raise UserError(f"{path}: benchmark: expected a table with a 'name' key")
    bench_name = check_value(bench.pop("name"), "", f"{path}: benchmark.name")
    bench_params = validate_benchmark(bench_name, setting, bench, f"{path}: benchmark")

    strategies = raw.get("strategies", {})
    if not isinstance(strategies, dict) or not strategies:
        raise UserError(f"{path}: strategies: expected at least one [strategies.NAME] table")
    training = _fill(TrainingSpec, raw.get("training", {}), f"{path}: training")
    strategies = {name: validate_strategy(name, setting, hparams, f"{path}: strategies.{name}", training)
                  for name, hparams in strategies.items()}

    seeds = raw.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds
    ):
        raise UserError(f"{path}: seeds: expected a non-empty list of non-negative integers, got {seeds!r}")

    return Scenario(
        name=check_value(raw.get("name", path.stem), "", f"{path}: name"),
        description=check_value(raw.get("description", ""), "", f"{path}: description"),
        setting=setting,
        benchmark=bench_name,
        benchmark_params=bench_params,
        model=_fill(ModelSpec, raw.get("model", {}), f"{path}: model"),
        training=training,
        strategies=strategies,
        seeds=tuple(seeds),
        path=path,
    )
