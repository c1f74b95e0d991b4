"""Aggregating per-seed runs into the `results.json` contract, and the comparison table."""

import numpy as np

SCALARS = ("acc", "bwt", "fwt", "train_seconds", "peak_rss_mb")


def aggregate_seeds(runs: list[dict]) -> dict:
    """Mean over seeds of the matrix and scalars, each with a `_std` sibling."""
    matrices = np.array([r["acc_matrix"] for r in runs])
    out = {
        "acc_matrix": matrices.mean(0).tolist(),
        "acc_matrix_std": matrices.std(0).tolist(),
        "initial_acc": np.mean([r["initial_acc"] for r in runs], 0).tolist(),
    }
    for key in SCALARS:
        values = [r[key] for r in runs]
        out[key], out[f"{key}_std"] = float(np.mean(values)), float(np.std(values))
    out["forgetting"] = np.mean([r["forgetting"] for r in runs], 0).tolist()
    out["extra_state_bytes_per_task"] = int(round(np.mean([r["extra_state_bytes_per_task"] for r in runs])))
    out["hparams"] = runs[0]["hparams"]
    out["per_seed"] = runs
    return out


def _human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def format_table(results: dict) -> str:
    header = f"{'strategy':<16}{'ACC':>16}{'BWT':>9}{'FWT':>9}{'time (s)':>10}{'peak RSS':>10}{'state/task':>12}"
    lines = [f"{results['scenario']} ({results['setting']}, seeds {results['seeds']})", header, "-" * len(header)]
    for name, r in results["strategies"].items():
        lines.append(
            f"{name:<16}{100 * r['acc']:>9.1f} ± {100 * r['acc_std']:<4.1f}{100 * r['bwt']:>9.1f}"
            f"{100 * r['fwt']:>9.1f}{r['train_seconds']:>10.1f}{r['peak_rss_mb']:>8.0f}MB"
            f"{_human_bytes(r['extra_state_bytes_per_task']):>12}"
        )
    lines.append("ACC/BWT/FWT in accuracy points; time is training wall-clock per seed.")
    return "\n".join(lines)
