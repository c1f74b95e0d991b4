"""Bad input anywhere a user can reach it: a one-line error, a non-zero exit, no traceback, and no
partial or temporary file; plus property tests over generated scenario files and argument lists."""

import copy
import errno
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from avalanche_hsf import files
from avalanche_hsf.benchmarks import BENCHMARKS, _parameters, build_benchmark
from avalanche_hsf.errors import UserError
from avalanche_hsf.models import build_model
from avalanche_hsf.models.hsf import build_hsf_model
from avalanche_hsf.scenario import BOUNDS, ModelSpec, TrainingSpec, load_scenario
from avalanche_hsf.strategies import STRATEGIES, validate_strategy
from conftest import assert_clean_error, run_cli, scenario_text

FAST = ("--strategies", "naive", "--epochs", "1", "--seeds", "0", "--quiet")


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())


def temporary_files(folder: Path) -> list[str]:
    return [name for name in files_under(folder) if name.endswith(".tmp")]


# --- scenario files as data ---------------------------------------------------------------

# The tiny valid scenario that the tests edit.
BASE = {"name": "tiny", "setting": "task-il", "seeds": [0],
        "benchmark": {"name": "split_digits", "n_experiences": 2},
        "model": {"hidden_size": 8, "hidden_layers": 1},
        "training": {"epochs": 1, "batch_size": 64, "lr": 0.05},
        "strategies": {"naive": {}}}


def table_at(doc: dict, where: tuple) -> dict:
    """The table at the path `where`, made a table if it is missing or is not one."""
    for part in where:
        if not isinstance(doc.get(part), dict):
            doc[part] = {}
        doc = doc[part]
    return doc


