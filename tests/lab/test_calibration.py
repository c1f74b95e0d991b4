"""ECE and task-inference accuracy from the final pass over the test stream."""

import pytest
import torch

from avalanche_hsf.lab.benchmarks import build_benchmark
from avalanche_hsf.lab.calibration import final_test_pass


class ConstantModel(torch.nn.Module):
    """Predicts class 0 with the given logit margin; reports task 0 as the inferred task."""

    def __init__(self, margin, reports_task=False):
        super().__init__()
        self.margin, self.reports_task = margin, reports_task

    def forward(self, x):
        logits = torch.zeros(len(x), 10)
        logits[:, 0] = self.margin
        if self.reports_task:
            self.inferred_tasks = torch.zeros(len(x), dtype=torch.long)
        return logits


@pytest.fixture(scope="module")
def test_stream():
    return build_benchmark("split_digits", "class-il", {"n_experiences": 5}).test_stream


def test_ece_is_low_for_honest_uncertainty_and_high_for_overconfidence(test_stream):
    n = sum(len(e.dataset) for e in test_stream)
    share_of_zeros = sum(int((torch.as_tensor(e.dataset.targets) == 0).sum()) for e in test_stream) / n
    uniform = final_test_pass(ConstantModel(0.0), test_stream, batch_size=128)
    confident = final_test_pass(ConstantModel(30.0), test_stream, batch_size=128)
    # Uniform logits: confidence 1/10 on every sample against an accuracy equal to class 0's share.
    assert uniform["ece"] == pytest.approx(abs(0.1 - share_of_zeros), abs=1e-4)
    assert confident["ece"] == pytest.approx(1 - share_of_zeros, abs=1e-4)
    assert "task_inference_acc" not in uniform


def test_task_inference_accuracy_counts_samples_sent_to_their_own_experience(test_stream):
    n = sum(len(e.dataset) for e in test_stream)
    result = final_test_pass(ConstantModel(0.0, reports_task=True), test_stream, batch_size=128)
    assert result["task_inference_acc"] == pytest.approx(len(test_stream[0].dataset) / n)
