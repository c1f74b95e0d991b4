"""`avalanche-hsf tune`: chosen on the validation stream only, the same budget for every strategy,
failed trials recorded, the best the argmax of what was recorded, an interrupted search resumed,
and a tuned scenario file that `run` takes as it is."""

import json

import pytest

from avalanche_hsf.errors import DivergedError, NoRoomError, UserError
from avalanche_hsf.lab import tune
from avalanche_hsf.lab.executors import LocalProcesses
from avalanche_hsf.lab.runner import scenario_benchmark
from avalanche_hsf.lab.scenario import load_scenario
from tests.helpers import scenario_text


class NoTestStream:
    """A benchmark whose test stream cannot be touched."""

    def __init__(self, benchmark):
        self._benchmark = benchmark

    def __getattr__(self, name):
        if name == "test_stream":
            raise AssertionError("tuning evaluated the test stream")
        return getattr(self._benchmark, name)


@pytest.fixture
def guarded(monkeypatch):
    monkeypatch.setattr(tune, "scenario_benchmark", lambda *args: NoTestStream(scenario_benchmark(*args)))


@pytest.fixture
def tiny(write_scenario):
    return load_scenario(str(write_scenario(scenario_text(strategies=("naive", "ewc"), seeds="[0, 1, 2]"))))


def test_tuning_never_touches_the_test_stream_and_records_every_trial(guarded, tiny, tmp_path):
    records = tune.tune_scenario(tiny, tmp_path, trials=3, seeds=[7], progress=False)
    for name in ("naive", "ewc"):
        saved = json.loads((tmp_path / "tiny" / "tuning" / f"{name}.json").read_text())
        assert saved == json.loads(json.dumps(records[name]))
        assert saved["split"] == "valid" and saved["seeds"] == [7] and len(saved["trials"]) == 3
        for trial in saved["trials"]:
            assert {"optimizer", "lr"} <= set(trial["params"])  # every strategy searches the optimizer
            if trial["status"] == "complete":
                assert len(trial["scores"]) == 1 and trial["score"] == pytest.approx(trial["scores"][0])
            else:  # a diverged trial stays on record, with its error
                assert trial["status"] == "failed" and trial["score"] is None and trial["error"]
        best = max((t for t in saved["trials"] if t["status"] == "complete"), key=lambda t: t["score"])
        assert saved["best"] == {"params": best["params"], "score": best["score"], "number": best["number"]}
    assert "ewc_lambda" in records["ewc"]["trials"][0]["params"]


def test_a_diverged_trial_is_recorded_as_failed_and_never_best(guarded, tiny, tmp_path, monkeypatch):
    score = tune.validation_score

    def diverging_first(run):
        if not diverging_first.calls:
            diverging_first.calls.append(run.scenario.strategies[run.strategy])
            raise DivergedError("the loss is nan")
        return score(run)
    diverging_first.calls = []
    monkeypatch.setattr(tune, "validation_score", diverging_first)
    record = tune.tune_scenario(tiny, tmp_path, strategies=["naive"], trials=2, seeds=[7], progress=False)["naive"]
    assert [t["status"] for t in record["trials"]] == ["failed", "complete"]
    assert record["trials"][0]["error"] == "the loss is nan"
    assert record["trials"][0]["params"].items() <= diverging_first.calls[0].items()
    assert record["best"]["number"] == record["trials"][1]["number"] and record["rejected"] == []


NO_ROOM = NoRoomError("hsf: null_space has room for 2 of the scenario's 5 experiences")


def test_values_without_room_are_rejected_and_another_trial_is_drawn(guarded, tiny, tmp_path, monkeypatch):
    score = tune.validation_score

    def no_room_first(run):
        if not no_room_first.calls:
            no_room_first.calls.append(run.scenario.strategies[run.strategy])
            raise NO_ROOM
        return score(run)
    no_room_first.calls = []
    monkeypatch.setattr(tune, "validation_score", no_room_first)
    record = tune.tune_scenario(tiny, tmp_path, strategies=["naive"], trials=2, seeds=[7], progress=False)["naive"]
    # The budget is two trained trials, whatever was rejected before them.
    assert [t["status"] for t in record["trials"]] == ["complete", "complete"]
    assert [t["number"] for t in record["trials"]] == [1, 2]
    [rejected] = record["rejected"]
    assert rejected["number"] == 0 and rejected["reason"] == str(NO_ROOM)
    assert rejected["params"].items() <= no_room_first.calls[0].items()


