"""Time per batch of a Piggyback model relative to the same model unmasked (SimpleMLP 784-400-400).

Run: .venv/bin/python bench/bench_piggyback.py
Random data, so it never downloads anything. Training a masked task multiplies every weight by its
binarised scores. Inference on a finished task uses its masked weights, unpacked from 1 bit per
weight once and cached; the "no cache" row unpacks them on every batch, as before the cache.
"""

import copy
import time

import torch
from avalanche.models import SimpleMLP
from torch import nn

from avalanche_hsf.models import piggyback
from avalanche_hsf.models.piggyback import MaskedWeight

BATCH, STEPS, REPEATS = 64, 30, 5


def best_ms(fn) -> float:
    """Best of REPEATS runs of STEPS calls, in ms per call (the least disturbed run)."""
    fn()  # warm-up
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(STEPS):
            fn()
        times.append(time.perf_counter() - start)
    return min(times) / STEPS * 1e3


def train_step(model, forward, x, y):
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad()
        loss_fn(forward(x), y).backward()
        optimizer.step()
    return step


def inference(forward, x):
    def run():
        with torch.no_grad():
            forward(x)
    return run


def main():
    torch.manual_seed(0)
    dense = SimpleMLP(num_classes=10, input_size=784, hidden_size=400, hidden_layers=2)
    net = piggyback(copy.deepcopy(dense))
    net.begin_task(0, dense=True)  # task 0 trains the backbone, as with the plugin
    net.end_task(0)
    net.begin_task(1)  # task 1 trains masks and a head
    x, y = torch.randn(BATCH, 784), torch.randint(0, 10, (BATCH,))

    base_train = best_ms(train_step(dense, dense, x, y))
    base_infer = best_ms(inference(dense.eval(), x))
    rows = [("train, masked task", best_ms(train_step(net, lambda x: net(x, 1), x, y)), base_train)]
    net.end_task(1)  # packed to 1 bit per weight
    net.eval()
    layers = net.task_layers(MaskedWeight)

    def uncached(x):
        for layer in layers:
            layer._cached = None
        return net(x, 1)
    rows += [("inference, packed task", best_ms(inference(lambda x: net(x, 1), x)), base_infer),
             ("  (no cache)", best_ms(inference(uncached, x)), base_infer),
             ("inference, backbone task", best_ms(inference(lambda x: net(x, 0), x)), base_infer)]

    print(f"SimpleMLP 784-400-400, batch {BATCH}, {torch.get_num_threads()} threads, best of {REPEATS} x {STEPS}")
    print(f"unmasked: train {base_train:.3f} ms/batch, inference {base_infer:.3f} ms/batch")
    for name, ms, base in rows:
        print(f"{name:26s} {ms:8.3f} ms/batch  x{ms / base:.2f} of unmasked")


if __name__ == "__main__":
    main()
