"""A NaN or inf stops training with an error that names where, before it reaches any state."""

import pytest
import torch
from avalanche.models import SimpleMLP
from avalanche.training import Naive

from avalanche_hsf.errors import DivergedError
from avalanche_hsf.lab.benchmarks import build_benchmark
from avalanche_hsf.lab.cli import main
from avalanche_hsf.models.hsf import HSFTarget
from avalanche_hsf.plugins import FiniteLossGuard
from tests.helpers import scenario_text


class NaNAfter(torch.nn.Module):
    """Cross-entropy that turns NaN from its `n`-th call on."""

    def __init__(self, n):
        super().__init__()
        self.n, self.calls = n, 0

    def forward(self, logits, targets):
        self.calls += 1
        loss = torch.nn.functional.cross_entropy(logits, targets)
        return loss * float("nan") if self.calls >= self.n else loss


def test_guard_stops_before_the_optimizer_step_so_the_weights_stay_finite():
    torch.manual_seed(0)
    benchmark = build_benchmark("split_digits", "class-il", {"n_experiences": 5})
    model = SimpleMLP(num_classes=10, input_size=64, hidden_size=32)
    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), criterion=NaNAfter(5),
                     train_mb_size=32, train_epochs=1, plugins=[FiniteLossGuard()])
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(DivergedError, match="the loss is nan"):
        strategy.train(benchmark.train_stream[0])
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))  # 4 good steps were taken


def test_a_diverging_run_is_one_line_naming_strategy_seed_experience_and_iteration(write_scenario, tmp_path, capsys):
    # EWC with a huge lambda and a large step: the penalty explodes once there is an old task.
    text = scenario_text(strategies=(), strategy_tables="[strategies.ewc]\newc_lambda = 1e9\n")
    code = main(["run", str(write_scenario(text)), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 3
    assert len(err.splitlines()) == 1
    assert err.startswith("avalanche-hsf: error: training diverged: ewc (seed 0), experience 1, epoch 0, iteration ")
    assert "the loss is" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "tiny" / "results.json").exists()


def test_an_sde_blow_up_is_reported_as_divergence():
    target = HSFTarget(4, 2, hidden=8, latent_dim=2, sde_steps=2)
    with torch.no_grad():  # a saturated hidden layer times 1e38 weights overflows float32 in the drift
        target.sde.drift[0].bias.fill_(100.0)
        target.sde.drift[-1].weight.fill_(1e38)
    with pytest.raises(DivergedError, match="latent SDE diverged"):
        target(torch.randn(3, 4))
