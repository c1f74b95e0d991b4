"""How well HSF's target network can fit each conflicting_curves task on its own: the target, built
as the tuned `hsf` builds it, trained directly (its own weights, no hypernetwork, no regulariser),
one fresh network per task, beside the seed benchmark's MLP. Scored on the VALIDATION stream.

    OMP_NUM_THREADS=1 .venv/bin/python bench/hsf_target_capacity.py [CONFIG ...] [--seed 1000]

Prints one JSON line per configuration: the mean validation MSE over tasks and each task's. If the
target alone cannot fit a task, no hypernetwork or regulariser setting can.
"""

import argparse
import json
import time

import torch

# bench/ is the script's directory, so on sys.path
from hsf_conflicting_ablation import MLP_PER_TASK_10_TRIALS, RETUNED, TUNED
from torch.nn import functional as F
from torch.utils.data import DataLoader

from avalanche_hsf.lab.runner import scenario_benchmark
from avalanche_hsf.lab.scenario import load_scenario
from avalanche_hsf.models import mlp_autoencoder
from avalanche_hsf.models.hsf import HSFTarget

# The target as the first tuning of hsf built it ([model] hidden_size = 64), and its learning rate.
TUNED_TARGET = {"hidden": 64, **{key: TUNED[key] for key in ("latent_dim", "max_diffusion", "head_hidden")}}
TUNED_LR = TUNED["lr"]

CONFIGS = {
    "mlp": (lambda: mlp_autoencoder(1, 3), MLP_PER_TASK_10_TRIALS["lr"]),
    **{f"target_encoder_{n}": (lambda n=n: HSFTarget(1, 3, encoder_layers=n, **TUNED_TARGET), TUNED_LR)
       for n in (1, 2, 3, 5)},
    "target_encoder_1_no_sde": (lambda: HSFTarget(1, 3, encoder_layers=1, use_sde=False, **TUNED_TARGET), TUNED_LR),
    # The two-layer target at twice the width, and at the second tuning's learning rate.
    "target_encoder_2_width_128": (lambda: HSFTarget(1, 3, encoder_layers=2, **{**TUNED_TARGET, "hidden": 128}),
                                   TUNED_LR),
    "target_encoder_2_lr_retuned": (lambda: HSFTarget(1, 3, encoder_layers=2, **TUNED_TARGET), RETUNED["lr"]),
    # The two-layer target with a hidden layer in its head, after the SDE.
    "target_encoder_2_head_64_lr_retuned": (lambda: HSFTarget(1, 3, encoder_layers=2, **{**TUNED_TARGET,
                                                                                       "head_hidden": 64}),
                                            RETUNED["lr"]),
}


def fit_each_task(make, lr: float, benchmark, epochs: int, batch_size: int, seed: int) -> list[float]:
    mse = []
    for task, (train, valid) in enumerate(zip(benchmark.train_stream, benchmark.valid_stream)):
        torch.manual_seed(seed + task)
        net = make()
        optimizer = torch.optim.Adam(net.parameters(), lr=lr)
        for _ in range(epochs):
            for x, y, *_ in DataLoader(train.dataset, batch_size=batch_size, shuffle=True):
                optimizer.zero_grad()
                F.mse_loss(net(x), y).backward()
                optimizer.step()
        net.eval()
        x, y, *_ = next(iter(DataLoader(valid.dataset, batch_size=len(valid.dataset))))
        with torch.no_grad():
            mse.append(float(F.mse_loss(net(x), y)))
    return mse


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("configs", nargs="*", default=list(CONFIGS))
    parser.add_argument("--seed", type=int, default=1000)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    scenario = load_scenario("conflicting_curves")
    benchmark = scenario_benchmark(scenario)
    for name in args.configs:
        make, lr = CONFIGS[name]
        start = time.perf_counter()
        mse = fit_each_task(make, lr, benchmark, scenario.training.epochs, scenario.training.batch_size, args.seed)
        print(json.dumps({"config": name, "seed": args.seed, "lr": lr, "mean_mse": sum(mse) / len(mse),
                          "per_task": [round(v, 5) for v in mse],
                          "seconds": round(time.perf_counter() - start, 1)}), flush=True)


if __name__ == "__main__":
    main()
