"""Aggregating per-seed runs into the `results.json` contract, and the comparison table."""

import numpy as np


def aggregate_seeds(runs: list[dict]) -> dict:
    """Mean over seeds of every matrix, list and scalar, each with a `_std` sibling."""
    out = {}
    for key, value in runs[0].items():
        if key in ("seed", "hparams") or isinstance(value, bool):
            continue
        values = np.array([r[key] for r in runs], dtype=float)
        if isinstance(value, int):  # a count of bytes stays a count
            out[key] = int(round(values.mean()))
            continue
        mean, std = values.mean(0), values.std(0)
        out[key], out[f"{key}_std"] = (mean.tolist(), std.tolist()) if values.ndim > 1 else (float(mean), float(std))
    out["hparams"] = runs[0]["hparams"]
    out["per_seed"] = runs
    return out


def _human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def format_table(results: dict) -> str:
    if results.get("task") == "regression":
        return _format_regression_table(results)
    header = (f"{'strategy':<16}{'ACC':>16}{'BWT':>9}{'FWT':>9}{'ECE':>7}{'task-inf':>10}{'time (s)':>10}"
              f"{'peak RSS':>10}{'state/task':>12}")
    lines = [f"{results['scenario']} ({results['setting']}, seeds {results['seeds']})", header, "-" * len(header)]
    for name, r in results["strategies"].items():
        task_inference = f"{100 * r['task_inference_acc']:.1f}" if "task_inference_acc" in r else "-"
        lines.append(
            f"{name:<16}{100 * r['acc']:>9.1f} ± {100 * r['acc_std']:<4.1f}{100 * r['bwt']:>9.1f}"
            f"{100 * r['fwt']:>9.1f}{r.get('ece', float('nan')):>7.3f}{task_inference:>10}"
            f"{r['train_seconds']:>10.1f}{r['peak_rss_mb']:>8.0f}MB{_human_bytes(r['extra_state_bytes_per_task']):>12}"
        )
    lines.append("ACC/BWT/FWT and task-inference accuracy in points; ECE after the last experience (15 bins); "
                 "time is training wall-clock per seed.")
    return "\n".join(lines)


def _format_regression_table(results: dict) -> str:
    header = (f"{'strategy':<16}{'avg MSE':>20}{'avg forget':>12}{'task-0 forget':>15}{'time (s)':>10}"
              f"{'peak RSS':>10}{'state/task':>12}")
    lines = [f"{results['scenario']} ({results['setting']}, regression, seeds {results['seeds']})", header,
             "-" * len(header)]
    for name, r in results["strategies"].items():
        task0 = r["forgetting"][0] if r["forgetting"] else 0.0
        lines.append(
            f"{name:<16}{r['avg_mse']:>11.4f} ± {r['avg_mse_std']:<6.4f}{r['avg_forgetting']:>12.4f}{task0:>15.4f}"
            f"{r['train_seconds']:>10.1f}{r['peak_rss_mb']:>8.0f}MB{_human_bytes(r['extra_state_bytes_per_task']):>12}"
        )
    lines.append("MSE on each task's test points (lower is better); forgetting is the increase in MSE.")
    return "\n".join(lines)
