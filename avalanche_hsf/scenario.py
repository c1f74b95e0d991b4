"""Declarative scenario files: TOML in, a validated `Scenario` out.

Every error names the file and the offending key, so that the CLI can report it on one line.
"""

import dataclasses
import math
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
    num_outputs: int = 0  # classifier outputs; 0 sizes them to the benchmark's labels


@dataclass(frozen=True)
class TrainingSpec:
    epochs: int = 1
    batch_size: int = 32
    eval_batch_size: int = 256
    lr: float = 0.01
    optimizer: str = "sgd"
    momentum: float = 0.0


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
        return None if value in self.choices else f"one of {', '.join(self.choices)}"


COUNT = Range(1)
NON_NEGATIVE = Range(0)  # a weight or size where 0 switches the thing off
# A layer width: torch's size arithmetic overflows far beyond it (a TypeError, not an allocation
# error), while any width up to it is a clean "cannot allocate" when too large for memory.
MAX_WIDTH = 2**31 - 1
WIDTH, OPTIONAL_WIDTH = Range(1, MAX_WIDTH), Range(0, MAX_WIDTH)
POSITIVE = Range(0, low_open=True)
FRACTION = Range(0, 1)
SEED = Range(0, 2**32 - 1)  # what numpy's seeding accepts

# The allowed values of every number and choice in a scenario file, by key: model, training,
# benchmark parameters and strategy hyperparameters alike. "scope.key" (a strategy or benchmark
# name) overrides "key" where one name means two things.
BOUNDS = {
    "setting": OneOf(SETTINGS),
    "seed": SEED,
    # [model] and [training]
    "type": OneOf(("mlp", "cnn")), "hidden_size": WIDTH, "hidden_layers": COUNT,
    "drop_rate": Range(0, 1, high_open=True), "num_outputs": NON_NEGATIVE,
    "epochs": COUNT, "batch_size": COUNT, "eval_batch_size": COUNT, "lr": POSITIVE,
    "optimizer": OneOf(("sgd", "adam")), "momentum": Range(0, 1, high_open=True),
    # [benchmark]
    "n_experiences": COUNT, "num_classes": NON_NEGATIVE, "permutation_seed": SEED, "n_points": Range(4),
    "max_angle": Range(),  # any angle
    # [strategies.*]: regularisation strengths may be 0 (no penalty), memories hold at least one sample
    "ewc_lambda": NON_NEGATIVE, "mode": OneOf(("separate",)),  # online EWC needs a decay_factor
    "si_lambda": NON_NEGATIVE, "lambda_reg": NON_NEGATIVE, "accumulate": OneOf(("sum", "average", "ema")),
    "alpha": NON_NEGATIVE,  # LwF's distillation weight
    "mas_avalanche.alpha": FRACTION,  # an EMA weight
    "temperature": POSITIVE,  # divides the logits
    "patterns_per_exp": COUNT, "memory_strength": NON_NEGATIVE, "sample_size": COUNT, "memory_size": COUNT,
    # PackNet prunes at epoch (epochs - post_prune_epochs): 0 would never prune
    "post_prune_epochs": COUNT, "prune_proportion": Range(0, 1, low_open=True, high_open=True),
    "mask_init": POSITIVE, "threshold": POSITIVE,  # Piggyback's scores start above a positive threshold
    "beta": NON_NEGATIVE, "gamma": NON_NEGATIVE, "reg_tasks": COUNT,
    "latent_dim": Range(2, MAX_WIDTH),  # the coupling flow splits the latent in two
    "embedding_dim": WIDTH, "chunk_size": WIDTH, "hnet_hidden": WIDTH, "sde_steps": COUNT,
    "max_diffusion": NON_NEGATIVE, "sde_samples": COUNT, "head_hidden": OPTIONAL_WIDTH,
    "decoder_hidden": OPTIONAL_WIDTH, "reconstruction": NON_NEGATIVE,
    "inference": OneOf(("flow", "entropy")),
}


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


