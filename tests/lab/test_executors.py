"""Executors: the same matrices on every one (Ray included, on a real local instance), and the
three faults a sweep must survive: a worker killed, the driver killed, the job preempted."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from avalanche_hsf.lab.executors import _interrupt_deferred
from avalanche_hsf.lab.stopping import Preempted, raise_if_stopped, sigterm_stops
from tests.helpers import run_cli, scenario_text

UNITS = 4  # 2 strategies x 2 seeds


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A scenario whose units each take a few seconds, and its matrices from one process."""
    folder = tmp_path_factory.mktemp("sweep")
    path = folder / "tiny.toml"
    path.write_text(scenario_text(strategies=("naive", "ewc"), seeds="[0, 1]", epochs=20))
    assert subprocess.run(_command(path, folder / "reference", "1"), capture_output=True).returncode == 0
    return path, matrices(folder / "reference")


def _command(scenario: Path, out: Path, workers: str = "2", *extra) -> list[str]:
    return [sys.executable, "-m", "avalanche_hsf.lab.cli", "run", str(scenario), "--workers", workers, "--quiet",
            "--out", str(out), *extra]


def matrices(out: Path) -> dict:
    results = json.loads((out / "tiny" / "results.json").read_text())
    return {name: [run["acc_matrix"] for run in r["per_seed"]] for name, r in results["strategies"].items()}


def records(out: Path) -> dict[Path, dict]:
    return {path: json.loads(path.read_text()) for path in (out / "tiny").glob("*/seed*/record.json")}


def _wait_for_checkpoint(out: Path, process, timeout: float = 120) -> None:
    """Until some unit has saved its first experience and is still running."""
    deadline = time.monotonic() + timeout
    while not any((out / "tiny").glob("*/seed*/checkpoint.pkl")):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no unit saved a checkpoint"
        time.sleep(0.05)


def _workers_of(pid: int) -> list[int]:
    """The driver's pool processes (spawned interpreters, not the resource tracker)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children
            if "resource_tracker" not in Path(f"/proc/{c}/cmdline").read_bytes().decode(errors="replace")]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _resumed(out: Path) -> list[int]:
    return [at for record in records(out).values() for at in record["result"]["resumed_at"]]


pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads worker processes from /proc")


def test_ray_gives_the_matrices_and_the_tuning_trials_of_one_process(sweep, tmp_path, capsys):
    ray = pytest.importorskip("ray")
    path, reference = sweep
    tune = ("tune", str(path), "--strategies", "naive", "--trials", "2", "--epochs", "1", "--quiet")
    assert run_cli(capsys, *tune, "--workers", "1", "--out", str(tmp_path / "alone"))[0] == 0
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        code, err = run_cli(capsys, "run", str(path), "--executor", "ray", "--quiet", "--out", str(tmp_path))
        assert code == 0, err
        code, err = run_cli(capsys, *tune, "--executor", "ray", "--out", str(tmp_path / "ray"))
        assert code == 0, err
    finally:
        ray.shutdown()
    assert matrices(tmp_path) == reference  # bit for bit
    assert len(records(tmp_path)) == UNITS
    trials = [json.loads((tmp_path / where / "tiny" / "tuning" / "naive.json").read_text())["trials"]
              for where in ("alone", "ray")]
    assert trials[0] == trials[1]


def test_killed_workers_are_retried_from_their_checkpoints(sweep, tmp_path):
    path, reference = sweep
    driver = subprocess.Popen(_command(path, tmp_path), stderr=subprocess.PIPE, text=True)
    _wait_for_checkpoint(tmp_path, driver)
    for worker in _workers_of(driver.pid):  # both: the one whose unit has the checkpoint among them
        os.kill(worker, signal.SIGKILL)
    _, err = driver.communicate(timeout=300)
    assert driver.returncode == 0, err
    assert "a worker process died" in err
    assert matrices(tmp_path) == reference
    assert any(at >= 1 for at in _resumed(tmp_path))  # from a checkpoint, not from the start


def test_a_killed_driver_restarted_skips_finished_units_and_resumes_the_others(sweep, tmp_path):
    path, reference = sweep
    driver = subprocess.Popen(_command(path, tmp_path), stderr=subprocess.PIPE, text=True)
    _wait_for_checkpoint(tmp_path, driver)
    workers = _workers_of(driver.pid)
    driver.kill()
    driver.wait()
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in workers):  # orphans stop themselves
        assert time.monotonic() < deadline, "workers outlived their driver"
        time.sleep(0.1)
    finished = {p: p.stat().st_mtime_ns for p in records(tmp_path)}
    interrupted = {p.parent for p in (tmp_path / "tiny").glob("*/seed*/checkpoint.pkl")}
    assert interrupted, "every checkpointed unit finished before its orphaned worker stopped"
    restarted = subprocess.run(_command(path, tmp_path), capture_output=True, text=True)
    assert restarted.returncode == 0, restarted.stderr
    assert {p: p.stat().st_mtime_ns for p in finished} == finished  # not run again
    assert matrices(tmp_path) == reference
    for folder in interrupted:  # each from its checkpoint, not from the start
        assert json.loads((folder / "record.json").read_text())["result"]["resumed_at"][0] >= 1


def test_sigterm_saves_and_exits_with_a_line_that_says_how_to_resume(sweep, tmp_path):
    path, reference = sweep
    driver = subprocess.Popen(_command(path, tmp_path), stderr=subprocess.PIPE, text=True)
    _wait_for_checkpoint(tmp_path, driver)
    driver.send_signal(signal.SIGTERM)
    _, err = driver.communicate(timeout=120)
    assert driver.returncode == 128 + signal.SIGTERM, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "stopped by SIGTERM" in lines[0] and "rerun the same command" in lines[0], err
    assert len(records(tmp_path)) < UNITS and any((tmp_path / "tiny").glob("*/seed*/checkpoint.pkl"))
    resumed = subprocess.run(_command(path, tmp_path), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert matrices(tmp_path) == reference
    assert any(at >= 1 for at in _resumed(tmp_path))
    assert not any((tmp_path / "tiny").glob("*/seed*/checkpoint.pkl"))  # removed once each unit finished



def test_sigterm_stops_at_the_next_check_and_ctrl_c_after_the_drivers_wait():
    # Raised wherever the signal lands, either could leave a lock held (a TensorBoard writer's
    # queue, a future's condition) and hang the process on exit.
    reached = []
    with sigterm_stops():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.1)  # long enough for the handler to have run
        reached.append("after SIGTERM")
        with pytest.raises(Preempted, match="stopped by SIGTERM"):
            raise_if_stopped()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # another test's Ray may have set its own
    try:
        with pytest.raises(KeyboardInterrupt):
            with _interrupt_deferred():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.1)
                reached.append("after SIGINT")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert reached == ["after SIGTERM", "after SIGINT"]
    raise_if_stopped()  # the request ended with the block
