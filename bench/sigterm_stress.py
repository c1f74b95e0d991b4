"""Does a preempted sweep always exit? `avalanche-hsf run` with 2 workers on a tiny scenario, sent
SIGTERM once a unit has saved its first checkpoint, ATTEMPTS times; each attempt must exit (code
143) within TIMEOUT seconds. On a hang, the stacks of the driver and its workers are dumped with
py-spy (if it is on PATH) into OUT before they are killed.

    .venv/bin/python bench/sigterm_stress.py [ATTEMPTS] [OUT]   (defaults: 25, /tmp/sigterm_stress)
"""

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import scenario_text  # noqa: E402 - the tests' tiny scenario, from the checkout

TIMEOUT = 60


def children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def dump_stacks(pids: list[int], out: Path) -> None:
    spy = shutil.which("py-spy")
    for pid in pids:
        text = subprocess.run([spy, "dump", "--pid", str(pid)], capture_output=True, text=True).stdout if spy else ""
        (out / f"stacks_{pid}.txt").write_text(text or "py-spy not found\n")


def main(attempts: int, out: Path) -> int:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    scenario = out / "tiny.toml"
    scenario.write_text(scenario_text(strategies=("naive", "ewc"), seeds="[0, 1]", epochs=4))
    for attempt in range(attempts):
        runs = out / f"run{attempt}"
        driver = subprocess.Popen([sys.executable, "-m", "avalanche_hsf.lab.cli", "run", str(scenario), "--workers",
                                   "2", "--quiet", "--out", str(runs)], stderr=subprocess.PIPE, text=True, cwd=ROOT)
        while not any((runs / "tiny").glob("*/seed*/checkpoint.pkl")) and driver.poll() is None:
            time.sleep(0.05)
        driver.send_signal(signal.SIGTERM)
        try:
            _, err = driver.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            pids = [driver.pid, *children(driver.pid)]
            dump_stacks(pids, out)
            for pid in pids:
                subprocess.run(["kill", "-9", str(pid)], check=False)
            print(f"attempt {attempt}: no exit {TIMEOUT} s after SIGTERM; stacks in {out}")
            return 1
        print(f"attempt {attempt}: exit code {driver.returncode}: {err.strip()[:60]}", flush=True)
        if driver.returncode != 128 + signal.SIGTERM:
            return 1
    print(f"{attempts} of {attempts} attempts exited after SIGTERM")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 25,
                  Path(sys.argv[2]) if len(sys.argv) > 2 else Path("/tmp/sigterm_stress")))
