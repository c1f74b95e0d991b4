"""MASPlugin: the importance estimator against brute force, its properties, real training runs,
dynamic heads, checkpointing and bad input."""

import io
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch
from avalanche.models import IncrementalClassifier, MultiTaskModule, SimpleMLP, as_multitask
from avalanche.models.utils import avalanche_model_adaptation
from avalanche.training import MAS, Naive
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from avalanche_hsf.errors import DivergedError
from avalanche_hsf.lab.benchmarks import build_benchmark
from avalanche_hsf.lab.scenario import load_scenario
from avalanche_hsf.lab.strategies import STRATEGIES, build_strategy
from avalanche_hsf.lab.sweep import run_scenario
from avalanche_hsf.plugins import MASPlugin
from avalanche_hsf.plugins import mas as mas_module
from avalanche_hsf.plugins.mas import mas_importance


class WithUnused(nn.Module):
    """A tiny net with dropout and BatchNorm, plus a layer that never touches the output."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8), nn.ReLU(),
                                 nn.Dropout(0.5), nn.Linear(8, 3))
        self.unused = nn.Linear(4, 4)

    def forward(self, x):
        return self.net(x)


def tiny_data(n=23, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 4, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


def brute_force_importance(model, x, tasks=None):
    """The paper's definition, one sample at a time with plain autograd (through its own head)."""
    model.eval()
    total = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for i in range(len(x)):
        model.zero_grad()
        args = (x[i:i + 1],) if tasks is None else (x[i:i + 1], int(tasks[i]))
        model(*args).pow(2).sum().backward()
        for n, p in model.named_parameters():
            if p.grad is not None:
                total[n] += p.grad.abs()
    return {n: t / len(x) for n, t in total.items()}


class ConvMix(nn.Module):
    """Conv2d and Linear layers the exact path takes, among a grouped convolution, BatchNorm2d
    and LayerNorm it must leave to vmap, with an in-place ReLU after a convolution."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(4, 4, 3, padding=1, groups=2), nn.BatchNorm2d(4), nn.Tanh(),
            nn.Conv2d(4, 6, 2, stride=2, dilation=1), nn.Flatten(),
            nn.Linear(24, 8), nn.LayerNorm(8), nn.ReLU(inplace=True), nn.Linear(8, 3))
        self.net[3].running_mean.uniform_(-1, 1)

    def forward(self, x):
        return self.net(x)


class Reused(nn.Module):
    """Linear layers on several rows per sample, called twice, or with a weight also used
    directly: all for vmap."""

    def __init__(self):
        super().__init__()
        self.rows, self.seq, self.twice, self.tied, self.out = (nn.Linear(4, 4) for _ in range(5))

    def forward(self, x):
        h = torch.tanh(self.rows(x.reshape(-1, 4))).reshape(len(x), 4, 4)  # 2-D, 4 rows per sample
        h = torch.tanh(self.seq(h)).mean(1)  # a sequence of 4 rows per sample
        h = torch.tanh(self.twice(torch.tanh(self.twice(h))))
        h = torch.tanh(self.tied(h)) @ self.tied.weight
        return self.out(h)


# model, names whose importance vmap must compute (everything else takes the exact path)
EXACTNESS_CASES = {
    "linear + batchnorm": (lambda: trained_batchnorm_model(), {"net.2.weight", "net.2.bias"}),
    "conv + linear + norms": (ConvMix, {"net.2.weight", "net.2.bias", "net.3.weight", "net.3.bias",
                                        "net.8.weight", "net.8.bias"}),
    "reused parameters": (Reused, {"rows.weight", "rows.bias", "seq.weight", "seq.bias", "twice.weight",
                                   "twice.bias", "tied.weight"}),
}


def vmap_spy(monkeypatch) -> set:
    """Names `mas_importance` hands to the vmap fallback, collected into the returned set."""
    names, vmap_abs_grads = set(), mas_module._vmap_abs_grads

    def spy(model, params, buffers, subset, x, task):
        names.update(subset)
        return vmap_abs_grads(model, params, buffers, subset, x, task)

    monkeypatch.setattr(mas_module, "_vmap_abs_grads", spy)
    return names


def fake_strategy(model, dataset, exp=0):
    return SimpleNamespace(model=model, experience=SimpleNamespace(dataset=dataset, current_experience=exp))


def trained_batchnorm_model():
    torch.manual_seed(0)
    model = WithUnused()
    model.net[2].running_mean.uniform_(-1, 1)  # eval mode must use these, not batch statistics
    model.net[2].running_var.uniform_(0.5, 2)
    return model


@pytest.mark.parametrize("case", EXACTNESS_CASES)
def test_per_sample_importance_equals_a_brute_force_loop_and_restores_the_mode(monkeypatch, case):
    make_model, vmap_names = EXACTNESS_CASES[case]
    torch.manual_seed(0)
    model = make_model()
    x, y = tiny_data()
    model.train()
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    sent_to_vmap = vmap_spy(monkeypatch)
    fast = mas_importance(model, TensorDataset(x, y), chunk_size=7)  # 23 samples: uneven chunks
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(b, buffers[n]) for n, b in model.named_buffers())  # BatchNorm statistics kept
    assert sent_to_vmap == vmap_names
    slow = brute_force_importance(model, x)
    for name in slow:
        assert fast[name].abs().max() > 0 or "unused" in name, name  # a comparison of zeros proves nothing
        assert torch.allclose(fast[name], slow[name], atol=1e-6, rtol=0), name


class ThreeHeads(MultiTaskModule):
    """A shared Conv2d/Linear body and one Linear head per task; head 2 sees no data."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(108, 8), nn.Tanh())
        self.heads = nn.ModuleDict({str(t): nn.Linear(8, 2) for t in range(3)})

    def forward_single_task(self, x, task_label):
        return self.heads[str(task_label)](self.body(x))


