"""A tiny real run of split_digits_til through the CLI, checked against the results.json contract."""

import json
from dataclasses import replace

import pytest
from tbparse import SummaryReader

from avalanche_hsf.lab.cli import main
from avalanche_hsf.lab.scenario import load_scenario
from avalanche_hsf.lab.sweep import run_scenario

STRATEGIES = ("naive", "ewc", "lwf")
SCALARS = ("acc", "acc_std", "bwt", "bwt_std", "train_seconds", "peak_rss_mb")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    # The scenario's own 10 epochs: its tuned EWC lambda diverges after shorter training.
    assert main(["run", "split_digits_til", "--strategies", ",".join(STRATEGIES),
                 "--seeds", "0,1", "--out", str(out), "--quiet"]) == 0
    return out / "split_digits_til"


def test_results_json_follows_the_contract(tiny_run):
    results = json.loads((tiny_run / "results.json").read_text())
    assert results["scenario"] == "split_digits_til"
    assert results["setting"] == "task-il"
    assert results["seeds"] == [0, 1]
    assert list(results["strategies"]) == list(STRATEGIES)
    for name, r in results["strategies"].items():
        matrix = r["acc_matrix"]
        assert len(matrix) == 5 and all(len(row) == 5 for row in matrix)
        assert all(0.0 <= v <= 1.0 for row in matrix for v in row)
        for key in SCALARS:
            assert isinstance(r[key], float), (name, key)
        assert len(r["forgetting"]) == 4
        assert isinstance(r["extra_state_bytes_per_task"], int)
        assert isinstance(r["hparams"], dict)
        assert r["acc"] == pytest.approx(sum(matrix[-1]) / 5)
        assert r["n_seeds"] == 2 and len(r["acc_ci95"]) == 2 and r["acc_ci95"][0] <= r["acc"] <= r["acc_ci95"][1]
        assert isinstance(r["trained_parameters"], int) and r["trained_parameters"] > 0
        # Avalanche's per-task heads are untrained before their task: FWT is zero by construction,
        # every seed scores each task before training it exactly as the untrained model did.
        assert r["fwt"] is None
        for run in r["per_seed"]:
            assert all(run["acc_matrix"][j - 1][j] == run["initial_acc"][j] for j in range(1, 5))
    assert results["split"] == "test" and set(results["provenance"]) >= {"versions", "git_commit", "command",
                                                                         "date", "cpu", "gpu"}
    # EWC keeps importances and parameter copies; naive keeps nothing.
    assert results["strategies"]["naive"]["extra_state_bytes_per_task"] == 0
    assert results["strategies"]["ewc"]["extra_state_bytes_per_task"] > 0
    expected_lambda = load_scenario("split_digits_til").strategies["ewc"]["ewc_lambda"]
    assert results["strategies"]["ewc"]["hparams"]["ewc_lambda"] == expected_lambda


def test_tensorboard_logs_have_the_expected_scalars(tiny_run):
    for name in STRATEGIES:
        for seed in (0, 1):
            run_dir = tiny_run / name / f"seed{seed}"
            assert list(run_dir.glob("events.out.tfevents.*"))
            scalars = SummaryReader(str(run_dir)).scalars
            tags = set(scalars["tag"])
            assert any(t.startswith("Top1_Acc_Stream/eval_phase/test_stream/") for t in tags)
            assert "Top1_Acc_Exp/eval_phase/test_stream/Task004/Exp004" in tags
            assert "Loss_Epoch/train_phase/train_stream/Task000" in tags
            assert "hparam/acc" in tags


def test_plots_are_written(tiny_run):
    for name in STRATEGIES:
        assert (tiny_run / f"acc_matrix_{name}.png").stat().st_size > 1000
    assert (tiny_run / "comparison.png").stat().st_size > 1000


def test_naive_forgets_while_cumulative_does_not(tmp_path):
    """Learning-level check on the demo scenario's data and [training] table (10 epochs, SGD lr 0.05),
    pinned here rather than following the strategies' tuned values."""
    scenario = replace(load_scenario("split_digits_til"), strategies={"naive": {}, "cumulative": {}})
    results = run_scenario(scenario, tmp_path, strategies=["naive", "cumulative"], seeds=[0], progress=False)
    naive, cumulative = results["strategies"]["naive"], results["strategies"]["cumulative"]
    assert naive["bwt"] < -0.03
    assert cumulative["bwt"] > -0.015
    assert cumulative["acc"] > naive["acc"] + 0.02
