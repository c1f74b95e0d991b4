"""Scenario models: image-shaped inputs for the CNN, output sizes, widths and allocation errors."""


import pytest
from avalanche.training.templates import SupervisedTemplate

from avalanche_hsf.errors import UserError
from avalanche_hsf.lab.models import build_hsf, build_model
from avalanche_hsf.lab.spec import ModelSpec
from avalanche_hsf.lab.strategies import STRATEGIES
from tests.helpers import FAST, assert_clean_error, files_under, run_cli, scenario_text


def test_cnn_needs_image_shaped_inputs():
    shape = (6,)  # the arrays benchmark's flat features
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


def test_hsf_without_room_for_the_scenarios_tasks_stops_before_training(capsys, write_scenario, tmp_path,
                                                                          monkeypatch):
    def train(*args, **kwargs):
        raise AssertionError("trained")
    monkeypatch.setattr(SupervisedTemplate, "train", train)
    # The target's 5,522 weights in 22 chunks and a last layer of 17 inputs: room for 1 of the 5 tasks.
    text = scenario_text(strategies=("hsf",)) + "chunk_size = 256\nhnet_hidden = 16\n"
    code, err = run_cli(capsys, "run", str(write_scenario(text=text)), "--out", str(tmp_path / "out"),
                        "--strategies", "hsf", *FAST[2:], "--workers", "1")
    assert_clean_error(code, err, "hsf: null_space has room for 1 of the scenario's 5 experiences",
                       "stop at experience 1", "(chunk_size)")


def test_model_too_large_to_allocate():
    with pytest.raises(UserError, match="model: cannot allocate a mlp with hidden_size = 1099511627776"):
        build_model(ModelSpec(hidden_size=2**40), (1, 8, 8), 10, multi_head=False)
    with pytest.raises(UserError, match="model: cannot allocate an HSF model .* hnet_hidden = 1099511627776"):
        build_hsf(ModelSpec(), (1, 8, 8), 10, "task-il", hnet_hidden=2**40)
