"""Continual-learning summary metrics from an accuracy matrix (REFERENCE §5).

`R[i][j]` is the accuracy on experience j after training experience i; `initial[j]` is the
accuracy of the untrained model on experience j.
"""

import numpy as np


def acc(R) -> float:
    R = np.asarray(R, dtype=float)
    return float(R[-1].mean())


def bwt(R) -> float:
    R = np.asarray(R, dtype=float)
    T = len(R)
    if T < 2:
        return 0.0
    return float(np.mean([R[-1, j] - R[j, j] for j in range(T - 1)]))


def fwt(R, initial) -> float:
    R, initial = np.asarray(R, dtype=float), np.asarray(initial, dtype=float)
    T = len(R)
    if T < 2:
        return 0.0
    return float(np.mean([R[j - 1, j] - initial[j] for j in range(1, T)]))


def forgetting(R) -> list[float]:
    """Forgetting of each experience but the last: max_{i<T-1} R[i][j] - R[T-1][j]."""
    R = np.asarray(R, dtype=float)
    T = len(R)
    return [float(R[: T - 1, j].max() - R[-1, j]) for j in range(T - 1)]


def summarize(R, initial, fwt_defined: bool = True) -> dict:
    """ACC, BWT, forgetting and FWT; FWT is None where it is zero by construction (`fwt_defined`)."""
    return {"acc": acc(R), "bwt": bwt(R), "fwt": fwt(R, initial) if fwt_defined else None,
            "forgetting": forgetting(R)}


def summarize_regression(R) -> dict:
    """For an MSE matrix (lower is better), forgetting is the increase in error:
    `R[T-1][j] - R[j][j]` for each experience but the last."""
    R = np.asarray(R, dtype=float)
    increase = [float(R[-1, j] - R[j, j]) for j in range(len(R) - 1)]
    return {"avg_mse": float(R[-1].mean()), "avg_forgetting": float(np.mean(increase)) if increase else 0.0,
            "forgetting": increase}
