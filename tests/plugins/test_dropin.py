"""Drop-in: every plugin (MAS, Piggyback, HSF, FiniteLossGuard) run as an Avalanche user runs it, on a
tiny benchmark built the way Avalanche's own strategy tests build theirs (`nc_benchmark` on small
random tensors): with Avalanche's models (SimpleMLP, MTSimpleMLP, a model with an IncrementalClassifier),
both label conventions (global class ids, as `nc_benchmark` gives by default, and ids from zero in
each experience), with and without task labels, inside Naive, Replay and OnlineNaive, with DataLoader
workers, and through Avalanche's own checkpoint save and load. Where a combination cannot make sense
(Piggyback without task labels, or with replay), the error is one clear line."""

import io

import pytest
import torch
from avalanche.benchmarks import nc_benchmark
from avalanche.benchmarks.scenarios.online import split_online_stream
from avalanche.benchmarks.scenarios.task_aware import with_task_labels
from avalanche.checkpointing import maybe_load_checkpoint, save_checkpoint
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.models import IncrementalClassifier, MTSimpleMLP, MultiTaskModule, SimpleMLP
from avalanche.training import Naive, OnlineNaive, Replay
from avalanche.training.plugins import EvaluationPlugin
from torch import nn
from torch.utils.data import TensorDataset

from avalanche_hsf.models import hsf_model, piggyback
from avalanche_hsf.plugins import FiniteLossGuard, HSFPlugin, MASPlugin, PiggybackPlugin

FEATURES, CLASSES = 16, 4
ORDER = [3, 1, 0, 2]  # experience 0 holds classes {1, 3}, experience 1 {0, 2}: global ids are not 0, 1
CONVENTIONS = {  # name -> (task labels, class ids from zero in each experience)
    "global ids, task labels": (True, False),  # nc_benchmark(..., task_labels=True) with its defaults
    "ids from zero, task labels": (True, True),
    "global ids, no task labels": (False, False),
    "ids from zero, no task labels": (False, True),
}


class Tensors(TensorDataset):
    """Inputs and labels with the `targets` that Avalanche's generators read."""

    def __init__(self, x, y):
        super().__init__(x, y)
        self.targets = y.tolist()


def fast_benchmark(task_labels, from_zero):
    """Two experiences of two classes each: Gaussian blobs in 16 dimensions, 24 train and 8 test samples per class."""
    generator = torch.Generator().manual_seed(0)
    centres = 3 * torch.randn(CLASSES, FEATURES, generator=generator)

    def split(n):
        y = torch.arange(CLASSES).repeat_interleave(n)
        return Tensors(centres[y] + torch.randn(len(y), FEATURES, generator=generator), y)

    return nc_benchmark(split(24), split(8), 2, task_labels=task_labels, shuffle=False, fixed_class_order=ORDER,
                        class_ids_from_zero_in_each_exp=from_zero)


class IncrementalNet(nn.Module):
    """A feature extractor and Avalanche's IncrementalClassifier, which grows with the classes seen."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(FEATURES, 32), nn.ReLU())
        self.classifier = IncrementalClassifier(32, initial_out_features=2)

    def forward(self, x):
        return self.classifier(self.features(x))


MODELS = {
    "SimpleMLP": lambda: SimpleMLP(num_classes=CLASSES, input_size=FEATURES, hidden_size=32, hidden_layers=1),
    "MTSimpleMLP": lambda: MTSimpleMLP(input_size=FEATURES, hidden_size=32),
    "IncrementalClassifier": IncrementalNet,
}


def hsf(infer_task=False, num_outputs=None):
    """A small HSF model: two outputs per task, or one per class with `infer_task`."""
    outputs = num_outputs or (CLASSES if infer_task else 2)
    return hsf_model((FEATURES,), outputs, hidden=16, latent_dim=4, sde_steps=2, embedding_dim=4, chunk_size=256,
                     infer_task=infer_task)


def strategy_for(model, plugins, template=Naive, **options):
    optimizer = (torch.optim.Adam(model.parameters(), lr=1e-3) if any(isinstance(p, HSFPlugin) for p in plugins)
                 else torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9))
    sizes = {"train_mb_size": 16, "train_passes" if template is OnlineNaive else "train_epochs": 1, **options}
    return template(model=model, optimizer=optimizer, criterion=nn.CrossEntropyLoss(), eval_mb_size=64,
                    plugins=[*plugins, FiniteLossGuard()], **sizes,
                    evaluator=EvaluationPlugin(accuracy_metrics(experience=True), loggers=[]))


def inputs_of(benchmark):
    """Each test experience's inputs and task labels, in one batch."""
    return [(torch.stack([exp.dataset[i][0] for i in range(len(exp.dataset))]), exp.task_labels[0])
            for exp in benchmark.test_stream]