def avalanche_two_heads(benchmark):
    """Avalanche's own multi-head model, with the heads of tasks 0 and 1."""
    model = as_multitask(SimpleMLP(num_classes=2, input_size=64, hidden_size=16), "classifier")
    for experience in benchmark.train_stream[:2]:
        avalanche_model_adaptation(model, experience)
    return model


# model, name of the weight of head {task}
MULTI_HEAD_CASES = {"own heads": (ThreeHeads, "heads.{}.weight"),
                    "as_multitask": (avalanche_two_heads, "classifier.classifiers.{}.classifier.weight")}


@pytest.mark.parametrize("case", MULTI_HEAD_CASES)
def test_multi_head_importance_goes_through_each_samples_own_head(digits_til, monkeypatch, case):
    first, second = (exp.dataset for exp in digits_til.train_stream[:2])
    both = first.concat(second)
    data = both.subset(torch.randperm(len(both), generator=torch.Generator().manual_seed(0))[:31].tolist())
    x = torch.stack([data[i][0] for i in range(len(data))])
    tasks = torch.tensor([data[i][2] for i in range(len(data))])
    assert 0 < tasks.sum() < len(tasks)  # chunks of 8 mix both tasks
    make_model, head = MULTI_HEAD_CASES[case]
    torch.manual_seed(0)
    model = make_model(digits_til) if make_model is avalanche_two_heads else make_model()
    sent_to_vmap = vmap_spy(monkeypatch)
    fast = mas_importance(model, data, chunk_size=8)
    slow = brute_force_importance(model, x, tasks)
    assert not sent_to_vmap
    for name in slow:
        assert torch.allclose(fast[name], slow[name], atol=1e-6, rtol=0), name
    assert fast[head.format(0)].sum() > 0 and fast[head.format(1)].sum() > 0
    assert head.format(2) not in fast or torch.count_nonzero(fast[head.format(2)]) == 0  # no task-2 data


def test_vmap_fallback_alone_equals_the_exact_layer_path():
    """With no layer rules every parameter goes through vmap; both must agree."""
    torch.manual_seed(0)
    model = ConvMix()
    data = TensorDataset(tiny_data()[0])
    exact = mas_importance(model, data, chunk_size=7)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mas_module, "_LAYER_INPUTS", {})
        fallback = mas_importance(model, data, chunk_size=7)
    for name in exact:
        assert torch.allclose(exact[name], fallback[name], atol=1e-6, rtol=0), name


