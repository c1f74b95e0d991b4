"""Every bad input gets a one-line error and a non-zero exit, never a traceback or a partial file."""

import subprocess
import sys

import pytest

from avalanche_hsf.lab.cli import main
from tests.helpers import assert_clean_error, run_cli, scenario_text


def test_unknown_scenario(capsys, tmp_path):
    code, err = run_cli(capsys, "run", "no_such_scenario", "--out", str(tmp_path))
    assert_clean_error(code, err, "unknown scenario 'no_such_scenario'")


def test_unknown_strategy_in_file(capsys, write_scenario, tmp_path):
    path = write_scenario(strategies=("naive", "bogus"))
    code, err = run_cli(capsys, "run", str(path), "--out", str(tmp_path))
    assert_clean_error(code, err, str(path), "strategies.bogus", "unknown strategy 'bogus'")


def test_unknown_strategy_on_command_line(capsys, write_scenario, tmp_path):
    code, err = run_cli(capsys, "run", str(write_scenario()), "--strategies", "naive,bogus", "--out", str(tmp_path))
    assert_clean_error(code, err, "unknown strategy 'bogus'")
    assert not (tmp_path / "tiny" / "results.json").exists()


def test_malformed_toml_names_the_file(capsys, write_scenario, tmp_path):
    path = write_scenario(text='setting = "task-il"\n[benchmark\nname = 1\n')
    code, err = run_cli(capsys, "run", str(path), "--out", str(tmp_path))
    assert_clean_error(code, err, str(path), "malformed TOML")


@pytest.mark.parametrize("old, new, fragment", [
    ("epochs = 1", 'epochs = "three"', "training.epochs: expected int"),
    ("epochs = 1", "epochs = 0", "training.epochs: must be >= 1"),
    ("lr = 0.05", "lr = -1.0", "training.lr: must be > 0"),
    ("hidden_size = 32", "hidden_sise = 32", "model: unknown key 'hidden_sise'"),
    ('setting = "task-il"', 'setting = "online"', "setting: must be one of"),
    ('name = "split_digits"', 'name = "imagenet"', "unknown benchmark 'imagenet'"),
])
def test_bad_values_name_the_key(capsys, write_scenario, tmp_path, old, new, fragment):
    text = scenario_text()
    assert old in text
    code, err = run_cli(capsys, "run", str(write_scenario(text=text.replace(old, new))), "--out", str(tmp_path))
    assert_clean_error(code, err, fragment)


def test_unknown_hyperparameter(capsys, write_scenario, tmp_path):
    path = write_scenario(strategies=(), strategy_tables="[strategies.ewc]\newc_lambada = 3.0\n")
    code, err = run_cli(capsys, "run", str(path), "--out", str(tmp_path))
    assert_clean_error(code, err, "strategies.ewc: unknown key 'ewc_lambada'", "ewc_lambda")


@pytest.mark.parametrize("setting, strategy", [("task-il", "icarl"), ("class-il", "packnet")])
def test_strategy_that_does_not_fit_the_setting(capsys, write_scenario, tmp_path, setting, strategy):
    path = write_scenario(setting=setting, strategies=("naive", strategy))
    code, err = run_cli(capsys, "run", str(path), "--out", str(tmp_path))
    assert_clean_error(code, err, f"strategy '{strategy}' does not fit setting '{setting}'")


def test_bad_cli_arguments(capsys, write_scenario):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(write_scenario()), "--seeds", "a,b"])
    assert exit_info.value.code == 2
    assert_clean_error(2, capsys.readouterr().err.strip(), "--seeds")


def test_unwritable_output_directory(capsys, write_scenario, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    code, err = run_cli(capsys, "run", str(write_scenario()), "--out", str(blocker / "runs"))
    assert_clean_error(code, err, "not writable")


def test_missing_full_dataset_is_a_clear_error_without_download(tmp_path):
    """A real subprocess: the user sees one line naming the path and the embedded alternative."""
    empty_root = tmp_path / "no_data_here"
    empty_root.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "avalanche_hsf.lab.cli", "run", "split_mnist", "--dataset-root", str(empty_root),
         "--out", str(tmp_path / "runs"), "--quiet"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2
    assert_clean_error(proc.returncode, proc.stderr.strip(), str(empty_root), "split_mnist5k_til")
    assert list(empty_root.iterdir()) == []  # nothing was downloaded
    assert not (tmp_path / "runs" / "split_mnist" / "results.json").exists()


def test_packnet_needs_more_epochs_than_its_post_pruning_phase(capsys, write_scenario, tmp_path):
    path = write_scenario(strategies=("packnet",), epochs=3)
    code, err = run_cli(capsys, "run", str(path), "--epochs", "1", "--out", str(tmp_path))
    assert_clean_error(code, err, "post_prune_epochs (1) must be smaller than the epochs per experience (1)")
