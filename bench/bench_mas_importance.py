"""Time MAS importance per sample: per-sample vmap, per-sample Python loop, and per batch.

Run: .venv/bin/python bench/bench_mas_importance.py
Random data, so it never downloads anything; the timings are what matters, not the values.
"""

import time

import torch
from avalanche.models import SimpleMLP
from torch.utils.data import TensorDataset

from avalanche_hsf.models import SmallCNN
from avalanche_hsf.plugins.mas import mas_importance

N_SAMPLES, REPEATS = 512, 3
# Per-sample gradients are memory-bound: small chunks stay in cache (16 was fastest here);
# the per-batch estimator runs at a typical training batch size.
VMAP_CHUNK, BATCH = 16, 64


def loop_importance(model, x):
    """The paper's definition computed one sample at a time: the baseline vmap replaces."""
    model.eval()
    total = [torch.zeros_like(p) for p in model.parameters()]
    for i in range(len(x)):
        grads = torch.autograd.grad(model(x[i:i + 1]).pow(2).sum(), list(model.parameters()))
        for t, g in zip(total, grads):
            t += g.abs()
    return [t / len(x) for t in total]


def best_time(fn) -> float:
    """Best of REPEATS wall-clock runs, in microseconds per sample (the least disturbed run)."""
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) / N_SAMPLES * 1e6


def main():
    # One thread: the ratios stay meaningful on a shared machine, where extra threads spin-wait.
    torch.set_num_threads(1)
    torch.manual_seed(0)
    models = {
        "MLP 784-400-400-10": (SimpleMLP(num_classes=10, input_size=784, hidden_size=400, hidden_layers=2),
                               (1, 28, 28)),
        "SmallCNN(1, 10)": (SmallCNN(1, 10), (1, 28, 28)),
    }
    print(f"{N_SAMPLES} random samples, vmap chunks of {VMAP_CHUNK}, batches of {BATCH}, "
          f"{torch.get_num_threads()} thread, best of {REPEATS}; microseconds per sample")
    for name, (model, shape) in models.items():
        x = torch.randn(N_SAMPLES, *shape)
        data = TensorDataset(x)
        vmap_us = best_time(lambda: mas_importance(model, data, chunk_size=VMAP_CHUNK))
        loop_us = best_time(lambda: loop_importance(model, x))
        batch_us = best_time(lambda: mas_importance(model, data, per_sample=False, chunk_size=BATCH))
        print(f"{name}: vmap {vmap_us:.1f}, loop {loop_us:.1f}, per-batch {batch_us:.1f} | "
              f"loop/vmap {loop_us / vmap_us:.1f}x, vmap/per-batch {vmap_us / batch_us:.1f}x")


if __name__ == "__main__":
    main()
