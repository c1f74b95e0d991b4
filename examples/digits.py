"""split_digits in plain Avalanche: scikit-learn's 8x8 digits (shipped inside scikit-learn, so no
download), a fixed stratified train/test split, 5 task-labelled experiences of 2 classes each."""

import torch
from avalanche.benchmarks import nc_benchmark
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.utils.data import TensorDataset


class LabelledTensors(TensorDataset):
    """A TensorDataset with the `targets` attribute that Avalanche's generators read."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        super().__init__(images, labels)
        self.targets = labels.tolist()


def split_digits(n_experiences: int = 5):
    digits = load_digits()
    images = torch.tensor(digits.data, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    labels = torch.tensor(digits.target)
    x_train, x_test, y_train, y_test = train_test_split(images, labels, test_size=0.25, stratify=labels,
                                                        random_state=0)
    return nc_benchmark(LabelledTensors(x_train, y_train), LabelledTensors(x_test, y_test), n_experiences,
                        task_labels=True, shuffle=False, fixed_class_order=list(range(10)),
                        class_ids_from_zero_in_each_exp=True)