def outputs(model, tests):
    model.eval()
    with torch.no_grad():
        return [model(x, torch.full((len(x),), task)) if _takes_tasks(model) else model(x) for x, task in tests]


def _takes_tasks(model):
    return isinstance(model, MultiTaskModule)


def accuracies(model, benchmark, experiences=None):
    """Accuracy on each test experience (the first `experiences` of them), predictions read in the
    benchmark's own class ids."""
    tests = inputs_of(benchmark)[:experiences]
    return [(out.argmax(1) == torch.as_tensor(exp.dataset.targets)).float().mean().item()
            for out, exp in zip(outputs(model, tests), benchmark.test_stream)]


def train(strategy, stream, **options):
    for experience in stream:
        strategy.train(experience, **options)


def assert_one_line(error, *fragments):
    message = str(error.value)
    assert len(message.splitlines()) == 1, message
    for fragment in fragments:
        assert fragment in message, message


def make_plugin(name):
    return {"MAS": lambda: MASPlugin(lambda_reg=0.1), "FiniteLossGuard": FiniteLossGuard,
            "Piggyback": PiggybackPlugin}[name]()


def build(name, model_name):
    model = MODELS[model_name]()
    return piggyback(model) if name == "Piggyback" else model


# --- every plugin, every model, every label convention, in Naive -----------------------------------

@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("model_name", MODELS)
@pytest.mark.parametrize("name", ["MAS", "FiniteLossGuard"])
def test_regularisers_train_any_avalanche_model_under_any_labels(name, model_name, convention):
    torch.manual_seed(0)
    benchmark = fast_benchmark(*CONVENTIONS[convention])
    model = build(name, model_name)
    train(strategy_for(model, [make_plugin(name)]), benchmark.train_stream)
    assert sum(accuracies(model, benchmark)) > 0  # it ran to the end and predicts in the benchmark's ids


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("model_name", ["SimpleMLP", "MTSimpleMLP"])
def test_piggyback_trains_with_task_labels_and_says_so_without(model_name, convention):
    task_labels, _ = CONVENTIONS[convention]
    torch.manual_seed(0)
    benchmark = fast_benchmark(*CONVENTIONS[convention])
    model = build("Piggyback", model_name)
    strategy = strategy_for(model, [PiggybackPlugin(mask_lr=1e-3)], train_epochs=2)
    if not task_labels:
        with pytest.raises(ValueError) as error:
            train(strategy, benchmark.train_stream)
        assert_one_line(error, "task labels", "task_labels=True")
        return
    tests = inputs_of(benchmark)
    strategy.train(benchmark.train_stream[0])
    first = outputs(model, tests[:1])[0]
    strategy.train(benchmark.train_stream[1])
    assert torch.equal(outputs(model, tests)[0], first)  # the finished task is bit-identical
    assert min(accuracies(model, benchmark)) > 0.6


def test_piggyback_over_mtsimplemlp_keeps_its_heads_with_zero_backward_transfer():
    """The issue's first check: piggyback(MTSimpleMLP(...)) with PiggybackPlugin() on a task-labelled
    benchmark with global class ids: Avalanche's MultiHeadClassifier makes a head per task, the backbone
    is frozen after the first task, and the first task's accuracy and outputs do not change."""
    torch.manual_seed(0)
    benchmark = fast_benchmark(task_labels=True, from_zero=False)
    model = piggyback(MTSimpleMLP(input_size=FEATURES, hidden_size=32))
    strategy = strategy_for(model, [PiggybackPlugin()], train_epochs=2)
    tests = inputs_of(benchmark)
    strategy.train(benchmark.train_stream[0])
    after_first, outputs_first = accuracies(model, benchmark, 1)[0], outputs(model, tests[:1])[0]
    backbone = model.model.features[0].weight.detach().clone()
    head = model.heads.classifiers["0"].classifier.weight.detach().clone()
    strategy.train(benchmark.train_stream[1])
    final = accuracies(model, benchmark)
    assert final[0] - after_first == 0.0  # backward transfer, exactly
    assert torch.equal(outputs(model, tests)[0], outputs_first)
    assert torch.equal(model.model.features[0].weight, backbone)
    assert torch.equal(model.heads.classifiers["0"].classifier.weight, head)
    assert set(model.heads.classifiers) == {"0", "1"} and model.finished_tasks == {0, 1}
    optimized = {id(p) for g in strategy.optimizer.param_groups for p in g["params"]}
    assert id(model.heads.classifiers["0"].classifier.weight) not in optimized  # finished: out of the optimizer
    assert model.mask_sparsity().keys() <= {1}
    assert final[1] > 0.6
    # Saved whole (as Avalanche's checkpoints do) it reproduces both tasks.
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    restored = torch.load(buffer, weights_only=False)
    assert restored.finished_tasks == {0, 1}
    assert all(torch.equal(a, b) for a, b in zip(outputs(restored, tests), outputs(model, tests)))


