"""The compatibility fixes: each applies only where its fault is present, says so once through
logging, can be turned off, and changes what Avalanche's own strategies learn."""

import json
import os
import pickle
import subprocess
import sys
import types

import dill
import pytest
import torch
from avalanche.benchmarks.utils import AvalancheDataset
from avalanche.logging import CSVLogger, WandBLogger
from avalanche.training import SynapticIntelligence
from avalanche.training.plugins import MASPlugin
from avalanche.training.plugins.agem import AGEMPlugin
from avalanche.training.plugins.synaptic_intelligence import SynapticIntelligencePlugin
from torch.utils.data import TensorDataset

from avalanche_hsf import compat
from avalanche_hsf.lab.benchmarks import build_benchmark
from avalanche_hsf.lab.models import build_model
from avalanche_hsf.lab.spec import ModelSpec
from tests.helpers import wandb_offline_history

# Imports the package with the fixes' variable set as given, then reports what the fixes saw and did.
PROBE = """
import json, logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="LOG %(message)s")
from avalanche_hsf import compat
before = {fix.name: fix.fault_present() for fix in compat.FIXES}
print(json.dumps({"applied": compat.applied, "fault_present": before}))
"""


def probe(disabled: str | None) -> tuple[dict, list[str]]:
    env = {k: v for k, v in os.environ.items() if k != compat.DISABLE_VARIABLE}
    if disabled is not None:
        env[compat.DISABLE_VARIABLE] = disabled
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True).stdout
    logs = [line for line in out.splitlines() if line.startswith("LOG avalanche-hsf applied fix")]
    return json.loads(out.splitlines()[-1]), logs


def test_every_fix_meets_its_fault_here_and_is_logged_once():
    report, logs = probe(None)
    names = [fix.name for fix in compat.FIXES]
    assert report["applied"] == names  # every fault is present on the pinned stack...
    assert not any(report["fault_present"].values())  # ...and gone once fixed
    assert [line.split()[4] for line in logs] == [f"{name}:" for name in names]  # one line each


def test_the_variable_turns_fixes_off_and_the_faults_stay():
    report, logs = probe("all")
    assert report["applied"] == [] and logs == []
    assert all(report["fault_present"].values())  # what the fixes exist for
    report, _ = probe("si-weight-copy")
    assert report["applied"] == ["optim-submodules", "sentinel-pickle", "agem-pickle", "packnet-hooks", "mas-zero-loss",
                                 "wandb-api", "csv-logger-pickle"]
    assert report["fault_present"]["si-weight-copy"]
    report, _ = probe("agem-pickle")
    assert report["applied"] == ["si-weight-copy", "optim-submodules", "sentinel-pickle", "packnet-hooks",
                                 "mas-zero-loss", "wandb-api", "csv-logger-pickle"]
    assert report["fault_present"]["agem-pickle"]


def test_a_fix_for_other_versions_does_not_apply():
    fix = compat.FIXES[0]
    assert fix.applies() is False  # the fault is gone in this (fixed) process
    other = compat.Fix(fix.name, fix.summary, {"avalanche-lib": "==0.5.*"}, lambda: True, fix.apply)
    assert other.applies() is False  # wrong version: not applied even if a check says the fault is there
    missing = compat.Fix(fix.name, fix.summary, {"no-such-distribution": ">=0"}, lambda: True, fix.apply)
    assert missing.applies() is False


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


def test_agem_pickles_between_experiences_and_samples_as_it_would_have():
    plugin = AGEMPlugin(patterns_per_experience=4, sample_size=2)
    plugin.update_memory(AvalancheDataset([TensorDataset(torch.arange(4.0).unsqueeze(1), torch.arange(4))]))
    loaded = dill.loads(dill.dumps(plugin))  # as save_checkpoint pickles it
    assert len(loaded.buffers) == 1
    torch.manual_seed(0)
    expected = [next(plugin.buffer_dliter) for _ in range(3)]
    torch.manual_seed(0)
    got = [next(loaded.buffer_dliter) for _ in range(3)]
    assert all(torch.equal(a, b) for x, y in zip(expected, got) for a, b in zip(x, y))
    with pytest.raises(TypeError, match="between experiences"):  # mid-experience its position would be lost
        pickle.dumps(plugin)


def test_mas_trains_through_a_perfectly_fit_minibatch():
    """A loss of exactly 0.0 gets the MAS penalty added, instead of stopping training."""
    layer = torch.nn.Linear(2, 1)
    plugin = MASPlugin(lambda_reg=1.0)
    plugin.params = {name: torch.zeros_like(p) for name, p in layer.named_parameters()}
    plugin.importance = {name: torch.ones_like(p) for name, p in layer.named_parameters()}
    strategy = types.SimpleNamespace(clock=types.SimpleNamespace(train_exp_counter=1), model=layer,
                                     loss=torch.tensor(0.0))
    plugin.before_backward(strategy)
    expected = sum((p ** 2).sum() for p in layer.parameters())
    assert strategy.loss.item() == pytest.approx(expected.item()) and strategy.loss.item() > 0


def test_wandb_logger_logs_offline(tmp_path, monkeypatch):
    """Avalanche's own WandBLogger, offline (no account, no network), starts its run and logs a
    number and an image; both are in the offline run's file."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    logger = WandBLogger(project_name="compat", run_name="probe", dir=str(tmp_path), save_code=False,
                         params={"mode": "offline"})
    try:
        logger.log_single_metric("StreamBWT/eval_phase/test_stream", -0.25, 3)
        logger.log_single_metric("StreamBWT/eval_phase/test_stream", 0.5, 7)
    finally:
        logger.wandb.finish()
    rows = wandb_offline_history(tmp_path)
    assert [(row["_step"], row["StreamBWT/eval_phase/test_stream"]) for row in rows] == [(3, -0.25), (7, 0.5)]


def test_csv_logger_pickles_and_appends_after_loading(tmp_path):
    logger = CSVLogger(str(tmp_path))
    logger.print_eval_metrics(0, 0, 0.5, 1.0, 0)
    loaded = dill.loads(dill.dumps(logger))  # as save_checkpoint pickles it
    logger.close()
    loaded.print_eval_metrics(1, 0, 0.25, 2.0, 0)
    loaded.close()
    assert (tmp_path / "eval_results.csv").read_text().splitlines() == [
        "eval_exp,training_exp,eval_accuracy,eval_loss,forgetting", "0,0,0.5000,1.0000,0", "1,0,0.2500,2.0000,0"]
