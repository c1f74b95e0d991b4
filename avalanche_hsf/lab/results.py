"""Aggregating per-seed runs into the `results.json` contract, the provenance of a run, and the
comparison table."""

import datetime
import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import torch
from scipy import stats

CONFIDENCE = 0.95  # of the t-interval reported for ACC (MSE for regression) over seeds
# The headline score of each kind of result: its interval is reported as `<key>_ci95`.
HEADLINE = ("acc", "avg_mse")


def sample_std(values) -> float | None:
    """The sample standard deviation (ddof = 1); None for a single value, where it is undefined."""
    values = np.asarray(values, dtype=float)
    return float(values.std(ddof=1)) if len(values) > 1 else None


def t_interval(values, confidence: float = CONFIDENCE) -> list[float] | None:
    """`mean ± t_{(1+confidence)/2, n−1} · s / √n`; None for a single value."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return None
    low, high = stats.t.interval(confidence, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    return [float(low), float(high)]


PER_RUN = ("seed", "split", "hparams", "resumed_at", "mask_sparsity")  # facts of one run, never averaged


def aggregate_seeds(runs: list[dict]) -> dict:
    """Mean over seeds of every matrix, list and scalar, each with a `_std` sibling (the sample
    standard deviation); `n_seeds`; and a 95% t-interval for the headline score."""
    out = {"n_seeds": len(runs)}
    for key, value in runs[0].items():
        if key in PER_RUN or isinstance(value, bool):
            continue
        if value is None:  # undefined for this strategy (FWT by construction)
            out[key] = None
            continue
        values = np.array([r[key] for r in runs], dtype=float)
        if isinstance(value, int):  # a count of bytes or parameters stays a count
            out[key] = int(round(values.mean()))
            continue
        std = values.std(0, ddof=1) if len(runs) > 1 else None
        if values.ndim > 1:
            out[key], out[f"{key}_std"] = values.mean(0).tolist(), None if std is None else std.tolist()
        else:
            out[key], out[f"{key}_std"] = float(values.mean()), None if std is None else float(std)
        if key in HEADLINE:
            out[f"{key}_ci95"] = t_interval(values)
    out["hparams"] = runs[0]["hparams"]
    out["per_seed"] = runs
    return out


def _git_commit() -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                              text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({torch.get_num_threads()} torch threads)"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance() -> dict:
    """What produced a result: versions, commit, command line, date and hardware."""
    versions = {}
    for distribution in ("torch", "avalanche-lib", "avalanche-hsf"):
        try:
            versions[distribution] = version(distribution)
        except PackageNotFoundError:
            versions[distribution] = None
    return {"versions": versions, "git_commit": _git_commit(), "command": sys.argv,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "cpu": _cpu(), "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def _mean_std(mean: float, std: float | None, scale: float, digits: int) -> str:
    return f"{scale * mean:.{digits}f} ± {'-' if std is None else f'{scale * std:.{digits}f}'}"


def _points(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def _percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{100 * fraction:.1f}%"


def format_table(results: dict) -> str:
    if results.get("task") == "regression":
        return _format_regression_table(results)
    header = (f"{'strategy':<16}{'ACC':>14}{'n':>3}{'BWT':>7}{'FWT':>7}{'ECE':>7}{'task-inf':>9}{'time (s)':>9}"
              f"{'peak RSS':>10}{'trained':>10}{'state/task':>12}{'masked off':>11}")
    lines = [f"{results['scenario']} ({results['setting']}, {results.get('split', 'test')} stream, "
             f"seeds {results['seeds']})", header, "-" * len(header)]
    for name, r in results["strategies"].items():
        task_inference = f"{100 * r['task_inference_acc']:.1f}" if "task_inference_acc" in r else "-"
        lines.append(
            f"{name:<16}{_mean_std(r['acc'], r['acc_std'], 100, 1):>14}{r['n_seeds']:>3}{_points(r['bwt']):>7}"
            f"{_points(r['fwt']):>7}{r.get('ece', float('nan')):>7.3f}{task_inference:>9}"
            f"{r['train_seconds']:>9.1f}{r['peak_rss_mb']:>8.0f}MB{r['trained_parameters']:>10}"
            f"{human_bytes(r['extra_state_bytes_per_task']):>12}"
            f"{_percent(r.get('mask_off')):>11}"
        )
    lines.append("ACC is mean ± sample std over n seeds (95% t-interval in results.json); ACC/BWT/FWT and "
                 "task-inference accuracy in points, FWT n/a where it is zero by construction (untrained "
                 "per-task heads); ECE after the last experience (15 bins); time is training wall-clock per "
                 "seed; trained: parameters the optimizer trained; state/task: bytes kept per task; masked "
                 "off: the weights a task's learned mask switches off (Piggyback), mean over masked tasks.")
    return "\n".join(lines)


def _format_regression_table(results: dict) -> str:
    header = (f"{'strategy':<16}{'avg MSE':>20}{'n':>3}{'avg forget':>12}{'task-0 forget':>15}{'time (s)':>10}"
              f"{'peak RSS':>10}{'trained':>10}{'state/task':>12}")
    lines = [f"{results['scenario']} ({results['setting']}, regression, {results.get('split', 'test')} stream, "
             f"seeds {results['seeds']})", header, "-" * len(header)]
    for name, r in results["strategies"].items():
        task0 = r["forgetting"][0] if r["forgetting"] else 0.0
        lines.append(
            f"{name:<16}{_mean_std(r['avg_mse'], r['avg_mse_std'], 1, 4):>20}{r['n_seeds']:>3}"
            f"{r['avg_forgetting']:>12.4f}{task0:>15.4f}{r['train_seconds']:>10.1f}{r['peak_rss_mb']:>8.0f}MB"
            f"{r['trained_parameters']:>10}{human_bytes(r['extra_state_bytes_per_task']):>12}"
        )
    lines.append("MSE on each task's points (lower is better), mean ± sample std over n seeds; forgetting is "
                 "the increase in MSE.")
    return "\n".join(lines)
