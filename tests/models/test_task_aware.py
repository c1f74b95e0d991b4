"""The task-aware regression baselines: a shared trunk with a head per task, and a network per task."""

import torch
from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
from avalanche.benchmarks.scenarios.task_aware import task_incremental_benchmark
from avalanche.benchmarks.utils import AvalancheDataset
from avalanche.training import Naive
from torch.utils.data import TensorDataset

from avalanche_hsf.models import MLPTaskHeads, PerTaskMLPs


def two_conflicting_tasks():
    x = torch.linspace(-1, 1, 32).unsqueeze(1)
    tasks = [AvalancheDataset([TensorDataset(x, sign * torch.sin(3 * x))]) for sign in (1.0, -1.0)]
    return task_incremental_benchmark(benchmark_from_datasets(train=tasks, test=tasks))


def trained(model):
    """`model` after task 0, then after task 1: (its task-0 outputs then, its task-0 outputs now, itself)."""
    torch.manual_seed(0)
    benchmark = two_conflicting_tasks()
    strategy = Naive(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-2),
                     criterion=torch.nn.MSELoss(), train_mb_size=16, train_epochs=5, evaluator=None)
    x = torch.linspace(-1, 1, 32).unsqueeze(1)
    strategy.train(benchmark.train_stream[0])
    model.eval()
    before = model(x, 0).detach().clone()
    strategy.train(benchmark.train_stream[1])
    model.eval()
    return before, model(x, 0).detach(), model


def test_a_network_per_task_leaves_old_tasks_bit_identical():
    before, after, model = trained(PerTaskMLPs(1, 1))
    assert torch.equal(before, after)
    assert sorted(model.per_task) == ["0", "1"]


def test_task_heads_share_the_trunk_so_old_tasks_move():
    before, after, model = trained(MLPTaskHeads(1, 1))
    assert not torch.equal(before, after)  # the trunk was trained on task 1
    assert sorted(model.per_task) == ["0", "1"]


def test_a_batch_of_mixed_tasks_goes_to_each_task_module():
    torch.manual_seed(0)
    _, _, model = trained(PerTaskMLPs(1, 1))
    x = torch.linspace(-1, 1, 6).unsqueeze(1)
    tasks = torch.tensor([0, 1, 0, 1, 1, 0])
    mixed = model(x, tasks)
    for task in (0, 1):
        assert torch.equal(mixed[tasks == task], model(x[tasks == task], task))