def check_bound(key: str, value: Any, where: str, scope: str = "") -> None:
    """Check `value` against what BOUNDS allows for `key` (or for "scope.key")."""
    rule = BOUNDS.get(f"{scope}.{key}", BOUNDS.get(key))
    problem = rule and rule.problem(value)
    if problem:
        raise UserError(f"{where}: must be {problem}, got {value!r}")


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


def check_params(params: Any, defaults: dict, where: str, scope: str = "") -> dict:
    """Known keys only, each of its default's type and within its BOUNDS."""
    if not isinstance(params, dict):
        raise UserError(f"{where}: expected a table of parameters")
    check_keys(params, defaults, where)
    checked = {k: check_value(v, defaults[k], f"{where}.{k}") for k, v in params.items()}
    for key, value in checked.items():
        check_bound(key, value, f"{where}.{key}", scope)
    return checked


def _fill(spec_type, table: Any, where: str):
    return spec_type(**check_params(table, {f.name: f.default for f in dataclasses.fields(spec_type)}, where))


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
    from .benchmarks import BENCHMARKS, validate_benchmark
    from .strategies import validate_strategy

    path = resolve_scenario_path(name_or_path)
    try:
        raw = tomllib.loads(path.read_text())
    except ValueError as err:  # a TOMLDecodeError, or an integer too long for Python to read
        raise UserError(f"{path}: malformed TOML: {err}") from err
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read: {err}") from err

    check_keys(raw, ("name", "description", "setting", "seeds", "benchmark", "model", "training",
                     "strategies"), str(path))
    for key in ("setting", "benchmark"):
        if key not in raw:
            raise UserError(f"{path}: missing key '{key}'")
    setting = check_value(raw["setting"], "", f"{path}: setting")
    check_bound("setting", setting, f"{path}: setting")
    scenario_name = check_value(raw.get("name", path.stem), "", f"{path}: name")
    if scenario_name in ("", ".", "..") or not scenario_name.isprintable() or any(c in scenario_name for c in "/\\"):
        raise UserError(f"{path}: name: must be usable as a folder name (printable, no '/' or '\\'), "
                        f"got {scenario_name!r}")

    bench = dict(raw["benchmark"]) if isinstance(raw["benchmark"], dict) else None
    if not bench or "name" not in bench:
        raise UserError(f"{path}: benchmark: expected a table with a 'name' key")
    bench_name = check_value(bench.pop("name"), "", f"{path}: benchmark.name")
    bench_params = validate_benchmark(bench_name, setting, bench, f"{path}: benchmark", base_dir=path.parent)
    model = _fill(ModelSpec, raw.get("model", {}), f"{path}: model")
    if model.num_outputs and BENCHMARKS[bench_name].regression:
        raise UserError(f"{path}: model.num_outputs: {bench_name} is a regression benchmark whose output is "
                        "its input's size; leave num_outputs at 0")

    strategies = raw.get("strategies", {})
    if not isinstance(strategies, dict) or not strategies:
        raise UserError(f"{path}: strategies: expected at least one [strategies.NAME] table")
    training = _fill(TrainingSpec, raw.get("training", {}), f"{path}: training")
    strategies = {name: validate_strategy(name, setting, hparams, f"{path}: strategies.{name}", training)
                  for name, hparams in strategies.items()}

    seeds = raw.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds:
        raise UserError(f"{path}: seeds: expected a non-empty list of integers, got {seeds!r}")
    for seed in seeds:
        check_bound("seed", check_value(seed, 0, f"{path}: seeds"), f"{path}: seeds")

    return Scenario(
        name=scenario_name,
        description=check_value(raw.get("description", ""), "", f"{path}: description"),
        setting=setting,
        benchmark=bench_name,
        benchmark_params=bench_params,
        model=model,
        training=training,
        strategies=strategies,
        seeds=tuple(seeds),
        path=path,
    )
