"""Matplotlib figures for results: accuracy-matrix heatmaps and an ACC/BWT comparison."""

import io

import matplotlib

matplotlib.use("Agg")  # files only; never open a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .files import atomic_write_bytes  # noqa: E402


def matrix_figure(R, title: str, regression: bool = False):
    """Accuracy in [0, 1], or MSE on a log colour scale (dark is good for both)."""
    R = np.asarray(R, dtype=float)
    T = len(R)
    fig, ax = plt.subplots(figsize=(1.1 * T + 2.2, 0.9 * T + 1.6))
    if regression:
        norm = matplotlib.colors.LogNorm(vmin=max(R.min(), 1e-6), vmax=max(R.max(), 1e-5))
        image = ax.imshow(R, norm=norm, cmap="viridis")
        labels, bright = [f"{v:.2g}" for v in R.flatten()], R > np.sqrt(norm.vmin * norm.vmax)
    else:
        image = ax.imshow(R, vmin=0.0, vmax=1.0, cmap="viridis")
        labels, bright = [f"{v:.2f}" for v in R.flatten()], R > 0.55
    for i in range(T):
        for j in range(T):
            ax.text(j, i, labels[i * T + j], ha="center", va="center", fontsize=9,
                    color="black" if bright[i, j] else "white")
    ax.set_xticks(range(T), [f"exp {j}" for j in range(T)])
    ax.set_yticks(range(T), [f"after {i}" for i in range(T)])
    ax.set_xlabel("evaluated on")
    ax.set_ylabel("trained up to")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="MSE" if regression else "accuracy")
    fig.tight_layout()
    return fig


def comparison_figure(strategies: dict, title: str):
    names = list(strategies)
    x = np.arange(len(names))
    fig, axes = plt.subplots(1, 2, figsize=(max(6.0, 1.1 * len(names) + 3), 3.8))
    for ax, key, label in ((axes[0], "acc", "ACC (higher is better)"), (axes[1], "bwt", "BWT (closer to 0 is better)")):
        values = [strategies[n][key] for n in names]
        errors = [strategies[n].get(f"{key}_std") or 0.0 for n in names]  # None: a single seed
        ax.bar(x, values, yerr=errors, capsize=3, color="tab:blue" if key == "acc" else "tab:red")
        ax.set_xticks(x, names, rotation=35, ha="right")
        ax.set_title(label)
        ax.axhline(0.0, color="black", linewidth=0.6)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def save_figure(fig, path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def first_task_curve_figure(strategies: dict, title: str):
    """Task-0 MSE after each task learned, log scale, one line per strategy."""
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    for name, r in strategies.items():
        curve = [row[0] for row in r["mse_matrix"]]
        ax.plot(range(1, len(curve) + 1), curve, marker="o", label=name)
    ax.set_yscale("log")
    ax.set_xticks(range(1, max(len(r["mse_matrix"]) for r in strategies.values()) + 1))
    ax.set_xlabel("tasks learned")
    ax.set_ylabel("MSE on task 0")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    return fig


def task_curves_figure(strategies: dict, title: str):
    """Every task's MSE after each task learned, log scale: one panel per strategy, one line per task,
    from the task's own training on (before it, the task was never trained)."""
    names = list(strategies)
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names) + 0.8, 3.6), sharey=True, squeeze=False)
    for ax, name in zip(axes[0], names):
        R = strategies[name]["mse_matrix"]
        for task in range(len(R)):
            ax.plot(range(task + 1, len(R) + 1), [row[task] for row in R[task:]], marker="o", markersize=3,
                    label=f"task {task}")
        ax.set_yscale("log")
        ax.set_xticks(range(1, len(R) + 1))
        ax.set_xlabel("tasks learned")
        ax.set_title(name)
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel("MSE")
    axes[0][-1].legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
