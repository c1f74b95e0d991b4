import pytest

from avalanche_hsf.lab.benchmarks import BENCHMARKS, build_benchmark
from avalanche_hsf.lab.scenario import load_scenario, shipped_scenarios
from avalanche_hsf.lab.strategies import STRATEGIES

REQUIRED = {"split_digits_til", "split_digits_cil", "permuted_digits", "split_mnist5k_til",
            "split_mnist5k_cil", "permuted_mnist5k", "split_mnist", "permuted_mnist", "split_fmnist",
            "split_cifar10", "split_cifar100"}


def test_required_scenario_files_ship():
    assert REQUIRED <= {p.stem for p in shipped_scenarios()}


@pytest.mark.parametrize("path", shipped_scenarios(), ids=lambda p: p.stem)
def test_every_shipped_scenario_validates(path):
    scenario = load_scenario(str(path))
    assert scenario.benchmark in BENCHMARKS
    assert set(scenario.strategies) <= set(STRATEGIES)


@pytest.mark.parametrize("name, setting, n_exp, classes, task_labels", [
    ("split_digits", "task-il", 5, [0, 1], [0, 1, 2, 3, 4]),
    ("split_digits", "class-il", 5, [8, 9], [0, 0, 0, 0, 0]),
    ("permuted_digits", "domain-il", 5, list(range(10)), [0, 0, 0, 0, 0]),
    ("split_mnist5k", "task-il", 5, [0, 1], [0, 1, 2, 3, 4]),
    ("rotated_mnist5k", "task-il", 5, list(range(10)), [0, 1, 2, 3, 4]),
])
def test_embedded_benchmarks_are_avalanche_benchmarks(name, setting, n_exp, classes, task_labels):
    benchmark = build_benchmark(name, setting, {})
    assert len(benchmark.train_stream) == len(benchmark.test_stream) == n_exp
    assert benchmark.train_stream[n_exp - 1].classes_in_this_experience == classes
    assert [e.task_label for e in benchmark.train_stream] == task_labels


def test_embedded_split_is_fixed_and_stratified():
    first = build_benchmark("split_mnist5k", "class-il", {})
    again = build_benchmark("split_mnist5k", "class-il", {})
    x1, x2 = first.test_stream[0].dataset[0][0], again.test_stream[0].dataset[0][0]
    assert (x1 == x2).all()
    # 500 images per class, 20% held out: 100 test images of each class.
    assert [len(e.dataset) for e in first.test_stream] == [200] * 5
    assert x1.shape == (1, 28, 28) and 0.0 <= float(x1.min()) and float(x1.max()) <= 1.0


def test_permutations_differ_between_experiences_but_keep_pixels():
    benchmark = build_benchmark("permuted_digits", "domain-il", {"n_experiences": 2})
    a, b = (benchmark.test_stream[i].dataset[0][0] for i in range(2))
    assert not (a == b).all()
    assert sorted(a.flatten().tolist()) == sorted(b.flatten().tolist())
