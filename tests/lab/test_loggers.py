"""A tiny real class-incremental run through the CLI with all three loggers: each writes its files
in the run's folder, and the continual-learning metrics they log live end at the values that
results.json computes from the accuracy matrix, wherever the definitions match."""

import csv
import json

import pytest
from tbparse import SummaryReader

from avalanche_hsf.lab.cli import main
from avalanche_hsf.lab.loggers import CSV_FOLDER
from tests.helpers import assert_clean_error, run_cli, scenario_text, wandb_offline_history

STREAM = "eval_phase/test_stream"
TOLERANCE = 1e-6  # W&B and TensorBoard keep float32 or the JSON of a float64; the matrix is float64


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory):
    """Class-IL, so that FWT is defined (in task-IL it is zero by construction and reported as null)."""
    folder = tmp_path_factory.mktemp("loggers")
    path = folder / "tiny.toml"
    path.write_text(scenario_text(setting="class-il"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "offline")  # belt and braces: the runs are offline by their own setting
        patch.setenv("WANDB_DIR", str(folder))
        assert main(["run", str(path), "--out", str(folder / "runs"), "--workers", "1", "--quiet",
                     "--loggers", "tensorboard,csv,wandb"]) == 0
    results = json.loads((folder / "runs" / "tiny" / "results.json").read_text())
    return folder / "runs" / "tiny" / "naive" / "seed0", results["strategies"]["naive"]


def test_csv_follows_avalanches_layout_and_ends_at_the_matrix(logged_run):
    run, result = logged_run
    with open(run / CSV_FOLDER / "eval_results.csv") as file:
        rows = list(csv.DictReader(file))
    with open(run / CSV_FOLDER / "training_results.csv") as file:
        training = list(csv.DictReader(file))
    matrix = result["acc_matrix"]
    last = len(matrix) - 1
    assert [row["training_exp"] for row in training] == [str(i) for i in range(len(matrix))]  # 1 epoch each
    final = [row for row in rows if row["training_exp"] == str(last)]
    assert [int(row["eval_exp"]) for row in final] == list(range(len(matrix)))
    for j, row in enumerate(final):
        assert float(row["eval_accuracy"]) == pytest.approx(matrix[last][j], abs=5e-5)  # written with 4 decimals
        if j < last:  # Avalanche's forgetting: accuracy just after training j, minus the final one
            assert float(row["forgetting"]) == pytest.approx(matrix[j][j] - matrix[last][j], abs=1e-4)


def test_wandb_offline_run_ends_at_acc_bwt_and_fwt(logged_run):
    run, result = logged_run
    history = wandb_offline_history(run)
    last = {}
    for row in history:
        last.update(row)
    # ACC is the mean over experiences; Avalanche's Top1_Acc_Stream weighs them by their size instead.
    final = [last[f"Top1_Acc_Exp/{STREAM}/Task000/Exp{j:03d}"] for j in range(len(result["acc_matrix"]))]
    assert sum(final) / len(final) == pytest.approx(result["acc"], abs=TOLERANCE)
    assert last[f"StreamBWT/{STREAM}"] == pytest.approx(result["bwt"], abs=TOLERANCE)
    assert last[f"StreamForgetting/{STREAM}"] == pytest.approx(-result["bwt"], abs=TOLERANCE)
    assert result["fwt"] is not None
    assert last[f"StreamForwardTransfer/{STREAM}"] == pytest.approx(result["fwt"], abs=TOLERANCE)
    # Live: BWT is logged after every experience, not only at the end.
    assert sum(f"StreamBWT/{STREAM}" in row for row in history) == len(result["acc_matrix"]) + 1


def test_tensorboard_shows_the_same_live_metrics(logged_run):
    run, result = logged_run
    scalars = SummaryReader(str(run)).scalars
    last = scalars.sort_values("step").groupby("tag")["value"].last()
    assert last[f"StreamBWT/{STREAM}"] == pytest.approx(result["bwt"], abs=TOLERANCE)
    assert last[f"StreamForwardTransfer/{STREAM}"] == pytest.approx(result["fwt"], abs=TOLERANCE)
    assert f"ExperienceForgetting/{STREAM}/Task000/Exp000" in last


def test_an_unknown_logger_is_one_line_and_exit_2(capsys, tmp_path):
    code, err = run_cli(capsys, "run", "split_digits_til", "--loggers", "tensorboard,mlflow", "--out", str(tmp_path))
    assert code == 2
    assert_clean_error(code, err, "--loggers", "mlflow")


def test_a_bad_logging_table_names_the_file_and_key(capsys, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(scenario_text() + '\n[logging]\nwandb_mode = "sometimes"\n')
    code, err = run_cli(capsys, "run", str(path), "--out", str(tmp_path))
    assert code == 2
    assert_clean_error(code, err, "logging.wandb_mode", "offline")