def test_a_space_with_no_room_anywhere_stops_with_a_clear_error(guarded, tiny, tmp_path, monkeypatch):
    def no_room(run):
        raise NO_ROOM
    monkeypatch.setattr(tune, "validation_score", no_room)
    with pytest.raises(UserError, match="tune naive: 11 proposals had no room for the scenario's tasks, for "
                                        "example: hsf: null_space has room for 2"):
        tune.tune_scenario(tiny, tmp_path, strategies=["naive"], trials=1, seeds=[7], progress=False)


def test_a_best_trial_that_diverges_in_the_quick_check_gives_way_to_the_next(guarded, tiny, tmp_path,
                                                                              monkeypatch):
    score = tune.validation_score
    checked = []

    def best_diverges_briefly(run):
        if run.scenario.training.epochs == tune.QUICK_CHECK_EPOCHS:
            checked.append(run.scenario.strategies[run.strategy]["lr"])
            if len(checked) == 1:
                raise DivergedError("the loss is nan")
        return score(run)
    monkeypatch.setattr(tune, "validation_score", best_diverges_briefly)
    record = tune.tune_scenario(tiny, tmp_path, strategies=["naive"], trials=3, seeds=[7], progress=False)["naive"]
    ranked = sorted(record["trials"], key=lambda t: t["score"], reverse=True)
    assert [t.get("quick_check") for t in ranked] == ["diverged: the loss is nan", "ok", None]
    assert checked == [ranked[0]["params"]["lr"], ranked[1]["params"]["lr"]]
    assert record["best"]["number"] == ranked[1]["number"] and record["best"]["score"] == ranked[1]["score"]


def test_an_interrupted_search_resumes_and_keeps_its_trials(guarded, tiny, tmp_path):
    first = tune.tune_scenario(tiny, tmp_path, strategies=["naive"], trials=1, seeds=[7], progress=False)["naive"]
    again = tune.tune_scenario(tiny, tmp_path, strategies=["naive"], trials=2, seeds=[7], progress=False)["naive"]
    assert again["trials"][0] == first["trials"][0] and len(again["trials"]) == 2
    assert again["trials"][1]["params"] != first["trials"][0]["params"]


def test_the_tuned_scenario_runs_with_the_best_values(guarded, tiny, tmp_path):
    records = tune.tune_scenario(tiny, tmp_path, trials=2, seeds=[7], epochs=2, progress=False)
    tuned = load_scenario(str(tmp_path / "tiny" / "tuning" / "tiny.toml"))
    assert tuned.seeds == tiny.seeds and tuned.training.epochs == 2
    for name, record in records.items():
        assert tuned.strategies[name] == pytest.approx(record["best"]["params"]) or \
            tuned.strategies[name] == record["best"]["params"]


def test_tuning_seeds_must_not_be_reporting_seeds(tiny, tmp_path):
    with pytest.raises(UserError, match=r"tuning seeds \[1\] are among the scenario's reporting seeds"):
        tune.tune_scenario(tiny, tmp_path, seeds=[1, 9], progress=False)


def test_two_workers_propose_and_score_the_trials_of_one_process(tiny, tmp_path):
    """With no more workers than tuning seeds, a trial's seeds run side by side and the search is
    the one a single process makes, score for score."""
    kwargs = dict(strategies=["naive"], trials=2, seeds=[7, 8], progress=False)
    alone = tune.tune_scenario(tiny, tmp_path / "alone", **kwargs)["naive"]
    pooled = tune.tune_scenario(tiny, tmp_path / "pooled", executor=LocalProcesses(2), **kwargs)["naive"]
    assert pooled["trials"] == alone["trials"]
