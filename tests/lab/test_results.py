"""Aggregation over seeds: the sample standard deviation and the 95% t-interval, checked against
scipy and numpy computed independently."""

import math

import numpy as np
import pytest
from scipy import stats

from avalanche_hsf.lab.results import aggregate_seeds, sample_std, t_interval


def test_sample_std_and_t_interval_match_the_textbook_formula():
    values = [0.91, 0.95, 0.88, 0.97, 0.93]
    n, mean, s = len(values), np.mean(values), np.std(values, ddof=1)
    assert sample_std(values) == pytest.approx(s)
    half = stats.t.ppf(0.975, n - 1) * s / math.sqrt(n)
    assert t_interval(values) == pytest.approx([mean - half, mean + half])
    assert sample_std([0.9]) is None and t_interval([0.9]) is None


def test_aggregate_uses_them_and_keeps_undefined_values_undefined():
    runs = [{"seed": k, "acc": a, "bwt": -0.01 * k, "fwt": None, "acc_matrix": [[a]], "train_seconds": 1.0 + k,
             "extra_state_bytes_per_task": 10 * k, "hparams": {}} for k, a in enumerate([0.8, 0.9, 0.7])]
    out = aggregate_seeds(runs)
    assert out["n_seeds"] == 3 and out["fwt"] is None
    assert out["acc_std"] == pytest.approx(np.std([0.8, 0.9, 0.7], ddof=1))
    assert out["acc_ci95"] == pytest.approx(t_interval([0.8, 0.9, 0.7]))
    np.testing.assert_allclose(out["acc_matrix_std"], [[np.std([0.8, 0.9, 0.7], ddof=1)]])
    assert out["extra_state_bytes_per_task"] == 10 and "bwt_ci95" not in out
