"""An installed wheel, not only a checkout: it holds every shipped scenario, and its CLI lists and
runs them from any folder."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHIPPED = sorted(p.name for p in (REPO / "scenarios").glob("*.toml"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                    "--disable-pip-version-check", "-w", str(out), str(REPO)], check=True, capture_output=True)
    return next(out.glob("avalanche_hsf-*.whl"))


def test_the_wheel_holds_every_shipped_scenario(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert SHIPPED and all(f"avalanche_hsf/scenarios/{name}" in names for name in SHIPPED)


def test_an_installed_wheel_lists_and_runs_its_scenarios_from_any_folder(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--disable-pip-version-check",
                    "--target", str(site), str(wheel)], check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def cli(*args):
        code = ("import sys, avalanche_hsf; assert avalanche_hsf.__file__.startswith(sys.argv[1]), "
                "avalanche_hsf.__file__; from avalanche_hsf.lab.cli import main; sys.exit(main(sys.argv[2:]))")
        return subprocess.run([sys.executable, "-c", code, str(site), *args], cwd=elsewhere, capture_output=True,
                              text=True, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})

    listed = cli("list")
    assert listed.returncode == 0, listed.stderr
    for name in SHIPPED:
        assert f"  {name.removesuffix('.toml')} " in listed.stdout
    ran = cli("run", "split_digits_til", "--strategies", "naive", "--seeds", "0", "--epochs", "1", "--quiet",
              "--threads", "1", "--out", "out")
    assert ran.returncode == 0, ran.stderr
    assert (elsewhere / "out" / "split_digits_til" / "results.json").is_file()
