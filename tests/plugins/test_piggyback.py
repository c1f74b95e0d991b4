"""Piggyback, the plugin: real training on
split_digits (frozen backbone, bit-identical old tasks, packed masks, optimizer contents), the
task-label errors, the numerical guard, and a run through the runner."""

import io
import math
from types import SimpleNamespace

import pytest
import torch
from avalanche.core import SupervisedPlugin
from avalanche.models import SimpleMLP
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from torch import nn
from torch.utils.data import DataLoader

from avalanche_hsf.errors import UserError
from avalanche_hsf.lab.benchmarks import build_benchmark
from avalanche_hsf.lab.scenario import load_scenario
from avalanche_hsf.lab.state_size import state_bytes
from avalanche_hsf.lab.strategies import validate_strategy
from avalanche_hsf.lab.sweep import run_scenario
from avalanche_hsf.models import piggyback
from avalanche_hsf.models.piggyback import THRESHOLD, MaskedWeight, TaskBatchNorm
from avalanche_hsf.plugins import PiggybackPlugin
from tests.helpers import TinyBNNet, digits_mlp


def make_strategy(net, *plugins, epochs=2, **options):
    return Naive(model=net, optimizer=torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9),
                 criterion=nn.CrossEntropyLoss(), train_mb_size=32, train_epochs=epochs, eval_mb_size=512,
                 plugins=[*plugins, PiggybackPlugin(**options)], evaluator=EvaluationPlugin())


def backbone(net):
    """The shared weights: everything the model had before conversion."""
    return {n: p.detach().clone() for n, p in net.named_parameters()
            if ".scores." not in n and ".trainable." not in n}


class Recorder(SupervisedPlugin):
    """Placed before PiggybackPlugin: sees each task's scores just before they are packed, and the
    optimizer's parameters during training."""

    def __init__(self):
        super().__init__()
        self.binarized, self.optimized, self.trainable = {}, {}, {}

    def before_training_iteration(self, strategy, **kwargs):
        task = strategy.experience.task_labels[0]
        self.optimized[task] = {id(p) for g in strategy.optimizer.param_groups for p in g["params"]}
        self.trainable[task] = {n for n, p in strategy.model.named_parameters() if p.requires_grad}
        self.all_params = {id(p) for p in strategy.model.parameters()}

    def after_training_exp(self, strategy, **kwargs):
        task = strategy.experience.task_labels[0]
        masked = [layer for layer in strategy.model.task_layers(MaskedWeight) if str(task) in layer.scores]
        if masked:
            self.binarized[task] = [layer.scores[str(task)].detach() > THRESHOLD for layer in masked]


def test_only_the_current_tasks_scores_and_head_get_gradients():
    net = piggyback(digits_mlp())
    net.begin_task(0, dense=True)
    net.end_task(0)
    net.begin_task(1)
    net(torch.randn(4, 1, 8, 8), 1).sum().backward()
    for name, p in net.named_parameters():
        if ".scores.1" in name or ".trainable.1." in name:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None, name


@pytest.fixture(scope="module")
def digits_run():
    """Five tasks of split_digits, with snapshots of the backbone and every task's test outputs."""
    torch.manual_seed(0)
    benchmark = build_benchmark("split_digits", "task-il", {})
    net = piggyback(digits_mlp())
    recorder = Recorder()
    strategy = make_strategy(net, recorder, mask_lr=1e-3)  # masks learned within 2 epochs
    tests = [(next(iter(DataLoader(exp.dataset, batch_size=len(exp.dataset))))[0], exp.task_labels[0])
             for exp in benchmark.test_stream]
    backbones, outputs = [], []
    for exp in benchmark.train_stream:
        strategy.train(exp)
        net.eval()
        with torch.no_grad():
            outputs.append([net(x, t) for x, t in tests])
        backbones.append(backbone(net))
    return SimpleNamespace(net=net, strategy=strategy, recorder=recorder, backbones=backbones, outputs=outputs)


def test_backbone_is_bit_identical_after_the_first_task(digits_run):
    first = digits_run.backbones[0]
    for later in digits_run.backbones[1:3]:
        assert later.keys() == first.keys()
        assert all(torch.equal(later[n], first[n]) for n in first)


def test_old_tasks_outputs_are_bit_identical_after_two_more_tasks(digits_run):
    for task in range(3):
        assert torch.equal(digits_run.outputs[task + 2][task], digits_run.outputs[task][task])
    # ...and the masks did learn something: some weights were switched off.
    assert any((~layer.mask(task)).any() for task in range(1, 5) for layer in digits_run.net.task_layers(MaskedWeight))


