import pytest

from avalanche_hsf.lab import metrics

R = [[0.9, 0.1, 0.2],
     [0.7, 0.8, 0.3],
     [0.6, 0.5, 0.95]]
INITIAL = [0.1, 0.2, 0.25]


def test_acc_is_mean_of_last_row():
    assert metrics.acc(R) == pytest.approx((0.6 + 0.5 + 0.95) / 3)


def test_bwt_compares_final_row_with_diagonal():
    assert metrics.bwt(R) == pytest.approx(((0.6 - 0.9) + (0.5 - 0.8)) / 2)


def test_fwt_uses_untrained_accuracies():
    assert metrics.fwt(R, INITIAL) == pytest.approx(((0.1 - 0.2) + (0.3 - 0.25)) / 2)


def test_forgetting_is_drop_from_best_earlier_accuracy():
    assert metrics.forgetting(R) == pytest.approx([0.9 - 0.6, 0.8 - 0.5])


def test_single_experience_has_no_transfer():
    assert metrics.summarize([[0.7]], [0.5]) == {"acc": 0.7, "bwt": 0.0, "fwt": 0.0, "forgetting": []}
