"""Time MAS importance per sample: the default per-sample path, vmap alone, a per-sample Python
loop, and the per-batch estimator; and check the default against the loop.

Run: .venv/bin/python bench/bench_mas_importance.py
Random data, so it never downloads anything; the timings are what matters, not the values.
Targets: the default per-sample path ≥ 5× faster than the loop, and ≤ 3× the per-batch cost.
"""

import inspect
import time
from unittest import mock

import torch
from avalanche.models import SimpleMLP
from torch.utils.data import TensorDataset

from avalanche_hsf.models import SmallCNN
from avalanche_hsf.plugins import mas
from avalanche_hsf.plugins.mas import mas_importance

N_SAMPLES, REPEATS = 512, 5
# The per-sample paths run at mas_importance's default chunk size, as MASPlugin does, and the
# default path also at SMALL_CHUNK; the per-batch estimator at a typical training batch size.
CHUNK = inspect.signature(mas_importance).parameters["chunk_size"].default
SMALL_CHUNK, BATCH = 16, 64


def loop_importance(model, x) -> dict[str, torch.Tensor]:
    """The paper's definition computed one sample at a time: the baseline."""
    model.eval()
    params = dict(model.named_parameters())
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    for i in range(len(x)):
        grads = torch.autograd.grad(model(x[i:i + 1]).pow(2).sum(), list(params.values()))
        for t, g in zip(total.values(), grads):
            t += g.abs()
    return {n: t / len(x) for n, t in total.items()}


def vmap_only_importance(model, data) -> dict[str, torch.Tensor]:
    """The per-sample path with no layer rules: every parameter through vmap over grad."""
    with mock.patch.object(mas, "_LAYER_INPUTS", {}):
        return mas_importance(model, data, chunk_size=CHUNK)


def best_times(fns: dict) -> dict[str, float]:
    """Best of REPEATS wall-clock runs of each function, in microseconds per sample.

    Round-robin, so a burst of load elsewhere on the machine hits every method alike."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(REPEATS):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: t / N_SAMPLES * 1e6 for name, t in best.items()}


def main():
    # One thread: the ratios stay meaningful on a shared machine, where extra threads spin-wait.
    torch.set_num_threads(1)
    torch.manual_seed(0)
    # (model, input shape): MNIST-sized inputs, and the 8x8 digits of the embedded scenarios, where
    # the same CNN does 12x fewer convolution FLOPs per sample.
    models = {
        "MLP 784-400-400-10": (SimpleMLP(num_classes=10, input_size=784, hidden_size=400, hidden_layers=2),
                               (1, 28, 28)),
        "SmallCNN(1, 10) on 1x28x28": (SmallCNN(1, 10), (1, 28, 28)),
        "SmallCNN(1, 10) on 1x8x8": (SmallCNN(1, 10), (1, 8, 8)),
    }
    print(f"{N_SAMPLES} random samples, per-sample chunks of {CHUNK}, batches of {BATCH}, "
          f"{torch.get_num_threads()} thread, best of {REPEATS}; microseconds per sample")
    for name, (model, shape) in models.items():
        x = torch.randn(N_SAMPLES, *shape)
        data = TensorDataset(x)
        exact, loop = mas_importance(model, data, chunk_size=CHUNK), loop_importance(model, x)
        max_diff = max((exact[n] - loop[n]).abs().max().item() for n in exact)
        us = best_times({
            "default": lambda: mas_importance(model, data, chunk_size=CHUNK),
            f"default@{SMALL_CHUNK}": lambda: mas_importance(model, data, chunk_size=SMALL_CHUNK),
            "vmap only": lambda: vmap_only_importance(model, data),
            "loop": lambda: loop_importance(model, x),
            "per-batch": lambda: mas_importance(model, data, per_sample=False, batch_size=BATCH),
        })
        print(f"{name}: " + ", ".join(f"{k} {v:.1f}" for k, v in us.items())
              + f" | loop/default {us['loop'] / us['default']:.1f}x (target >= 5), "
              f"default/per-batch {us['default'] / us['per-batch']:.1f}x (target <= 3) "
              f"| max |default - loop| {max_diff:.1e}")


if __name__ == "__main__":
    main()
