"""Out-of-range hyperparameters and scenario values: one-line errors naming the key, and every
default within its own rule."""

import copy
import math

import pytest

from avalanche_hsf.errors import UserError
from avalanche_hsf.lab.benchmarks import BENCHMARKS, _parameters
from avalanche_hsf.lab.spec import ModelSpec, TrainingSpec, spec_defaults, spec_rules
from avalanche_hsf.lab.strategies import STRATEGIES, validate_strategy
from tests.helpers import (
    BASE,
    FAST,
    assert_clean_error,
    files_under,
    run_cli,
    table_at,
    toml_document,
)

# --- out-of-range hyperparameters ----------------------------------------------------------

@pytest.mark.parametrize("strategy, key, value, fragment", [
    ("ewc", "ewc_lambda", "-1.0", "must be >= 0"),
    ("ewc", "ewc_lambda", "nan", "expected a finite number"),
    ("si", "si_lambda", "-0.5", "must be >= 0"),
    ("mas", "lambda_reg", "-1", "must be >= 0"),
    ("mas_avalanche", "lambda_reg", "-0.1", "must be >= 0"),
    ("mas_avalanche", "alpha", "1.5", "must be >= 0 and <= 1"),
    ("lwf", "alpha", "-1.0", "must be >= 0"),
    ("lwf", "temperature", "0.0", "must be > 0"),
    ("gem", "patterns_per_exp", "0", "must be >= 1"),
    ("gem", "memory_strength", "-0.5", "must be >= 0"),
    ("agem", "sample_size", "-3", "must be >= 1"),
    ("packnet", "prune_proportion", "1.0", "must be > 0 and < 1"),
    ("packnet", "post_prune_epochs", "0", "must be >= 1"),
    ("piggyback", "threshold", "0.0", "must be > 0"),
    ("piggyback", "mask_init", "-0.01", "must be > 0"),
    ("hsf", "beta", "-0.1", "must be >= 0"),
    ("hsf_noflow", "gamma", "-1.0", "must be >= 0"),
    ("hsf", "reg_tasks", "0", "must be >= 1"),
    ("hsf", "chunk_size", "0", "must be >= 1"),
    ("hsf", "lr", "0.0", "must be > 0"),
    ("hsf", "optimizer", '"rmsprop"', "must be one of sgd, adam"),
    ("ewc", "mode", '"online"', "must be one of separate"),
])
def test_out_of_range_hyperparameter_names_the_key(capsys, write_scenario, tmp_path, strategy, key, value, fragment):
    path = write_scenario(strategies=(), strategy_tables=f"[strategies.{strategy}]\n{key} = {value}\n")
    code, err = run_cli(capsys, "run", str(path), "--out", str(tmp_path / "out"), "--quiet")
    assert_clean_error(code, err, str(path), f"strategies.{strategy}.{key}: {fragment}")
    assert not (tmp_path / "out").exists()  # rejected at load, before anything is written


def test_icarl_memory_must_hold_a_sample(capsys, write_scenario, tmp_path):
    path = write_scenario(setting="class-il", strategies=(), strategy_tables="[strategies.icarl]\nmemory_size = 0\n")
    code, err = run_cli(capsys, "run", str(path), "--out", str(tmp_path / "out"))
    assert_clean_error(code, err, "strategies.icarl.memory_size: must be >= 1, got 0")


@pytest.mark.parametrize("table, fragment", [
    ("frozen_features = false", "null_space (the default) keeps old tasks through the hypernetwork's last layer"),
    ("lookahead = true", "lookahead moves the output regulariser, which null_space (the default) replaces"),
])
def test_hsf_options_that_cannot_go_together(capsys, write_scenario, tmp_path, table, fragment):
    path = write_scenario(strategies=(), strategy_tables=f"[strategies.hsf]\n{table}\n")
    code, err = run_cli(capsys, "run", str(path), "--out", str(tmp_path / "out"))
    assert_clean_error(code, err, f"strategies.hsf: {fragment}")


def test_validate_strategy_applies_the_same_bounds():
    with pytest.raises(UserError, match=r"here\.si_lambda: must be >= 0, got -1.0"):
        validate_strategy("si", "task-il", {"si_lambda": -1.0}, "here", TrainingSpec())
    # only MAS's EMA alpha is <= 1
    assert validate_strategy("lwf", "task-il", {"alpha": 3.0}, "here", TrainingSpec()) == {"alpha": 3.0}


def test_every_strategy_takes_its_own_optimizer_and_learning_rate():
    for name, entry in STRATEGIES.items():
        setting = entry.settings[0]
        training = TrainingSpec(epochs=5)  # PackNet needs more epochs than its post-pruning phase
        assert validate_strategy(name, setting, {"optimizer": "adam", "lr": 0.002}, "here", training) == {
            "optimizer": "adam", "lr": 0.002}
        with pytest.raises(UserError, match=r"here\.lr: must be > 0"):
            validate_strategy(name, setting, {"lr": 0.0}, "here", training)


@pytest.mark.parametrize("where, key, value, fragment", [
    ((), "seeds", [2**32], "seeds: must be >= 0 and <= 4294967295"),
    ((), "name", "../escape", "name: must be usable as a folder name"),
    (("model",), "num_outputs", -1, "model.num_outputs: must be >= 0"),
    (("training",), "momentum", 1.0, "training.momentum: must be >= 0 and < 1"),
    (("training",), "lr", math.inf, "training.lr: expected a finite number"),
    (("benchmark",), "class_order", ["a", 1], "class_order: must be a permutation"),
    (("training",), "batch_size", 2**64, "training.batch_size: integers must fit in 64 bits"),
    (("model",), "hidden_size", 2**63 - 1, "model.hidden_size: must be >= 1 and <= 2147483647"),  # refused at load
])
def test_bad_scenario_values(capsys, tmp_path, where, key, value, fragment):
    doc = copy.deepcopy(BASE)
    table_at(doc, where)[key] = value
    path = tmp_path / "tiny.toml"
    path.write_text(toml_document(doc))
    code, err = run_cli(capsys, "run", str(path), "--out", str(tmp_path / "o"), *FAST)
    assert_clean_error(code, err, fragment)
    assert files_under(tmp_path / "o") == []  # class_order fails when the benchmark is built: no file yet


def test_zero_epochs_on_the_command_line(capsys, write_scenario, tmp_path):
    code, err = run_cli(capsys, "run", str(write_scenario()), "--epochs", "0", "--out", str(tmp_path / "o"))
    assert_clean_error(code, err, "--epochs must be >= 1")


def _all_defaults():
    """(where, key, default, rule) of every parameter a scenario file can set."""
    for name, entry in STRATEGIES.items():
        yield from ((name, key, value, entry.rules[key]) for key, value in entry.defaults.items())
    for name, entry in BENCHMARKS.items():
        yield from ((name, key, value, entry.rules.get(key, MISSING)) for key, value in _parameters(entry).items())
    for spec in (ModelSpec, TrainingSpec):
        rules = spec_rules(spec)
        yield from ((spec.__name__, key, value, rules[key]) for key, value in spec_defaults(spec).items())


MISSING = object()


def test_every_parameter_has_a_rule_that_its_default_meets():
    """Every number has a rule next to where it is declared, and its default meets it."""
    for where, key, value, rule in _all_defaults():
        assert rule is not MISSING, (where, key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            assert rule is not None, (where, key)
        if rule is not None:
            assert rule.problem(value) is None, (where, key, value)