def test_importance_is_nonnegative_zero_where_unused_and_ignores_labels():
    model = trained_batchnorm_model()
    x, y = tiny_data()
    omega = mas_importance(model, TensorDataset(x, y))
    shuffled = mas_importance(model, TensorDataset(x, y[torch.randperm(len(y))]))
    unlabelled = mas_importance(model, TensorDataset(x))
    for name, value in omega.items():
        assert (value >= 0).all()
        assert torch.equal(value, shuffled[name]) and torch.equal(value, unlabelled[name])
    assert torch.count_nonzero(omega["unused.weight"]) == 0 and torch.count_nonzero(omega["unused.bias"]) == 0
    assert omega["net.1.weight"].sum() > 0


def test_per_batch_estimator_matches_per_sample_at_batch_size_one_and_is_never_larger():
    model = trained_batchnorm_model()
    data = TensorDataset(*tiny_data())
    per_sample = mas_importance(model, data)
    batch_of_one = mas_importance(model, data, per_sample=False, batch_size=1)
    per_batch = mas_importance(model, data, per_sample=False, batch_size=8)
    for name in per_sample:
        assert torch.allclose(batch_of_one[name], per_sample[name], atol=1e-6)
        assert (per_batch[name] <= per_sample[name] + 1e-6).all()


class BareTensors(Dataset):
    """Unlabelled data whose batches are plain tensors."""

    def __init__(self, x):
        self.x = x

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i]


def test_importance_data_may_be_bare_tensors_or_tuples_with_extra_elements():
    model = trained_batchnorm_model()
    x, y = tiny_data()
    reference = mas_importance(model, TensorDataset(x))
    for data in (BareTensors(x), TensorDataset(x, y, torch.zeros(len(x)), y)):
        for name, value in mas_importance(model, data).items():
            assert torch.allclose(value, reference[name], atol=1e-7)


def test_accumulation_modes():
    first, second = {"w": torch.tensor([1.0, 4.0])}, {"w": torch.tensor([3.0, 0.0])}
    expected = {"sum": [4.0, 4.0], "average": [2.0, 2.0], "ema": [1.5, 3.0]}
    for mode, values in expected.items():
        plugin = MASPlugin(accumulate=mode, alpha=0.75)
        plugin._accumulate(first)
        plugin._accumulate(second)
        assert plugin.importance["w"].tolist() == pytest.approx(values if mode != "ema" else
                                                                [0.75 * 1 + 0.25 * 3, 0.75 * 4])


# --- real training ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits_til():
    return build_benchmark("split_digits", "task-il", {"n_experiences": 5})


def train(model, benchmark, plugin, n_experiences=2):
    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
                     criterion=nn.CrossEntropyLoss(), train_mb_size=32, train_epochs=1,
                     plugins=[plugin], evaluator=None)
    for experience in benchmark.train_stream[:n_experiences]:
        strategy.train(experience)
    return strategy


@pytest.mark.parametrize("multi_head", [False, True])
def test_trains_single_and_multi_head_and_constrains_only_known_heads(digits_til, multi_head):
    torch.manual_seed(0)
    model = SimpleMLP(num_classes=2, input_size=64, hidden_size=32)
    model = as_multitask(model, "classifier") if multi_head else model
    plugin = MASPlugin()
    train(model, digits_til, plugin)
    assert plugin.n_experiences == 2
    assert all(torch.isfinite(v).all() and v.device == next(model.parameters()).device
               for v in plugin.importance.values())
    if multi_head:
        # Head 1 was added at experience 1 and got importance from its own task's data.
        heads = {t: f"classifier.classifiers.{t}.classifier.weight" for t in (0, 1)}
        assert plugin.importance[heads[1]].sum() > 0 and plugin.importance[heads[0]].sum() > 0
        new_head = model.classifier.classifiers["1"].classifier.weight
        with torch.no_grad():
            new_head.add_(1.0)  # moving a head the penalty already knows must cost something
        assert plugin.penalty(model) > 0


def test_a_head_added_after_the_importance_is_skipped(digits_til):
    torch.manual_seed(0)
    model = as_multitask(SimpleMLP(num_classes=2, input_size=64, hidden_size=32), "classifier")
    plugin = MASPlugin()
    strategy = train(model, digits_til, plugin, n_experiences=1)
    model.train()
    model.adaptation(digits_til.train_stream[1])  # adds head 1, which has no importance yet
    assert "classifier.classifiers.1.classifier.weight" not in plugin.importance
    assert plugin.penalty(model) == 0  # nothing has moved since the anchor
    strategy.train(digits_til.train_stream[1])
    assert "classifier.classifiers.1.classifier.weight" in plugin.importance


