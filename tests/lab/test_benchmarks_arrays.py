"""The arrays benchmark (the user's own .npz): runs, paths, splits and one-line errors for bad files."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from avalanche_hsf.lab.benchmarks import build_benchmark
from avalanche_hsf.lab.scenario import load_scenario
from tests.helpers import FAST, assert_clean_error, run_cli, scenario_text, toml_value

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


def test_arrays_with_a_single_training_sample_of_a_class_cannot_be_stratified(capsys, tmp_path):
    data = good_arrays()
    keep = np.r_[np.flatnonzero(data["y_train"] != 3), np.flatnonzero(data["y_train"] == 3)[:1]]
    data = {**data, "x_train": data["x_train"][keep], "y_train": data["y_train"][keep]}
    path = arrays_scenario(tmp_path, data)
    code, err = run_cli(capsys, "run", str(path), "--out", str(tmp_path / "out"), *FAST)
    assert_clean_error(code, err, "cannot set aside a validation split of every class")


# --- regression arrays ---------------------------------------------------------------------

def regression_arrays(n_experiences=3, train_per_exp=10, test_per_exp=4, seed=0):
    """The same inputs in every experience, with targets that differ between experiences."""
    rng = np.random.default_rng(seed)

    def split(per_exp):
        exp = np.repeat(np.arange(n_experiences), per_exp)
        x = np.tile(np.linspace(-1, 1, per_exp), n_experiences)[:, None]
        return x, np.stack([np.sin(3 * x[:, 0] + exp), (exp - 1.0) * x[:, 0]], 1), exp

    (x_train, y_train, exp_train), (x_test, y_test, exp_test) = split(train_per_exp), split(test_per_exp)
    return {"x_train": x_train + rng.normal(scale=1e-3, size=x_train.shape), "y_train": y_train,
            "x_test": x_test, "y_test": y_test, "exp_train": exp_train, "exp_test": exp_test}


REGRESSION = {"task": "regression", "n_experiences": 3}


def test_a_regression_npz_round_trips(tmp_path):
    data = regression_arrays()
    np.savez(tmp_path / "data.npz", **data)
    benchmark = build_benchmark("arrays", "task-il", {"path": str(tmp_path / "data.npz"), **REGRESSION})
    assert [e.task_labels for e in benchmark.train_stream] == [[0], [1], [2]]
    for k, (train, valid, test) in enumerate(zip(benchmark.train_stream, benchmark.valid_stream,
                                                 benchmark.test_stream)):
        # Every training sample of experience k is in its train or its validation part, once.
        seen = [(x.item(), *y.tolist()) for part in (train, valid) for x, y, _ in part.dataset]
        wanted = [(x[0], *y) for x, y in zip(data["x_train"][data["exp_train"] == k].astype(np.float32),
                                             data["y_train"][data["exp_train"] == k].astype(np.float32))]
        assert sorted(seen) == sorted(wanted)
        assert len(valid.dataset) == 1  # a tenth of 10, of every experience
        x, y, t = next(iter(torch.utils.data.DataLoader(test.dataset, batch_size=100)))
        assert torch.equal(y, torch.as_tensor(data["y_test"][data["exp_test"] == k], dtype=torch.float32))
        assert set(t.tolist()) == {k}


def test_regression_arrays_run_as_an_mse_matrix(capsys, tmp_path):
    path = arrays_scenario(tmp_path, regression_arrays(), **REGRESSION)
    path.write_text(path.read_text().replace("[strategies.naive]", "[strategies.mlp_heads]"))
    code, err = run_cli(capsys, "run", str(path), "--out", str(tmp_path / "out"), "--strategies", "mlp_heads",
                        "--epochs", "1", "--seeds", "0", "--quiet")
    assert code == 0, err
    results = json.loads((tmp_path / "out" / "tiny" / "results.json").read_text())
    assert results["task"] == "regression"
    assert np.array(results["strategies"]["mlp_heads"]["mse_matrix"]).shape == (3, 3)


def _regression_with(**changes):
    data = regression_arrays()
    for name, change in changes.items():
        data[name] = change(data[name])
    return {k: v for k, v in data.items() if v is not None}


@pytest.mark.parametrize("data, params, fragments", [
    (_regression_with(exp_test=lambda e: None), {}, ["missing array 'exp_test'"]),
    (_regression_with(exp_train=lambda e: e[:-1]), {}, ["array 'exp_train'", "29 experience indices for the 30"]),
    (_regression_with(y_test=lambda y: y[:-2]), {}, ["array 'y_test'", "10 targets for the 12 samples"]),
    (_regression_with(y_train=_set(5, np.nan)), {}, ["array 'y_train'", "NaN or inf targets", "(first in sample 2)"]),
    (_regression_with(y_train=lambda y: y[:, 0]), {}, ["array 'y_train'", "shape (samples, outputs)"]),
    (_regression_with(y_test=lambda y: y[:, :1]), {}, ["array 'y_test'", "1 outputs per sample, y_train 2"]),
    (_regression_with(exp_train=lambda e: e.astype(float)), {}, ["array 'exp_train'", "integer experience index"]),
    (_regression_with(exp_test=lambda e: np.where(e == 1, 2, e)), {},
     ["array 'exp_test'", "no sample of experience 1"]),
    (regression_arrays(), {"n_experiences": 4}, ["numbers 3 experiences", "set n_experiences = 3"]),
    (regression_arrays(), {"num_classes": 3}, ["num_classes and class_order: a regression file has no classes"]),
])
def test_bad_regression_arrays_name_the_file_and_the_array(capsys, tmp_path, data, params, fragments):
    path = arrays_scenario(tmp_path / "scenario", data, **{**REGRESSION, **params})
    code, err = run_cli(capsys, "run", str(path), "--out", str(tmp_path / "out"), *FAST)
    assert_clean_error(code, err, str(path), *fragments)
    assert not (tmp_path / "out").exists()


def test_regression_arrays_are_task_incremental(capsys, tmp_path):
    path = arrays_scenario(tmp_path, regression_arrays(), **REGRESSION)
    path.write_text(path.read_text().replace('setting = "task-il"', 'setting = "class-il"'))
    code, err = run_cli(capsys, "run", str(path), "--out", str(tmp_path / "out"), *FAST)
    assert_clean_error(code, err, "task: a regression file's experiences are task-labelled", "got class-il")


def test_a_classifier_strategy_on_regression_arrays_is_refused(capsys, tmp_path):
    path = arrays_scenario(tmp_path, regression_arrays(), **REGRESSION)
    code, err = run_cli(capsys, "run", str(path), "--out", str(tmp_path / "out"), *FAST)
    assert_clean_error(code, err, "strategy naive: it trains a classifier", "mlp_heads")
