"""Time per training step of `hsf` relative to `naive` on the same target network, with a breakdown.

Run: OMP_NUM_THREADS=1 .venv/bin/python bench/bench_hsf_step.py
Random data, so it never downloads anything. The `hsf` model and plugin are built from the
registry's defaults (Adam, lr 1e-3, β, γ, reg_tasks, latent size, SDE steps) with the output
regulariser in the hypernetwork of before null_space (`REGULARISED`), as the recorded times were.

The baseline ("naive") is the HSFTarget itself with its own parameters trained directly by the
same optimizer on the same loss without β (cross-entropy + γ · flow NLL): the fairest comparison,
because encoder, SDE, flow and head then do the same work in both, and the ratio is the price of
generating the weights and protecting old tasks. Avalanche's SimpleMLP of the scenario's size
(what the CLI's `naive` trains) is timed too, for scale only.

One step is the training iteration's own work (forward, loss, the plugin's `before_backward`,
backward, optimizer step), without Avalanche's loop around it, which is the same for both.
The breakdown times the model's own functions; a section called inside another (the old tasks'
weight generation inside the regulariser) counts for the outer one; "other" is the rest
(functional_call, standardising, losses, Python).
"""

import time
from collections import defaultdict
from contextlib import contextmanager
from statistics import median
from types import SimpleNamespace

import torch
from avalanche.models import SimpleMLP
from hsf_conflicting_ablation import REGULARISED
from torch import nn

from avalanche_hsf.lab.spec import ModelSpec
from avalanche_hsf.lab.strategies import STRATEGIES
from avalanche_hsf.models.hsf import HSFTarget

BATCH, STEPS, REPEATS = 64, 20, 9
SHAPES = {"split_digits": (64, 100), "split_mnist5k": (784, 400)}  # (inputs, hidden) of the scenarios
LEARNED_TASKS = (4, 16, 64)  # reg_tasks (8) bounds the old tasks regularised per step
SECTIONS = ("weight generation", "encoder", "SDE", "flow", "head", "regulariser", "backward + optimizer", "other")


class Sections:
    """Wall time per labelled section, summed over calls; nested sections count for the outermost."""

    def __init__(self):
        self.totals, self._inside = defaultdict(float), False

    @contextmanager
    def section(self, label):
        if self._inside:
            yield
            return
        self._inside, start = True, time.perf_counter()
        try:
            yield
        finally:
            self.totals[label] += time.perf_counter() - start
            self._inside = False

    def wrap(self, owner, attribute, label):
        function = getattr(owner, attribute)

        def timed(*args, **kwargs):
            with self.section(label):
                return function(*args, **kwargs)
        setattr(owner, attribute, timed)

    def wrap_target(self, target: HSFTarget):
        for owner, attribute, label in ((target.encoder, "forward", "encoder"), (target, "evolve", "SDE"),
                                        (target, "log_prob", "flow"), (target.head, "forward", "head")):
            self.wrap(owner, attribute, label)


def hsf_step(in_features, hidden, learned_tasks, sections):
    """One `hsf` training step on task `learned_tasks`, after that many tasks were learned."""
    entry = STRATEGIES["hsf"]
    hparams = {**entry.defaults, **REGULARISED}
    model = entry.build_model(ModelSpec(hidden_size=hidden), (in_features,), 2, "task-il",
                              **{k: hparams[k] for k in entry.model_params})
    plugin = entry.plugin(**entry.template_hparams(hparams))
    for task in range(learned_tasks):
        model.add_task(task)
        model.class_sets[task] = [0, 1]
    # The plugin's own preparation: new embedding, old ones frozen, regularisation targets stored.
    experience = SimpleNamespace(task_labels=[learned_tasks], current_experience=learned_tasks)
    strategy = SimpleNamespace(model=model, experience=experience, make_optimizer=lambda **_: None, loss=None)
    plugin.before_training_exp(strategy)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=entry.training["lr"])
    sections.wrap_target(model.target)
    for attribute in ("forward", "unflatten"):
        sections.wrap(model.hnet, attribute, "weight generation")
    sections.wrap(plugin, "regularizer", "regulariser")
    x, y = torch.randn(BATCH, in_features), torch.randint(0, 2, (BATCH,))
    task_labels = torch.full((BATCH,), learned_tasks)

    def step():
        strategy.loss = nn.functional.cross_entropy(model(x, task_labels), y)
        plugin.before_backward(strategy)
        with sections.section("backward + optimizer"):
            optimizer.zero_grad()
            strategy.loss.backward()
            optimizer.step()
    return step