def test_packed_masks_equal_the_thresholded_scores_at_one_bit_per_weight(digits_run):
    layers = digits_run.net.task_layers(MaskedWeight)
    assert digits_run.recorder.binarized.keys() == {1, 2, 3, 4}  # task 0 trained the backbone: no mask
    mask_bytes = 0
    for task, binarized in digits_run.recorder.binarized.items():
        assert len(binarized) == len(layers) == 2
        for layer, expected in zip(layers, binarized):
            packed = layer.finished[str(task)].mask
            assert packed.dtype == torch.uint8 and packed.numel() == math.ceil(layer.weight.numel() / 8)
            assert torch.equal(layer.mask(task), expected)
            mask_bytes += packed.numel()
        assert all(len(layer.scores) == 0 for layer in layers)  # float scores dropped
    head_bytes = 5 * (32 * 2 + 2) * 4
    strategy = digits_run.strategy
    counted = state_bytes(digits_run.net.task_state(), exclude=(strategy.model, strategy.optimizer, strategy))
    assert counted == mask_bytes + head_bytes


def test_optimizer_holds_the_live_parameters_and_only_the_current_task_trains(digits_run):
    rec = digits_run.recorder
    assert rec.optimized[4] <= rec.all_params  # finished tasks' parameters were removed
    for task in range(1, 5):
        assert rec.trainable[task] and all(f".scores.{task}" in n or f".trainable.{task}." in n
                                           for n in rec.trainable[task])


def test_state_dict_holds_the_finished_tasks_and_a_saved_model_reproduces_them(digits_run):
    net = digits_run.net
    keys = net.state_dict().keys()
    assert {f"model.classifier.finished.{t}.weight" for t in range(5)} <= keys
    assert {f"model.features.0.finished.{t}.mask" for t in range(1, 5)} <= keys
    buffer = io.BytesIO()
    torch.save(net, buffer)
    buffer.seek(0)
    restored = torch.load(buffer, weights_only=False).eval()
    x = torch.rand(7, 1, 8, 8)
    with torch.no_grad():
        assert all(torch.equal(restored(x, t), net.eval()(x, t)) for t in range(5))


def test_pretrained_backbone_and_frozen_batchnorm_are_never_written():
    torch.manual_seed(0)
    benchmark = build_benchmark("split_digits", "task-il", {})
    net = piggyback(TinyBNNet())
    before = backbone(net)
    bn_stats = net.model.features[1].source.running_mean.clone()
    strategy = make_strategy(net, epochs=1, pretrained=True, per_task_bn=True)
    for exp in benchmark.train_stream[:2]:
        strategy.train(exp)
    after = backbone(net)
    assert all(torch.equal(after[n], before[n]) for n in before)
    assert torch.equal(net.model.features[1].source.running_mean, bn_stats)
    bn = net.task_layers(TaskBatchNorm)[0]
    assert set(bn.finished) == {"0", "1"} and not torch.equal(bn.finished["0"].running_mean, bn_stats)


def test_class_incremental_scenario_gets_a_clear_error():
    benchmark = build_benchmark("split_digits", "class-il", {})
    strategy = make_strategy(piggyback(SimpleMLP(num_classes=10, input_size=64, hidden_size=16)), epochs=1)
    strategy.train(benchmark.train_stream[0])
    with pytest.raises(ValueError, match="task labels"):
        strategy.train(benchmark.train_stream[1])


def test_missing_task_labels_get_a_clear_error():
    plugin = PiggybackPlugin()
    strategy = SimpleNamespace(model=piggyback(digits_mlp()), experience=SimpleNamespace(current_experience=0),
                               mbatch=[torch.zeros(2, 64), torch.zeros(2)])
    with pytest.raises(ValueError, match="task labels"):
        plugin.before_training_exp(strategy)
    with pytest.raises(ValueError, match="task labels"):
        plugin.before_training_iteration(strategy)
    with pytest.raises(ValueError, match="task labels"):
        plugin.before_eval_exp(strategy)


def test_non_finite_scores_are_never_packed():
    net = piggyback(digits_mlp())
    net.begin_task(0)
    layer = net.task_layers(MaskedWeight)[0]
    with torch.no_grad():
        layer.scores["0"][0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="not finite"):
        net.end_task(0)
    assert "0" not in layer.finished


def test_mask_options_are_checked():
    with pytest.raises(ValueError, match="above threshold"):
        PiggybackPlugin(mask_init=1e-3, threshold=5e-3)
    with pytest.raises(UserError, match="above threshold"):
        validate_strategy("piggyback", "task-il", {"mask_init": 0.001}, "strategies.piggyback",
                          load_scenario("split_digits_til").training)
    with pytest.raises(UserError, match="does not fit setting"):
        validate_strategy("piggyback", "class-il", {}, "strategies.piggyback",
                          load_scenario("split_digits_til").training)


