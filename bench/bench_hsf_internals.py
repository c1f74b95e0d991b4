"""Two implementation choices inside HSF, measured: how old tasks' weights are generated for the
output regulariser (one batched hypernetwork call per group, or one call per task), and whether
torch.func's `functional_call` searches the target for tied weights.

Run: OMP_NUM_THREADS=1 .venv/bin/python bench/bench_hsf_internals.py
Random data; the models are built like the `hsf` strategy's, on the two scenario shapes. The two
variants of each choice take turns, REPEATS times; the table gives the best ms per call of each and
the ratio of the bests. The notes in bench/NOTES.md quote this script's output.
"""

import time
from functools import partial

import torch
from hsf_conflicting_ablation import EARLIER_HNET
from torch.func import functional_call

from avalanche_hsf.models import hsf_model
from avalanche_hsf.plugins import hsf as hsf_plugin

SHAPES = {"split_digits": (64, 100), "split_mnist5k": (784, 400)}  # (inputs, hidden) of the scenarios
OLD_TASKS, CALLS, REPEATS, BATCH = 8, 10, 7, 64


def best_ms(function) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(CALLS):
            function()
        best = min(best, (time.perf_counter() - start) / CALLS * 1e3)
    return best


def regulariser_step(model, targets, group_weights):
    def step():
        hsf_plugin.GROUP_WEIGHTS = group_weights
        model.zero_grad()
        hsf_plugin.output_regularizer(model, targets, list(targets)).backward()
    return step


def target_call(model, x, tie_weights):
    call = partial(functional_call, tie_weights=tie_weights)

    def run():
        with torch.no_grad():
            call(model.target, model.hnet.unflatten(model.generate(0)), (x,))
    return run


def main():
    torch.manual_seed(0)
    default_group = hsf_plugin.GROUP_WEIGHTS
    print(f"{'shape':<15}{'choice':<44}{'ms (a)':>9}{'ms (b)':>9}{'a / b':>8}")
    for name, (inputs, hidden) in SHAPES.items():
        model = hsf_model((inputs,), 2, hidden=hidden, **EARLIER_HNET)
        for task in range(OLD_TASKS + 1):
            model.add_task(task)
        targets = {j: model.generate(j).detach() + 0.01 for j in range(OLD_TASKS)}
        grouped, single = regulariser_step(model, targets, 2 ** 40), regulariser_step(model, targets, 1)
        a, b = best_ms(grouped), best_ms(single)
        print(f"{name:<15}{'regulariser: (a) one call for 8 tasks, (b) 8':<44}{a:>9.2f}{b:>9.2f}{a / b:>8.2f}")
        x = torch.randn(BATCH, inputs)
        a, b = best_ms(target_call(model, x, True)), best_ms(target_call(model, x, False))
        print(f"{name:<15}{'target call: (a) tie_weights=True, (b) False':<44}{a:>9.2f}{b:>9.2f}{a / b:>8.2f}")
        print(f"{'':<15}(generated weights per task: {model.hnet.num_target_params}; the plugin groups up to "
              f"{max(1, default_group // model.hnet.num_target_params)} tasks per call)")
    hsf_plugin.GROUP_WEIGHTS = default_group


if __name__ == "__main__":
    main()