def toml_string(key: str) -> str:
    return json.dumps(key, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(map(toml_value, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return toml_string(value)


def toml_document(table: dict, prefix=()) -> str:
    lines = [f"{toml_string(k)} = {toml_value(v)}" for k, v in table.items() if not isinstance(v, dict)]
    for key, value in table.items():
        if isinstance(value, dict):
            header = ".".join(map(toml_string, prefix + (key,)))
            lines += ["", f"[{header}]", toml_document(value, prefix + (key,))]
    return "\n".join(lines)


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


def test_validate_strategy_applies_the_same_bounds():
    with pytest.raises(UserError, match=r"here\.si_lambda: must be >= 0, got -1.0"):
        validate_strategy("si", "task-il", {"si_lambda": -1.0}, "here")
    assert validate_strategy("lwf", "task-il", {"alpha": 3.0}, "here") == {"alpha": 3.0}  # only MAS's EMA alpha is <= 1


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
    for name, entry in STRATEGIES.items():
        yield from ((name, key, value) for key, value in entry.defaults.items())
    for name, entry in BENCHMARKS.items():
        yield from ((name, key, value) for key, value in _parameters(entry).items())
    for spec in (ModelSpec(), TrainingSpec()):
        yield from ((type(spec).__name__, key, value) for key, value in vars(spec).items())


def test_every_number_has_a_bound_that_its_default_meets():
    """New hyperparameters must be added to BOUNDS: the registries and the table stay in step."""
    for scope, key, value in _all_defaults():
        rule = BOUNDS.get(f"{scope}.{key}", BOUNDS.get(key))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            assert rule is not None, (scope, key)
        if rule is not None:
            assert rule.problem(value) is None, (scope, key, value)


# --- the arrays benchmark ------------------------------------------------------------------

def good_arrays(n_classes=4, train_per_class=10, test_per_class=4, seed=0):
    rng = np.random.default_rng(seed)
    y_train = np.repeat(np.arange(n_classes), train_per_class)
    y_test = np.repeat(np.arange(n_classes), test_per_class)
    # Class-dependent means, so that the data is learnable.
    return {"x_train": rng.normal(size=(len(y_train), 6)) + y_train[:, None], "y_train": y_train,
            "x_test": rng.normal(size=(len(y_test), 6)) + y_test[:, None], "y_test": y_test}


def arrays_scenario(folder: Path, data: dict | None, **params):
    """A scenario in `folder` reading `data.npz` (written there unless `data` is None) by a relative path."""
    folder.mkdir(parents=True, exist_ok=True)
    if data is not None:
        np.savez(folder / "data.npz", **data)
    params = {"path": "data.npz", "n_experiences": 2, **params}
    path = folder / "tiny.toml"
    path.write_text(scenario_text(benchmark="arrays",
                                  extra_benchmark="\n".join(f"{k} = {toml_value(v)}" for k, v in params.items())))
    return path


def test_arrays_benchmark_runs_with_a_path_relative_to_the_scenario(capsys, tmp_path, monkeypatch):
    path = arrays_scenario(tmp_path / "scenario", good_arrays())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the data is found next to the scenario, not in the CWD
    code, err = run_cli(capsys, "run", str(path), "--out", str(tmp_path / "out"), *FAST)
    assert code == 0, err
    results = json.loads((tmp_path / "out" / "tiny" / "results.json").read_text())
    assert len(results["strategies"]["naive"]["acc_matrix"]) == 2


def test_arrays_path_falls_back_to_the_working_directory(tmp_path, monkeypatch):
    np.savez(tmp_path / "data.npz", **good_arrays())
    path = arrays_scenario(tmp_path / "scenario", None)
    monkeypatch.chdir(tmp_path)
    assert load_scenario(str(path)).benchmark_params["path"] == str(tmp_path / "data.npz")


@pytest.mark.parametrize("setting, classes", [("task-il", [[0, 1], [0, 1]]), ("class-il", [[2, 3], [0, 1]])])
def test_arrays_split_by_class(tmp_path, setting, classes):
    np.savez(tmp_path / "data.npz", **good_arrays())
    benchmark = build_benchmark("arrays", setting, {"path": str(tmp_path / "data.npz"), "n_experiences": 2,
                                                    "class_order": [2, 3, 0, 1]})
    assert [sorted(e.classes_in_this_experience) for e in benchmark.train_stream] == classes
    assert [len(e.dataset) for e in benchmark.test_stream] == [8, 8]


def _with(**changes):
    data = good_arrays()
    for name, change in changes.items():
        data[name] = change(data[name])
    return data


def _without(name):
    data = good_arrays()
    del data[name]
    return data


def _set(index, value):
    def change(array):
        array = array.astype(float)
        array.flat[index] = value
        return array
    return change


@pytest.mark.parametrize("data, params, fragments", [
    (None, {}, ["no such file", "data.npz"]),
    (_without("y_test"), {}, ["missing array 'y_test'"]),
    (_with(x_train=_set(7, np.nan)), {}, ["array 'x_train'", "NaN or inf"]),
    (_with(x_test=_set(0, np.inf)), {}, ["array 'x_test'", "NaN or inf"]),
    (_with(x_test=_set(13, 1e300)), {}, ["array 'x_test'", "beyond float32's range (first in sample 2)"]),
    (_with(y_train=_set(3, 1.5)), {}, ["array 'y_train'", "non-integer label 1.5"]),
    (_with(y_test=lambda y: y.astype(str)), {}, ["array 'y_test'", "integer class label"]),
    (_with(y_train=_set(0, -1)), {}, ["array 'y_train'", "label -1"]),
    (good_arrays(), {"num_classes": 3}, ["array 'y_train'", "label 3", "num_classes = 3"]),
    (_with(y_test=lambda y: y[:-1]), {}, ["array 'y_test'", "15 labels for the 16 samples"]),
    (_with(x_test=lambda x: x[:, :5]), {}, ["array 'x_test'", "shape (5,)"]),
    (_with(y_train=lambda y: np.where(y == 2, 0, y)), {}, ["array 'y_train'", "no sample of class 2"]),
    (good_arrays(), {"n_experiences": 3}, ["n_experiences: must divide the 4 classes", "got 3"]),
    (good_arrays(), {"class_order": [0, 1, 2, 2]}, ["class_order: must be a permutation"]),
])
def test_bad_arrays_name_the_file_and_the_array(capsys, tmp_path, data, params, fragments):
    path = arrays_scenario(tmp_path / "scenario", data, **params)
    code, err = run_cli(capsys, "run", str(path), "--out", str(tmp_path / "out"), *FAST)
    assert_clean_error(code, err, str(path), str(tmp_path / "scenario" / "data.npz"), *fragments)
    assert not (tmp_path / "out").exists()  # checked at load, before anything is written


def test_a_file_that_is_not_an_npz_archive(capsys, tmp_path):
    path = arrays_scenario(tmp_path, None)
    (tmp_path / "data.npz").write_bytes(b"PK\x03\x04 not really a zip")
    code, err = run_cli(capsys, "run", str(path), "--out", str(tmp_path / "out"), *FAST)
    assert_clean_error(code, err, "data.npz: cannot read as an .npz archive")


def test_cnn_needs_image_shaped_inputs(tmp_path):
    np.savez(tmp_path / "data.npz", **good_arrays())
    benchmark = build_benchmark("arrays", "class-il", {"path": str(tmp_path / "data.npz"), "n_experiences": 2})
    shape = tuple(benchmark.train_stream[0].dataset[0][0].shape)
    with pytest.raises(UserError, match=r"model.type: 'cnn' needs images .* shape \(6,\)"):
        build_model(ModelSpec(type="cnn"), shape, 4, multi_head=False)


# --- model output size ---------------------------------------------------------------------

@pytest.mark.parametrize("setting, num_outputs, needed", [("task-il", 1, 2), ("class-il", 9, 10)])
def test_too_few_model_outputs_say_both_numbers(capsys, write_scenario, tmp_path, setting, num_outputs, needed):
    text = scenario_text(setting=setting).replace("hidden_size = 32", f"hidden_size = 32\nnum_outputs = {num_outputs}")
    code, err = run_cli(capsys, "run", str(write_scenario(text=text)), "--out", str(tmp_path / "out"), *FAST)
    assert_clean_error(code, err, f"model.num_outputs: {num_outputs} is fewer than the benchmark's {needed} classes")
    assert files_under(tmp_path / "out") == []


def test_more_outputs_than_classes_widen_the_head():
    model = build_model(ModelSpec(num_outputs=12), (1, 8, 8), 10, multi_head=False)
    assert model.classifier.out_features == 12
    assert build_model(ModelSpec(), (1, 8, 8), 10, multi_head=False).classifier.out_features == 10


def test_hsf_model_checks_the_output_size_too():
    entry = STRATEGIES["hsf"]
    with pytest.raises(UserError, match="model.num_outputs: 1 is fewer than the benchmark's 2 classes"):
        entry.build_model(ModelSpec(num_outputs=1), (1, 8, 8), 2, "task-il",
                          **{k: entry.defaults[k] for k in entry.model_params})


def test_num_outputs_on_a_regression_benchmark(capsys, write_scenario, tmp_path):
    text = scenario_text(benchmark="seed_curves", strategies=("mlp_ae",)).replace(
        "hidden_size = 32", "hidden_size = 32\nnum_outputs = 3")
    code, err = run_cli(capsys, "run", str(write_scenario(text=text)), "--out", str(tmp_path / "out"))
    assert_clean_error(code, err, "model.num_outputs: seed_curves is a regression benchmark")


@pytest.mark.parametrize("key", ["embedding_dim", "hnet_hidden", "chunk_size", "latent_dim", "decoder_hidden"])
def test_hsf_widths_beyond_torchs_size_arithmetic_are_refused_at_load(capsys, write_scenario, tmp_path, key):
    text = scenario_text(strategies=("hsf",)) + f"{key} = {2**63 - 1}\n"
    code, err = run_cli(capsys, "run", str(write_scenario(text=text)), "--out", str(tmp_path / "out"), *FAST)
    assert_clean_error(code, err, f"strategies.hsf.{key}: must be", "<= 2147483647")


def test_model_too_large_to_allocate():
    with pytest.raises(UserError, match="model: cannot allocate a mlp with hidden_size = 1099511627776"):
        build_model(ModelSpec(hidden_size=2**40), (1, 8, 8), 10, multi_head=False)
    with pytest.raises(UserError, match="model: cannot allocate an HSF model .* hnet_hidden = 1099511627776"):
        build_hsf_model(ModelSpec(), (1, 8, 8), 10, "task-il", hnet_hidden=2**40)


# --- unwritable output and a full disk -----------------------------------------------------

def test_output_directory_with_a_nul_byte(capsys, write_scenario, tmp_path):
    code, err = run_cli(capsys, "run", str(write_scenario()), "--out", str(tmp_path / "a\x00b"), *FAST)
    assert_clean_error(code, err, "is not writable: embedded null byte")


def test_output_directory_without_write_permission(capsys, write_scenario, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):  # root ignores chmod, so refuse the way the OS would
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(files.tempfile, "TemporaryFile", refuse)
    code, err = run_cli(capsys, "run", str(write_scenario()), "--out", str(tmp_path / "out"), *FAST)
    assert_clean_error(code, err, "output directory", "is not writable: Permission denied")
    assert files_under(tmp_path / "out") == []


class _HalfWrite:
    """A file that writes half of what it is given, then finds the disk full."""

    def __init__(self, handle):
        self.handle = handle

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()

    def write(self, data):
        self.handle.write(data[: len(data) // 2])
        self.handle.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _raise(exception):
    def fail(*args, **kwargs):
        raise exception
    return fail


# (os function, its replacement given the real one, the exception the caller sees)
@pytest.mark.parametrize("target, replace, expected", [
    ("fsync", lambda real: _raise(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))), UserError),
    ("fdopen", lambda real: lambda fd, mode: _HalfWrite(real(fd, mode)), UserError),
    ("replace", lambda real: _raise(OSError(errno.EXDEV, os.strerror(errno.EXDEV))), UserError),
    ("fsync", lambda real: _raise(KeyboardInterrupt()), KeyboardInterrupt),
], ids=["disk-full-at-fsync", "disk-full-mid-write", "rename-fails", "interrupted"])
def test_failed_write_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch, target, replace, expected):
    old = tmp_path / "results.json"
    old.write_text('{"old": true}\n')
    monkeypatch.setattr(files.os, target, replace(getattr(os, target)))
    with pytest.raises(expected) as raised:
        files.atomic_write_json(old, {"new": list(range(1000))})
    monkeypatch.undo()
    assert json.loads(old.read_text()) == {"old": True}
    assert files_under(tmp_path) == ["results.json"]
    if expected is UserError:
        assert str(old) in str(raised.value) and "\n" not in str(raised.value)


def test_disk_full_while_writing_results_keeps_the_older_results(capsys, write_scenario, tmp_path, monkeypatch):
    out = tmp_path / "out"
    (out / "tiny").mkdir(parents=True)
    (out / "tiny" / "results.json").write_text('{"old": true}\n')
    results_fds = set()
    real_mkstemp, real_fsync = files.tempfile.mkstemp, os.fsync

    def mkstemp(*args, **kwargs):
        fd, name = real_mkstemp(*args, **kwargs)
        if ".results.json." in name:
            results_fds.add(fd)
        return fd, name

    def fsync(fd):
        if fd in results_fds:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(files.tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(files.os, "fsync", fsync)
    code, err = run_cli(capsys, "run", str(write_scenario()), "--out", str(out), *FAST)
    assert_clean_error(code, err, "results.json: No space left on device")
    assert results_fds  # the failure really hit results.json
    assert json.loads((out / "tiny" / "results.json").read_text()) == {"old": True}
    assert temporary_files(out) == []


# --- property tests ------------------------------------------------------------------------

# Keys worth aiming at, per table; any other key is an unknown one.
KEYS = {
    (): ["name", "description", "setting", "seeds", "benchmark", "model", "training", "strategies"],
    ("benchmark",): ["name", "n_experiences", "class_order", "path", "num_classes"],
    ("model",): ["type", "hidden_size", "hidden_layers", "drop_rate", "num_outputs"],
    ("training",): ["epochs", "batch_size", "eval_batch_size", "lr", "optimizer", "momentum"],
    **{("strategies", name): list(entry.defaults) for name, entry in STRATEGIES.items()},
}
WORDS = ["task-il", "class-il", "domain-il", "split_digits", "arrays", "mlp", "cnn", "sgd", "adam", "naive",
         "separate", "online", "flow", "entropy", "ema", "../up", ""]
SMALL = st.one_of(st.integers(-3, 12), st.floats(), st.booleans(), st.sampled_from(WORDS), st.text(max_size=6))
# Huge integers overflow any size (a clean error); the one key where a huge value is valid but
# never finishes (hidden_layers builds one layer after another) gets small ones only.
VALUES = st.one_of(SMALL, st.sampled_from([-2**63, 2**63 - 1, 2**64, 10**400]),
                   st.lists(st.integers(-1, 10), max_size=10), st.dictionaries(st.text(max_size=4), SMALL, max_size=2))
ENDLESS_WHEN_HUGE = {"hidden_layers"}
# Values that pass, so that edited files still make valid (tiny) runs: every strategy's defaults too.
PLAUSIBLE = {
    "name": ["other"], "description": ["text"], "setting": ["class-il", "domain-il"], "seeds": [[1, 2]],
    "n_experiences": [1, 5], "class_order": [list(range(9, -1, -1))], "type": ["cnn"], "hidden_size": [4],
    "hidden_layers": [2], "drop_rate": [0.5], "num_outputs": [10, 12], "epochs": [3], "batch_size": [128],
    "eval_batch_size": [1000], "lr": [0.001], "optimizer": ["adam"], "momentum": [0.5],
    **{key: [value] for entry in STRATEGIES.values() for key, value in entry.defaults.items()},
}


def often(draw) -> bool:
    """True three times in four (st.integers leans to its ends)."""
    return draw(st.sampled_from([True, True, True, False]))


@st.composite
def scenario_files(draw):
    """Text of a scenario: the tiny valid one after up to three edits, sometimes garbled."""
    doc = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.sampled_from(sorted(KEYS)))
        table = table_at(doc, where)
        key = draw(st.sampled_from(KEYS[where] + ["bogus"]) if often(draw) else st.text(max_size=6))
        if draw(st.booleans()) and key in table:
            del table[key]
        elif key in PLAUSIBLE and often(draw):
            table[key] = draw(st.sampled_from(PLAUSIBLE[key]))
        else:
            table[key] = draw(SMALL if key in ENDLESS_WHEN_HUGE else VALUES)
    text = toml_document(doc) + "\n"
    if draw(st.integers(0, 5)) == 0:  # malformed TOML (or, by chance, still valid)
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(["[", "]", "=", '"', "\n[", "= =", "\x00", "{"])) + text[at:]
    return text


def _check_outcome(code, err, out: Path):
    event(f"exit code {code}")  # shown by --hypothesis-show-statistics
    assert "Traceback" not in err and "internal error" not in err, err
    if code == 0:
        return
    assert_clean_error(code, err)
    assert temporary_files(out) == []
    results = out / "tiny" / "results.json"
    assert not results.exists() or json.loads(results.read_text())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=scenario_files())
