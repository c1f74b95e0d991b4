"""The synthetic regression benchmarks: seed_curves (autoencoding) and conflicting_curves (the same
inputs mapped to different targets)."""

import torch

from avalanche_hsf.lab.benchmarks import build_benchmark


def stacked(experience):
    x, y, t = zip(*(experience.dataset[i] for i in range(len(experience.dataset))))
    return torch.stack(x), torch.stack(y), set(t)


def test_conflicting_tasks_share_their_inputs_and_disagree_on_the_targets():
    benchmark = build_benchmark("conflicting_curves", "task-il", {"n_points": 40})
    assert len(benchmark.train_stream) == 6
    for stream in (benchmark.train_stream, benchmark.valid_stream, benchmark.test_stream):
        tasks = [stacked(e) for e in stream]
        assert [t for _, _, t in tasks] == [{k} for k in range(6)]
        x0, y0, _ = tasks[0]
        assert x0.shape[1:] == (1,) and y0.shape[1:] == (3,)
        for x, y, _ in tasks[1:]:
            assert torch.equal(x, x0)  # the same points
            assert not torch.allclose(y, y0)  # other targets
        assert torch.equal(tasks[5][1], -y0)  # the last task negates the first


def test_seed_curves_targets_are_their_inputs():
    for experience in build_benchmark("seed_curves", "task-il", {"n_points": 40}).train_stream:
        x, y, _ = stacked(experience)
        assert torch.equal(x, y)