def test_a_grown_head_is_padded_not_a_crash():
    benchmark = build_benchmark("split_digits", "class-il", {"n_experiences": 5})
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), IncrementalClassifier(16, 2))
    plugin = MASPlugin()
    train(model, benchmark, plugin, n_experiences=3)
    head = model[3].classifier.weight
    assert head.shape[0] == 6 and plugin.importance["3.classifier.weight"].shape == head.shape


def test_state_dict_round_trip_gives_the_same_penalty(digits_til):
    torch.manual_seed(0)
    model = as_multitask(SimpleMLP(num_classes=2, input_size=64, hidden_size=32), "classifier")
    plugin = MASPlugin(lambda_reg=2.0)
    train(model, digits_til, plugin)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    buffer = io.BytesIO()
    torch.save(plugin.state_dict(), buffer)
    buffer.seek(0)
    restored = MASPlugin(lambda_reg=2.0)
    restored.load_state_dict(torch.load(buffer))
    assert restored.penalty(model) > 0
    assert torch.equal(restored.penalty(model), plugin.penalty(model))


def test_split_digits_til_mas_forgets_less_than_naive(tmp_path):
    scenario = load_scenario("split_digits_til")
    # The paper's lambda = 1 and the scenario's [training] optimizer for both, fixed here so the test
    # does not follow the scenario's tuning.
    scenario = replace(scenario, strategies={"naive": {}, "mas": {"lambda_reg": 1.0}})
    results = run_scenario(scenario, tmp_path, strategies=["naive", "mas"], seeds=[0], epochs=2, progress=False)
    naive, mas = (results["strategies"][name] for name in ("naive", "mas"))
    # Naive still ends task 0 near 0.97 here and 1.0 is the ceiling, so a few points is all there is.
    assert mas["acc_matrix"][-1][0] >= naive["acc_matrix"][-1][0] + 0.03
    assert mas["bwt"] >= naive["bwt"] + 0.03
    assert mas["extra_state_bytes_per_task"] > 0


def test_registry_builds_both_mas_entries():
    model = SimpleMLP(num_classes=2, input_size=64, hidden_size=8)
    make = lambda m: torch.optim.SGD(m.parameters(), lr=0.1)  # noqa: E731
    ours = build_strategy("mas", STRATEGIES["mas"].defaults, model=model, make_optimizer=make,
                          criterion=nn.CrossEntropyLoss())
    assert isinstance(ours.plugins[0], MASPlugin) and ours.plugins[0].accumulate == "sum"
    theirs = build_strategy("mas_avalanche", STRATEGIES["mas_avalanche"].defaults, model=model, make_optimizer=make,
                            criterion=nn.CrossEntropyLoss())
    assert isinstance(theirs, MAS) and STRATEGIES["mas_avalanche"].defaults == {"lambda_reg": 1.0, "alpha": 0.5}


# --- bad input ----------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"lambda_reg": -1.0}, "lambda_reg"),
    ({"accumulate": "max"}, "accumulate"),
    ({"alpha": 1.5}, "alpha"),
    ({"chunk_size": 0}, "chunk_size"),
    ({"batch_size": 0}, "batch_size"),
    ({"importance_data": TensorDataset(torch.zeros(0, 4))}, "empty"),
])
def test_bad_arguments_are_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MASPlugin(**kwargs)


def test_empty_training_data_is_a_value_error_naming_the_experience():
    with pytest.raises(ValueError, match=r"empty.*experience 2"):
        MASPlugin().after_training_exp(fake_strategy(WithUnused(), TensorDataset(torch.zeros(0, 1, 4, 4)), exp=2))


def test_non_finite_importance_is_refused():
    model = WithUnused()
    with torch.no_grad():
        model.net[1].weight[0, 0] = float("nan")
    plugin = MASPlugin()
    with pytest.raises(DivergedError, match="non-finite.*experience 3"):
        plugin.after_training_exp(fake_strategy(model, TensorDataset(tiny_data()[0]), exp=3))
    assert plugin.importance == {}
