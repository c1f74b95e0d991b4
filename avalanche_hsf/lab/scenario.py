"""Declarative scenario files: TOML in, a validated `Scenario` out.

The shipped files live in the top-level `scenarios/` folder and are installed with the package as
`avalanche_hsf.scenarios` (setup.cfg maps the folder), so they are found with `importlib.resources`
from a checkout and from an installed wheel alike. Every error names the file and the offending
key, so that the CLI can report it on one line.
"""

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..errors import UserError
from .benchmarks import is_regression, validate_benchmark
from .params import SEED, OneOf, check_keys, check_rule, check_value
from .spec import SETTINGS, LoggingSpec, ModelSpec, TrainingSpec, fill_spec
from .strategies import validate_strategy

SCENARIO_PACKAGE = "avalanche_hsf.scenarios"
SETTING_RULE = OneOf(SETTINGS)


@dataclass(frozen=True)
class Scenario:
    name: str
    setting: str
    benchmark: str
    benchmark_params: dict = field(default_factory=dict)
    model: ModelSpec = ModelSpec()
    training: TrainingSpec = TrainingSpec()
    logging: LoggingSpec = LoggingSpec()
    strategies: dict = field(default_factory=dict)  # name -> hyperparameters, in file order
    seeds: tuple = (0,)
    description: str = ""
    path: Path | None = None

    @property
    def regression(self) -> bool:
        """Targets are vectors scored by MSE (lower is better)."""
        return is_regression(self.benchmark, self.benchmark_params)


def shipped_scenarios() -> list[Path]:
    """The scenario files installed with the package."""
    folder = resources.files(SCENARIO_PACKAGE)
    return sorted(Path(str(item)) for item in folder.iterdir() if item.name.endswith(".toml"))


def resolve_scenario_path(name_or_path: str) -> Path:
    """Accept a path to a TOML file, or the name of a shipped scenario."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    wanted = f"{name_or_path.removesuffix('.toml')}.toml"
    for shipped in shipped_scenarios():
        if shipped.name == wanted:
            return shipped
    raise UserError(f"unknown scenario '{name_or_path}': no such file, and no shipped scenario {path.stem} "
                    "(see `avalanche-hsf list`)")


def load_scenario(name_or_path: str) -> Scenario:
    path = resolve_scenario_path(name_or_path)
    try:
        raw = tomllib.loads(path.read_text())
    except ValueError as err:  # a TOMLDecodeError, or an integer too long for Python to read
        raise UserError(f"{path}: malformed TOML: {err}") from err
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read: {err}") from err

    check_keys(raw, ("name", "description", "setting", "seeds", "benchmark", "model", "training", "logging",
                     "strategies"), str(path))
    for key in ("setting", "benchmark"):
        if key not in raw:
            raise UserError(f"{path}: missing key '{key}'")
    setting = check_value(raw["setting"], "", f"{path}: setting")
    check_rule(SETTING_RULE, setting, f"{path}: setting")
    scenario_name = check_value(raw.get("name", path.stem), "", f"{path}: name")
    if scenario_name in ("", ".", "..") or not scenario_name.isprintable() or any(c in scenario_name for c in "/\\"):
        raise UserError(f"{path}: name: must be usable as a folder name (printable, no '/' or '\\'), "
                        f"got {scenario_name!r}")

    bench = dict(raw["benchmark"]) if isinstance(raw["benchmark"], dict) else None
    if not bench or "name" not in bench:
        raise UserError(f"{path}: benchmark: expected a table with a 'name' key")
    bench_name = check_value(bench.pop("name"), "", f"{path}: benchmark.name")
    bench_params = validate_benchmark(bench_name, setting, bench, f"{path}: benchmark", base_dir=path.parent)
    model = fill_spec(ModelSpec, raw.get("model", {}), f"{path}: model")
    if model.num_outputs and is_regression(bench_name, bench_params):
        raise UserError(f"{path}: model.num_outputs: {bench_name} is a regression benchmark whose output is "
                        "its targets' size; leave num_outputs at 0")

    strategies = raw.get("strategies", {})
    if not isinstance(strategies, dict) or not strategies:
        raise UserError(f"{path}: strategies: expected at least one [strategies.NAME] table")
    training = fill_spec(TrainingSpec, raw.get("training", {}), f"{path}: training")
    strategies = {name: validate_strategy(name, setting, hparams, f"{path}: strategies.{name}", training)
                  for name, hparams in strategies.items()}

    seeds = raw.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds:
        raise UserError(f"{path}: seeds: expected a non-empty list of integers, got {seeds!r}")
    for seed in seeds:
        check_rule(SEED, check_value(seed, 0, f"{path}: seeds"), f"{path}: seeds")

    return Scenario(
        name=scenario_name,
        description=check_value(raw.get("description", ""), "", f"{path}: description"),
        setting=setting,
        benchmark=bench_name,
        benchmark_params=bench_params,
        model=model,
        training=training,
        logging=fill_spec(LoggingSpec, raw.get("logging", {}), f"{path}: logging"),
        strategies=strategies,
        seeds=tuple(seeds),
        path=path,
    )
