"""Interrupted runs resume exactly; the same seed gives the same numbers; bad checkpoints are refused."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from avalanche_hsf.errors import UserError
from avalanche_hsf.lab.runner import run_scenario
from avalanche_hsf.lab.scenario import load_scenario
from tests.helpers import scenario_text

# 3 task-labelled experiences, so every strategy (Piggyback needs task labels) runs on it.
STRATEGIES = ("naive", "ewc", "mas", "piggyback", "hsf")
TINY = scenario_text(benchmark="permuted_digits", extra_benchmark="n_experiences = 3", strategies=STRATEGIES,
                     epochs=2).replace("lr = 0.05", "lr = 0.02")


def run(path, out, strategy, **kwargs):
    return run_scenario(load_scenario(str(path)), out, strategies=[strategy], progress=False, **kwargs)


def matrix(results, strategy):
    return results["strategies"][strategy]["per_seed"][0]["acc_matrix"]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_sigkill_after_the_first_experience_then_resume_gives_the_same_matrix(strategy, write_scenario, tmp_path):
    path = write_scenario(TINY)
    reference = matrix(run(path, tmp_path / "reference", strategy), strategy)
    assert len(reference) == 3 and max(reference[0]) > 0.3  # it learned something worth comparing

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
    on_disk = json.loads((tmp_path / "killed" / "tiny" / "results.json").read_text())
    assert matrix(on_disk, strategy) == reference


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
