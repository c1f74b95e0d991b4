"""The compatibility fixes change what Avalanche's own strategies learn."""

import torch
from avalanche.training import SynapticIntelligence
from avalanche.training.plugins.synaptic_intelligence import SynapticIntelligencePlugin

import avalanche_hsf  # noqa: F401  (applies the fixes)
from avalanche_hsf.benchmarks import build_benchmark
from avalanche_hsf.models import build_model
from avalanche_hsf.scenario import ModelSpec


def test_si_accumulates_nonzero_importance_on_cpu():
    torch.manual_seed(0)
    benchmark = build_benchmark("split_digits", "task-il", {"n_experiences": 5})
    model = build_model(ModelSpec(hidden_size=32), (1, 8, 8), 2, multi_head=True)
    strategy = SynapticIntelligence(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.05),
                                    criterion=torch.nn.CrossEntropyLoss(), si_lambda=1.0,
                                    train_mb_size=32, train_epochs=1, device="cpu")
    strategy.train(benchmark.train_stream[0])
    plugin = next(p for p in strategy.plugins if isinstance(p, SynapticIntelligencePlugin))
    importance = plugin.ewc_data[1]["model.features.0.weight"].data
    assert importance.abs().sum() > 0  # zero without the fix: old and new weights were one tensor
    assert torch.isfinite(importance).all()