def direct_step(model, loss_fn, in_features, sections=None):
    """A plain step of `model`'s own parameters (the `naive` baseline)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=STRATEGIES["hsf"].training["lr"])
    x, y = torch.randn(BATCH, in_features), torch.randint(0, 2, (BATCH,))
    sections = sections or Sections()

    def step():
        loss = loss_fn(model, x, y)
        with sections.section("backward + optimizer"):
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return step


def target_loss(target, x, y):
    gamma = STRATEGIES["hsf"].defaults["gamma"]
    return nn.functional.cross_entropy(target(x), y) - gamma * target.latent_log_prob.mean()


def mlp_loss(mlp, x, y):
    return nn.functional.cross_entropy(mlp(x), y)


def same_target(in_features, hidden):
    """An HSFTarget built like the `hsf` model's, trained directly."""
    hparams = STRATEGIES["hsf"].defaults
    return HSFTarget(in_features, 2, hidden=hidden, latent_dim=hparams["latent_dim"], use_sde=hparams["use_sde"],
                     use_flow=hparams["use_flow"], sde_steps=hparams["sde_steps"],
                     max_diffusion=hparams["max_diffusion"], sde_samples=hparams["sde_samples"],
                     head_hidden=hparams["head_hidden"])


def per_step_ms(seconds, sections):
    """ms per step, and each section's ms per step; "other" is the rest of the step."""
    parts = {label: total / STEPS * 1e3 for label, total in sections.totals.items()}
    total = seconds / STEPS * 1e3
    parts["other"] = total - sum(parts.values())
    return total, parts


def measure(in_features, hidden, learned_tasks):
    """REPEATS runs of STEPS steps each of hsf, the direct target and SimpleMLP, in (ms, parts)."""
    torch.manual_seed(0)
    hsf_sections, target_sections = Sections(), Sections()
    target = same_target(in_features, hidden)
    target_sections.wrap_target(target)
    runs = {"hsf": (hsf_step(in_features, hidden, learned_tasks, hsf_sections), hsf_sections),
            "target": (direct_step(target, target_loss, in_features, target_sections), target_sections),
            "mlp": (direct_step(SimpleMLP(num_classes=2, input_size=in_features, hidden_size=hidden,
                                          hidden_layers=2), mlp_loss, in_features), Sections())}
    for step, _ in runs.values():
        step()  # warm-up
    results = {name: [] for name in runs}
    for _ in range(REPEATS):
        elapsed = dict.fromkeys(runs, 0.0)
        for _, sections in runs.values():
            sections.totals.clear()
        # The models take turns step by step, so that a burst of load from other jobs hits all of them.
        for _ in range(STEPS):
            for name, (step, _) in runs.items():
                start = time.perf_counter()
                step()
                elapsed[name] += time.perf_counter() - start
        for name, (_, sections) in runs.items():
            results[name].append(per_step_ms(elapsed[name], sections))
    return results


def report(shape, in_features, hidden, learned_tasks, results):
    best = {name: min(runs, key=lambda run: run[0]) for name, runs in results.items()}
    hsf, target, mlp = best["hsf"][0], best["target"][0], best["mlp"][0]
    ratios = [h[0] / t[0] for h, t in zip(results["hsf"], results["target"])]
    print(f"\n{shape} ({in_features}-{hidden}, 2 outputs), {learned_tasks} learned tasks: "
          f"hsf {hsf:.2f} ms/step, naive (same target) {target:.2f} ms/step, x{hsf / target:.2f} "
          f"(SimpleMLP {mlp:.2f} ms/step, x{hsf / mlp:.1f})")
    print(f"  hsf/naive per repeat (median x{median(ratios):.2f}): {' '.join(f'x{r:.2f}' for r in ratios)}")
    print("  | component | hsf ms | hsf % | naive ms | naive % |")
    print("  |---|---|---|---|---|")
    for label in SECTIONS:
        h, t = best["hsf"][1].get(label, 0.0), best["target"][1].get(label, 0.0)
        print(f"  | {label} | {h:.2f} | {100 * h / hsf:.0f}% | {t:.2f} | {100 * t / target:.0f}% |")


def main():
    torch.set_num_threads(1)
    print(f"batch {BATCH}, {torch.get_num_threads()} thread, best of {REPEATS} x {STEPS} steps")
    for shape, (in_features, hidden) in SHAPES.items():
        for learned_tasks in LEARNED_TASKS:
            report(shape, in_features, hidden, learned_tasks, measure(in_features, hidden, learned_tasks))


if __name__ == "__main__":
    main()