def test_piggyback_errors_name_what_to_change():
    with pytest.raises(ValueError) as error:
        piggyback(IncrementalNet())
    assert_one_line(error, "IncrementalClassifier", "nn.Linear", "MultiHeadClassifier")
    # A head too small for global class ids fails before training, naming the task and its ids.
    model = piggyback(SimpleMLP(num_classes=2, input_size=FEATURES, hidden_size=32))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with pytest.raises(ValueError) as error:
        strategy_for(model, [PiggybackPlugin()]).train(fast_benchmark(True, False).train_stream[0])
    assert_one_line(error, "task 0 has class ids [1, 3]", "2 outputs", "MultiHeadClassifier",
                    "class_ids_from_zero_in_each_exp=True")
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters() if n in before)


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("infer_task", [False, True], ids=["task-IL model", "class-IL model"])
def test_hsf_trains_under_any_labels_or_says_what_to_change(infer_task, convention):
    task_labels, from_zero = CONVENTIONS[convention]
    torch.manual_seed(0)
    benchmark = fast_benchmark(task_labels, from_zero)
    model = hsf(infer_task)
    strategy = strategy_for(model, [HSFPlugin()], train_epochs=2)
    if not infer_task and not task_labels and not from_zero:  # four classes through one two-output head
        with pytest.raises(ValueError) as error:
            train(strategy, benchmark.train_stream)
        assert_one_line(error, "task 0 has class ids [1, 3, 0, 2]", "2 outputs", "infer_task=True")
        return
    train(strategy, benchmark.train_stream)
    assert sum(accuracies(model, benchmark)) > 0


def test_hsf_with_nc_benchmarks_default_task_labels_answers_in_global_class_ids():
    """The issue's second check: HSF trains, with task labels, on nc_benchmark(..., task_labels=True)
    with its defaults (global class ids), each task's head covering its own classes."""
    torch.manual_seed(0)
    benchmark = fast_benchmark(task_labels=True, from_zero=False)
    model = hsf()
    # 60 epochs at Adam's 1e-3: with the defaults (null_space) a new task moves its weights only through
    # what its features do not share with the old tasks', so it learns more slowly than with the regulariser.
    train(strategy_for(model, [HSFPlugin()], train_epochs=60), benchmark.train_stream)
    assert model.head_classes == {0: [1, 3], 1: [0, 2]}
    for (x, task), exp in zip(inputs_of(benchmark), benchmark.test_stream):
        model.eval()
        with torch.no_grad():
            predictions = model(x, torch.full((len(x),), task)).argmax(1)
        assert set(predictions.tolist()) <= set(exp.classes_in_this_experience)
    assert min(accuracies(model, benchmark)) > 0.8


def test_hsf_class_il_model_too_small_for_the_class_ids_says_so_before_training():
    model = hsf(infer_task=True, num_outputs=2)
    with pytest.raises(ValueError) as error:
        strategy_for(model, [HSFPlugin()]).train(fast_benchmark(False, False).train_stream[0])
    assert_one_line(error, "class ids up to 3", "2 outputs", "hsf_model(input_shape, 4, infer_task=True)")
    assert model.learned_tasks == []


# --- other templates, workers and checkpoints --------------------------------------------------------

PLUGINS = {  # name -> (model, plugin), with task labels and global class ids
    "MAS": (lambda: MODELS["SimpleMLP"](), lambda: MASPlugin(lambda_reg=0.1)),
    "MAS multi-head": (lambda: MODELS["MTSimpleMLP"](), lambda: MASPlugin(lambda_reg=0.1)),
    "FiniteLossGuard": (lambda: MODELS["SimpleMLP"](), FiniteLossGuard),
    "Piggyback": (lambda: piggyback(MODELS["MTSimpleMLP"]()), PiggybackPlugin),
    "HSF task-IL": (hsf, HSFPlugin),
    "HSF class-IL": (lambda: hsf(infer_task=True), HSFPlugin),
}


@pytest.mark.parametrize("name", PLUGINS)
def test_inside_replay(name):
    torch.manual_seed(0)
    benchmark = fast_benchmark(task_labels=True, from_zero=False)
    model, plugin = (make() for make in PLUGINS[name])
    strategy = strategy_for(model, [plugin], template=Replay, mem_size=16)
    if name == "Piggyback":
        with pytest.raises(ValueError) as error:
            train(strategy, benchmark.train_stream)
        assert_one_line(error, "replay", "Naive or OnlineNaive")
        return
    train(strategy, benchmark.train_stream)
    assert sum(accuracies(model, benchmark)) > 0