def test_the_default_mask_optimizer_switches_weights_off_within_one_short_task():
    """The paper's Adam at lr 1e-4 from scores of 1e-2: one task of 10 epochs on split_digits
    (about 100 steps) moves the scores and switches a measurable fraction of weights off."""
    torch.manual_seed(0)
    benchmark = build_benchmark("split_digits", "task-il", {})
    net = piggyback(SimpleMLP(num_classes=10, input_size=64, hidden_size=100, hidden_layers=2, drop_rate=0.0))
    strategy = make_strategy(net, epochs=10)
    for exp in benchmark.train_stream[:2]:
        strategy.train(exp)
    plugin = next(p for p in strategy.plugins if isinstance(p, PiggybackPlugin))
    assert (plugin.mask_optimizer, plugin.mask_lr, plugin.mask_init, plugin.threshold) == ("adam", 1e-4, 1e-2, 5e-3)
    sparsity = net.mask_sparsity()
    assert list(sparsity) == [1]  # task 0 trained the backbone
    assert sparsity[1]["total"] > 1e-3 and all(0 < f < 0.1 for f in sparsity[1]["layers"].values())


class OptimizerRecorder(SupervisedPlugin):
    """Placed after PiggybackPlugin: what each optimizer holds while task 1 trains."""

    def before_training_iteration(self, strategy, **kwargs):
        plugin = next(p for p in strategy.plugins if isinstance(p, PiggybackPlugin))
        if plugin.optimizer is None:  # task 0 trains the backbone: no masks
            return
        self.strategy_params = {id(p) for g in strategy.optimizer.param_groups for p in g["params"]}
        self.mask_params = {id(p) for g in plugin.optimizer.param_groups for p in g["params"]}
        self.mask_optimizer = plugin.optimizer
        self.scores = {id(p) for p in strategy.model.mask_scores()}
        self.head = {id(p) for p in strategy.model.heads.trainable.parameters()}


def test_the_scores_are_the_mask_optimizers_alone_and_the_heads_the_strategys():
    torch.manual_seed(0)
    benchmark = build_benchmark("split_digits", "task-il", {})
    net = piggyback(digits_mlp())
    recorder = OptimizerRecorder()
    strategy = Naive(model=net, optimizer=torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9),
                     criterion=nn.CrossEntropyLoss(), train_mb_size=32, train_epochs=1,
                     plugins=[PiggybackPlugin(), recorder], evaluator=EvaluationPlugin())
    strategy.train(benchmark.train_stream[0])
    strategy.train(benchmark.train_stream[1])
    assert recorder.scores and recorder.mask_params == recorder.scores
    assert isinstance(recorder.mask_optimizer, torch.optim.Adam)
    assert recorder.mask_optimizer.param_groups[0]["lr"] == 1e-4
    assert not recorder.scores & recorder.strategy_params  # never stepped by the strategy's SGD...
    assert recorder.head and recorder.head <= recorder.strategy_params  # ...which trains the head


def test_the_heads_only_control_learns_no_mask_and_leaves_the_backbone_alone():
    torch.manual_seed(0)
    benchmark = build_benchmark("split_digits", "task-il", {})
    net = piggyback(digits_mlp())
    strategy = make_strategy(net, epochs=1, masks=False)
    strategy.train(benchmark.train_stream[0])
    before = backbone(net)
    for exp in benchmark.train_stream[1:3]:
        strategy.train(exp)
    assert net.mask_sparsity() == {} and not net.mask_scores()
    assert all(torch.equal(backbone(net)[n], before[n]) for n in before)
    assert net.finished_tasks == {0, 1, 2}  # each task kept its own head


def test_runner_gives_exactly_zero_backward_transfer_and_reports_mask_sparsity(tmp_path):
    results = run_scenario(load_scenario("split_digits_til"), tmp_path, strategies=["piggyback"], seeds=[0],
                           epochs=2, progress=False)
    r = results["strategies"]["piggyback"]
    assert r["bwt"] == 0.0
    assert r["acc"] > 0.8
    run = r["per_seed"][0]
    assert set(run["mask_sparsity"]) <= {"1", "2", "3", "4"}
    totals = [task["total"] for task in run["mask_sparsity"].values()]
    assert all(0 <= t <= 1 for t in totals)
    assert r["mask_off"] == (sum(totals) / len(totals) if totals else None)
    assert r["trained_parameters"] > 4 * (64 * 100 + 100 * 100)  # the mask optimizer's scores count too
    # 4 masked tasks x (64*100 + 100*100) bits, and 5 heads of 100*2 + 2 floats, over 5 tasks.
    assert r["extra_state_bytes_per_task"] == (4 * (64 * 100 + 100 * 100) // 8 + 5 * 202 * 4) // 5