def test_any_scenario_file_runs_or_fails_cleanly(capsys, text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scenario.toml"
        path.write_text(text, encoding="utf-8")
        code, err = run_cli(capsys, "run", str(path), "--out", str(Path(folder) / "out"), *FAST)
        _check_outcome(code, err, Path(folder) / "out")


# option -> (values that pass, values that do not).
OPTIONS = {
    "--strategies": (["naive"], ["bogus", "naive,bogus", ",", "icarl", "packnet", ""]),
    "--epochs": (["1"], ["0", "-1", "x", "1.5"]),
    "--seeds": (["0", "1", "0,,", "4294967295"], ["-1", "a,b", "", "4294967296"]),
    "--device": (["cpu"], ["cuda", "tpu"]),
    "--threads": (["1"], ["0", "-2", "x", "99999999999"]),  # 2 threads make a tiny run 5x slower on a busy 2-core machine
    "--out": (["OUT", ""], ["BLOCKED/out"]),
    "--checkpoint-dir": (["OUT/ckpt"], ["BLOCKED/ckpt"]),
    "--dataset-root": (["OUT", "nowhere"], ["OUT"]),
}
FLAGS = (["--quiet", "--verbose", "--deterministic"], ["--bogus", "-x"])
TOKENS = st.text(max_size=5)


def good_or_bad(draw, choices):
    good, bad = choices
    return draw(st.sampled_from(good if often(draw) or not bad else bad))


@st.composite
def argument_lists(draw):
    command = draw(st.sampled_from(["run"] * 4 + ["list", "walk", ""]))
    args = [command] if command else []
    if command == "run" and often(draw):
        args.append(good_or_bad(draw, (["SCENARIO"], ["no_such_scenario", "BLOCKED", ""])))
    for _ in range(draw(st.integers(0, 4))):
        if often(draw):
            option = draw(st.sampled_from(sorted(OPTIONS)))
            args += [option] + ([good_or_bad(draw, OPTIONS[option])] if often(draw) else [])
        else:
            args.append(good_or_bad(draw, FLAGS) if often(draw) else draw(TOKENS))
    if command != "run":
        return args
    # Keep the runs that are valid tiny: one epoch, one seed, naive only, unless drawn otherwise.
    for option, value in (("--strategies", "naive"), ("--epochs", "1"), ("--seeds", "0")):
        if option not in args:
            args += [option, value]
    return args + ["--quiet"]  # progress bars would add lines to stderr


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=argument_lists())
def test_any_argument_list_runs_or_fails_cleanly(capsys, args):
    threads, cwd = torch.get_num_threads(), os.getcwd()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        scenario = folder / "tiny.toml"
        scenario.write_text(toml_document(BASE))
        (folder / "BLOCKED").write_text("a file, not a folder")
        names = {"SCENARIO": str(scenario), "OUT": str(folder / "out"), "BLOCKED": str(folder / "BLOCKED")}
        args = [next((a.replace(k, v) for k, v in names.items() if a.startswith(k)), a) for a in args]
        os.chdir(folder)  # `--out ""` writes to the working directory: keep it in the sandbox
        try:
            code, err = run_cli(capsys, *args)
        finally:
            os.chdir(cwd)
            torch.set_num_threads(threads)
            torch.use_deterministic_algorithms(False)
        _check_outcome(code, err, folder)


@pytest.mark.parametrize("args", [
    ["list", "a\nb"],  # argparse's message holds the argument, line break and all
    ["run", "SCENARIO", "--seeds", "4294967296"],  # beyond numpy's seeding
    ["run", "SCENARIO", "--threads", "99999999999"],  # beyond torch.set_num_threads' C int
], ids=["line-break-in-argument", "seed-too-large", "too-many-threads"])
def test_cli_arguments_at_the_edges(capsys, write_scenario, tmp_path, args):
    args = [str(write_scenario()) if a == "SCENARIO" else a for a in args]
    if args[0] == "run":
        args += ["--strategies", "naive", "--epochs", "1", "--quiet", "--out", str(tmp_path / "out")]
    code, err = run_cli(capsys, *args)
    assert_clean_error(code, err)
