"""The validation stream: carved from each experience's training data, disjoint from training and
test, stratified by class, the same for every seed."""

from collections import Counter

import pytest
import torch

from avalanche_hsf.lab.benchmarks import VALIDATION_FRACTION, build_benchmark


def inputs(dataset) -> set[bytes]:
    return {x.numpy().tobytes() for x, *_ in dataset}


def labels(dataset) -> Counter:
    return Counter(int(y) for _, y, *_ in dataset)


@pytest.mark.parametrize("name, setting", [("split_digits", "class-il"), ("split_digits", "task-il"),
                                           ("permuted_digits", "domain-il"), ("seed_curves", "task-il"),
                                           ("conflicting_curves", "task-il")])
def test_validation_is_disjoint_stratified_and_the_same_for_every_seed(name, setting):
    torch.manual_seed(1)
    benchmark = build_benchmark(name, setting, {})
    torch.manual_seed(2)
    again = build_benchmark(name, setting, {})
    assert len(benchmark.valid_stream) == len(benchmark.train_stream)
    for train, valid, test, valid_again in zip(benchmark.train_stream, benchmark.valid_stream,
                                                benchmark.test_stream, again.valid_stream):
        assert valid.task_labels == train.task_labels
        train_x, valid_x, test_x = inputs(train.dataset), inputs(valid.dataset), inputs(test.dataset)
        assert valid_x and not valid_x & train_x and not valid_x & test_x
        assert inputs(valid_again.dataset) == valid_x  # the run's seed does not move the split
        total = len(train.dataset) + len(valid.dataset)
        if name.endswith("_curves"):  # regression: a tenth of the points, at random
            assert abs(len(valid.dataset) - VALIDATION_FRACTION * total) <= 1
        else:
            assert set(labels(valid.dataset)) == set(labels(train.dataset))  # every class, in proportion
            for label, count in labels(valid.dataset).items():
                share = count / (count + labels(train.dataset)[label])
                assert abs(share - VALIDATION_FRACTION) < 0.05, (label, share)