# Per name: whether it reads task labels from the experience (on an online stream, only if the stream
# is wrapped in with_task_labels) and whether it needs the stream's task boundaries.
ONLINE_NEEDS = {"MAS": (False, False), "FiniteLossGuard": (False, False), "MAS multi-head": (True, True),
                "Piggyback": (True, True), "HSF task-IL": (True, True), "HSF class-IL": (False, True)}


@pytest.mark.parametrize("boundaries", [True, False], ids=["task boundaries", "no task boundaries"])
@pytest.mark.parametrize("name", PLUGINS)
def test_inside_online_naive(name, boundaries):
    """On Avalanche's online streams: split_online_stream drops the experiences' task labels, which a
    task-aware model gets back with Avalanche's with_task_labels, and a model that keeps a state per
    task must see where tasks begin and end (access_task_boundaries=True), or is told so in one line."""
    torch.manual_seed(0)
    benchmark = fast_benchmark(task_labels=True, from_zero=False)
    stream = split_online_stream(benchmark.train_stream, 16, access_task_boundaries=boundaries, seed=0)
    task_aware, needs_boundaries = ONLINE_NEEDS[name]
    model, plugin = (make() for make in PLUGINS[name])
    strategy = strategy_for(model, [plugin], template=OnlineNaive)
    if not boundaries and needs_boundaries:
        with pytest.raises((ValueError, AttributeError)) as error:
            train(strategy, with_task_labels(stream) if task_aware else stream)
        if name != "MAS multi-head":  # MTSimpleMLP's own adaptation fails inside Avalanche there
            assert_one_line(error, "online stream", "access_task_boundaries=True")
        return
    if name in ("Piggyback", "HSF task-IL"):  # without with_task_labels: one line that says to wrap the stream
        with pytest.raises(ValueError) as error:
            fresh, fresh_plugin = (make() for make in PLUGINS[name])
            train(strategy_for(fresh, [fresh_plugin], template=OnlineNaive), stream)
        assert_one_line(error, "with_task_labels(split_online_stream(")
    tests = inputs_of(benchmark)
    first = None
    for experience in with_task_labels(stream) if task_aware else stream:
        strategy.train(experience)
        if name == "Piggyback" and model.finished_tasks and first is None:  # task 0 has just been frozen
            first = outputs(model, tests[:1])[0]
    if name == "Piggyback":
        assert model.finished_tasks == {0, 1}  # one mask per task, not per piece of it
        assert torch.equal(outputs(model, tests[:1])[0], first)
    if name == "HSF class-IL":
        assert model.learned_tasks == [0, 1] and model.class_sets == {0: [1, 3], 1: [0, 2]}
    assert sum(accuracies(model, benchmark)) > 0


@pytest.mark.parametrize("name", ["MAS", "Piggyback", "HSF task-IL"])
def test_with_dataloader_workers(name):
    torch.manual_seed(0)
    benchmark = fast_benchmark(task_labels=True, from_zero=False)
    model, plugin = (make() for make in PLUGINS[name])
    train(strategy_for(model, [plugin]), benchmark.train_stream, num_workers=2, persistent_workers=False)
    assert sum(accuracies(model, benchmark)) > 0


@pytest.mark.parametrize("name", PLUGINS)
def test_through_avalanches_checkpoints(name, tmp_path):
    """Train the first experience, save with Avalanche's save_checkpoint, load into a fresh strategy
    with maybe_load_checkpoint, train the second: the plugin's state came through (a second run of
    the first task would fail for Piggyback, and HSF regularises towards the stored targets)."""
    torch.manual_seed(0)
    benchmark = fast_benchmark(task_labels=True, from_zero=False)
    tests = inputs_of(benchmark)
    path = tmp_path / "checkpoint.pkl"
    model, plugin = (make() for make in PLUGINS[name])
    strategy = strategy_for(model, [plugin])
    strategy.train(benchmark.train_stream[0])
    save_checkpoint(strategy, path)
    saved_first = outputs(model, tests[:1])[0]

    fresh_model, fresh_plugin = (make() for make in PLUGINS[name])
    strategy, start = maybe_load_checkpoint(strategy_for(fresh_model, [fresh_plugin]), path)
    assert start == 1
    assert torch.equal(outputs(strategy.model, tests[:1])[0], saved_first)
    strategy.train(benchmark.train_stream[1])
    restored = next(p for p in strategy.plugins if type(p) is type(fresh_plugin))
    if name == "Piggyback":
        assert strategy.model.finished_tasks == {0, 1}
        assert torch.equal(outputs(strategy.model, tests[:1])[0], saved_first)
    if name.startswith("HSF"):
        assert set(restored.targets) == {0}
    assert sum(accuracies(strategy.model, benchmark)) > 0
