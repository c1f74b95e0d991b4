"""A backbone pretrained on classes the stream never shows: the benchmark holds them out, every
strategy starts from the same pretrained backbone, and Piggyback masks it from the first task on
without writing it."""

import pytest
import torch

from avalanche_hsf.errors import UserError
from avalanche_hsf.lab.benchmarks import build_benchmark
from avalanche_hsf.lab.models import build_model
from avalanche_hsf.lab.runner import _pretraining
from avalanche_hsf.lab.scenario import load_scenario
from avalanche_hsf.lab.spec import ModelSpec, TrainingSpec
from avalanche_hsf.lab.sweep import run_scenario
from tests.helpers import scenario_text

HELD = {"pretrain_classes": [0, 1, 2, 3], "pretrain_epochs": 2}


def test_the_pretraining_classes_stay_out_of_every_stream():
    benchmark = build_benchmark("split_digits", "task-il", {"n_experiences": 3, **HELD})
    assert set(benchmark.pretrain_dataset.targets) == {0, 1, 2, 3}
    assert len(benchmark.pretrain_dataset) > 400
    for stream in (benchmark.train_stream, benchmark.valid_stream, benchmark.test_stream):
        assert len(stream) == 3
        seen = {c for exp in stream for c in exp.classes_in_this_experience}
        assert seen == {0, 1}  # task-IL: each task's two classes, counted from zero
    original = build_benchmark("split_digits", "class-il", {"n_experiences": 3, **HELD})
    assert {c for exp in original.train_stream for c in exp.classes_in_this_experience} == set(range(4, 10))


@pytest.mark.parametrize("params, message", [
    ({"pretrain_classes": [0, 1]}, "set both"),
    ({"pretrain_epochs": 3}, "set both"),
    ({"pretrain_classes": [0, 0], "pretrain_epochs": 1}, "distinct classes"),
    ({"pretrain_classes": [0, 1, 2], "pretrain_epochs": 1}, "must divide the 7 classes"),
])
def test_bad_pretraining_settings_are_one_line_errors(params, message):
    with pytest.raises(UserError, match=message):
        build_benchmark("split_digits", "task-il", params)


def test_pretraining_trains_the_backbone_and_leaves_an_untrained_classifier():
    benchmark = build_benchmark("split_digits", "task-il", {"n_experiences": 3, **HELD})
    torch.manual_seed(0)
    plain = build_model(ModelSpec(hidden_size=32), (1, 8, 8), 2, multi_head=False)
    torch.manual_seed(0)
    pretrained = build_model(ModelSpec(hidden_size=32), (1, 8, 8), 2, multi_head=False,
                             prepare=_pretraining(benchmark, TrainingSpec(lr=0.05, momentum=0.9), "cpu"))
    assert not torch.equal(plain.features[0].weight, pretrained.features[0].weight)
    assert torch.equal(plain.classifier.weight, pretrained.classifier.weight)  # the pretraining head is dropped
    x, y = benchmark.pretrain_dataset.tensors
    head = torch.nn.Linear(32, 4)
    features = pretrained.features(x.flatten(1)).detach()
    optimizer = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(100):  # a linear probe on the pretrained features separates the pretraining classes
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(head(features), y).backward()
        optimizer.step()
    assert (head(features).argmax(1) == y).float().mean() > 0.9


def test_piggyback_masks_every_task_of_a_pretrained_backbone_and_forgets_nothing(write_scenario, tmp_path):
    extra = "n_experiences = 3\npretrain_classes = [0, 1, 2, 3]\npretrain_epochs = 2"
    path = write_scenario(scenario_text(strategies=(), epochs=3, extra_benchmark=extra,
                                        strategy_tables="[strategies.piggyback]\npretrained = true\nmask_lr = 0.001\n"))
    results = run_scenario(load_scenario(str(path)), tmp_path, progress=False)
    run = results["strategies"]["piggyback"]["per_seed"][0]
    assert run["bwt"] == 0.0
    assert set(run["mask_sparsity"]) == {"0", "1", "2"}  # the first task learned a mask too
    assert run["acc"] > 0.8


def test_a_strategy_with_its_own_model_is_refused_before_it_runs(write_scenario, tmp_path):
    extra = "n_experiences = 3\npretrain_classes = [0, 1, 2, 3]\npretrain_epochs = 2"
    path = write_scenario(scenario_text(strategies=("hsf",), extra_benchmark=extra))
    with pytest.raises(UserError, match="builds its own model"):
        run_scenario(load_scenario(str(path)), tmp_path, progress=False)
