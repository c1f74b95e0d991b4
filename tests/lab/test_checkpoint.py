"""Interrupted runs resume exactly; the same seed gives the same numbers; bad checkpoints are refused."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest
import torch
from avalanche.training.plugins import SupervisedPlugin
from avalanche.training.plugins.agem import AGEMPlugin

from avalanche_hsf.errors import UserError
from avalanche_hsf.lab import strategies as registry
from avalanche_hsf.lab.scenario import load_scenario
from avalanche_hsf.lab.sweep import run_scenario
from tests.helpers import assert_clean_error, run_cli, scenario_text

# 3 task-labelled experiences (Piggyback and PackNet need task labels): every strategy but iCaRL and
# mlp_ae runs on it; 2 epochs are more than PackNet's post_prune_epochs (1), so it prunes.
STRATEGIES = ("naive", "ewc", "mas", "piggyback", "hsf", "agem")  # the representative set, run by default
TINY = scenario_text(benchmark="permuted_digits", extra_benchmark="n_experiences = 3", strategies=STRATEGIES,
                     epochs=2).replace("lr = 0.05", "lr = 0.02")
# The strategies that do not run on TINY, each in the smallest setting it supports.
OTHER_SETTINGS = {
    "icarl": scenario_text(setting="class-il", benchmark="split_digits", extra_benchmark="n_experiences = 2",
                           strategies=("icarl",)),  # class-IL only
    "mlp_ae": scenario_text(benchmark="seed_curves", extra_benchmark="n_points = 20", strategies=("mlp_ae",),
                            epochs=2),  # an autoencoder: the regression benchmark
}


def run(path, out, strategy, **kwargs):
    return run_scenario(load_scenario(str(path)), out, strategies=[strategy], progress=False, **kwargs)


def matrix(results, strategy):
    scores = results["strategies"][strategy]["per_seed"][0]
    return scores["acc_matrix"] if "acc_matrix" in scores else scores["mse_matrix"]


@pytest.mark.parametrize("strategy", [pytest.param(name, marks=() if name in STRATEGIES else pytest.mark.slow)
                                      for name in registry.STRATEGIES])
def test_sigkill_after_the_first_experience_then_resume_gives_the_same_matrix(strategy, write_scenario, tmp_path):
    path = write_scenario(OTHER_SETTINGS.get(strategy, TINY))
    uninterrupted = run(path, tmp_path / "reference", strategy)
    reference = matrix(uninterrupted, strategy)
    assert len(reference) >= 2  # the kill comes after the first experience, so the resumed run trains
    if strategy != "mlp_ae":  # (its matrix holds MSEs)
        assert max(reference[0]) > 0.3  # it learned something worth comparing

    checkpoint = tmp_path / "ckpt" / "tiny" / strategy / "seed0.ckpt"
    command = [sys.executable, "-m", "avalanche_hsf.lab.cli", "run", str(path), "--strategies", strategy, "--quiet",
               "--threads", "1", "--out", str(tmp_path / "killed"), "--checkpoint-dir", str(tmp_path / "ckpt")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not checkpoint.exists():  # it appears, complete, when the first experience is saved
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "no checkpoint after 120 s"
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    assert not (tmp_path / "killed" / "tiny" / "results.json").exists()

    resumed = run(path, tmp_path / "killed", strategy, checkpoint_dir=tmp_path / "ckpt")
    assert matrix(resumed, strategy) == reference  # bit-for-bit: exact float equality
    trained = (r["strategies"][strategy]["trained_parameters"] for r in (resumed, uninterrupted))
    assert next(trained) == next(trained) > 0  # what the optimizer trained, counted across the resume
    on_disk = json.loads((tmp_path / "killed" / "tiny" / "results.json").read_text())
    assert matrix(on_disk, strategy) == reference


class HoldsAGenerator(SupervisedPlugin):
    """A plugin that cannot be pickled from the start, and must never get to train."""

    def __init__(self):
        super().__init__()
        self.numbers = (i for i in range(3))

    def before_training(self, strategy, **kwargs):
        raise AssertionError("trained although it cannot be checkpointed")


def test_a_strategy_that_cannot_be_checkpointed_stops_before_training_with_one_line(write_scenario, tmp_path,
                                                                                     capsys, monkeypatch):
    monkeypatch.setitem(registry.STRATEGIES, "naive", replace(registry.STRATEGIES["naive"], plugin=HoldsAGenerator))
    code, err = run_cli(capsys, "run", str(write_scenario(TINY)), "--strategies", "naive", "--quiet",
                        "--out", str(tmp_path / "out"), "--checkpoint-dir", str(tmp_path / "ckpt"))
    assert_clean_error(code, err, "strategy 'naive' cannot be checkpointed (TypeError: cannot pickle 'generator' "
                       "object); run it without --checkpoint-dir")
    assert not (tmp_path / "ckpt" / "tiny" / "naive" / "seed0.ckpt").exists()


def test_agem_without_its_fix_stops_at_its_first_save_with_one_line(write_scenario, tmp_path, capsys, monkeypatch):
    # Its generator appears only when the first experience ends, so that is where it is caught.
    monkeypatch.delattr(AGEMPlugin, "__getstate__", raising=False)
    monkeypatch.delattr(AGEMPlugin, "__setstate__", raising=False)
    code, err = run_cli(capsys, "run", str(write_scenario(TINY)), "--strategies", "agem", "--quiet",
                        "--out", str(tmp_path / "out"), "--checkpoint-dir", str(tmp_path / "ckpt"))
    assert_clean_error(code, err, "strategy 'agem' cannot be checkpointed (TypeError: cannot pickle 'generator'")
    assert not (tmp_path / "ckpt" / "tiny" / "agem" / "seed0.ckpt").exists()


@pytest.fixture
def deterministic_mode():
    yield
    torch.use_deterministic_algorithms(False)


def test_same_seed_and_deterministic_flag_give_identical_matrices(write_scenario, tmp_path, deterministic_mode):
    path = write_scenario(TINY)
    first, second = (matrix(run(path, tmp_path / name, "mas", deterministic=True), "mas") for name in "ab")
    assert first == second
    assert torch.are_deterministic_algorithms_enabled()


def test_a_completed_checkpoint_is_reused_without_training(write_scenario, tmp_path):
    path = write_scenario(TINY)
    first = run(path, tmp_path, "naive", checkpoint_dir=tmp_path / "ckpt")
    again = run(path, tmp_path, "naive", checkpoint_dir=tmp_path / "ckpt")
    assert matrix(again, "naive") == matrix(first, "naive")
    assert again["strategies"]["naive"]["train_seconds"] == first["strategies"]["naive"]["train_seconds"]


def test_a_checkpoint_from_other_settings_is_refused_naming_what_changed(write_scenario, tmp_path):
    run(write_scenario(TINY), tmp_path, "naive", checkpoint_dir=tmp_path / "ckpt")
    changed = write_scenario(TINY.replace("lr = 0.02", "lr = 0.03"))
    before = (tmp_path / "ckpt" / "tiny" / "naive" / "seed0.ckpt").read_bytes()
    with pytest.raises(UserError, match=r"other settings \(.*training\.lr was 0\.02, now 0\.03\)"):
        run(changed, tmp_path, "naive", checkpoint_dir=tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "tiny" / "naive" / "seed0.ckpt").read_bytes() == before  # never overwritten


def test_a_corrupt_checkpoint_is_refused_with_what_to_do(write_scenario, tmp_path):
    checkpoint = tmp_path / "ckpt" / "tiny" / "naive" / "seed0.ckpt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot be read.*delete it"):
        run(write_scenario(TINY), tmp_path, "naive", checkpoint_dir=tmp_path / "ckpt")
    assert checkpoint.read_bytes() == b"not a checkpoint"
