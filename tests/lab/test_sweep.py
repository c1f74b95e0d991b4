"""A sweep as units of work: the same matrices in one process and in two, records that merge
into results.json whoever wrote them, and finished units skipped on a rerun."""

import json

import pytest

from avalanche_hsf.lab import sweep
from avalanche_hsf.lab.scenario import load_scenario
from tests.helpers import run_cli, scenario_text


@pytest.fixture
def tiny(write_scenario):
    return write_scenario(scenario_text(strategies=("naive", "ewc"), seeds="[0, 1]"))


def matrices(folder) -> dict:
    results = json.loads((folder / "tiny" / "results.json").read_text())
    return {name: [run["acc_matrix"] for run in r["per_seed"]] for name, r in results["strategies"].items()}


def test_two_workers_give_the_matrices_of_one_process(tiny, tmp_path, capsys):
    for workers in ("1", "2"):
        code, err = run_cli(capsys, "run", str(tiny), "--workers", workers, "--quiet", "--out", str(tmp_path / workers))
        assert code == 0, err
    assert matrices(tmp_path / "1") == matrices(tmp_path / "2")  # bit for bit
    record = json.loads((tmp_path / "2" / "tiny" / "ewc" / "seed1" / "record.json").read_text())
    assert record["config"]["strategy"] == "ewc" and record["result"]["seed"] == 1
    assert (tmp_path / "2" / "tiny" / "ewc" / "seed1" / "log.txt").is_file()


def test_runs_into_one_folder_merge_and_a_rerun_skips_finished_units(tiny, tmp_path, capsys, monkeypatch):
    for strategy in ("naive", "ewc"):  # two commands, one output folder: neither erases the other
        assert run_cli(capsys, "run", str(tiny), "--strategies", strategy, "--quiet", "--out", str(tmp_path))[0] == 0
    assert list(json.loads((tmp_path / "tiny" / "results.json").read_text())["strategies"]) == ["ewc"]
    code, _ = run_cli(capsys, "report", str(tmp_path / "tiny"))
    assert code == 0 and set(matrices(tmp_path)) == {"naive", "ewc"}
    first = matrices(tmp_path)
    assert run_cli(capsys, "report", str(tmp_path / "tiny"))[0] == 0 and matrices(tmp_path) == first  # idempotent

    def never(unit, progress=False):
        raise AssertionError(f"{unit.strategy} seed {unit.seed} ran again")
    monkeypatch.setattr(sweep, "run_unit", never)
    results = sweep.run_scenario(load_scenario(str(tiny)), tmp_path, progress=False)
    assert {name: [run["acc_matrix"] for run in r["per_seed"]] for name, r in results["strategies"].items()} == first


def test_a_record_of_other_settings_is_run_again(tiny, tmp_path, capsys):
    assert run_cli(capsys, "run", str(tiny), "--strategies", "naive", "--quiet", "--out", str(tmp_path))[0] == 0
    record = tmp_path / "tiny" / "naive" / "seed0" / "record.json"
    before = record.stat().st_mtime_ns
    assert run_cli(capsys, "run", str(tiny), "--strategies", "naive", "--epochs", "2", "--quiet",
                   "--out", str(tmp_path))[0] == 0
    assert record.stat().st_mtime_ns != before
    assert json.loads(record.read_text())["config"]["training"]["epochs"] == 2
