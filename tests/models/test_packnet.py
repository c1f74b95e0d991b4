"""PackNet with a head per task: each task trains its own head, and the pruned-and-frozen feature
extractor keeps every old task's outputs bit-identical."""

import torch
from avalanche.models import MultiHeadClassifier, SimpleMLP
from avalanche.models.packnet import PackNetPlugin
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from torch import nn
from torch.utils.data import DataLoader

from avalanche_hsf.lab.benchmarks import build_benchmark
from avalanche_hsf.models import packnet_with_task_heads


def test_each_task_has_its_own_head_and_old_tasks_outputs_stay_bit_identical():
    torch.manual_seed(0)
    benchmark = build_benchmark("split_digits", "task-il", {})
    net = packnet_with_task_heads(SimpleMLP(num_classes=10, input_size=64, hidden_size=32, hidden_layers=1))
    strategy = Naive(model=net, optimizer=torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9),
                     criterion=nn.CrossEntropyLoss(), train_mb_size=32, train_epochs=3, eval_mb_size=512,
                     plugins=[PackNetPlugin(post_prune_epochs=1, prune_proportion=0.5)], evaluator=EvaluationPlugin())
    x0 = next(iter(DataLoader(benchmark.test_stream[0].dataset, batch_size=1000)))[0]
    outputs = []
    for exp in benchmark.train_stream[:3]:
        strategy.train(exp)
        net.eval()
        with torch.no_grad():
            outputs.append(net(x0, torch.zeros(len(x0), dtype=torch.long)))
    assert isinstance(net.heads, MultiHeadClassifier) and set(net.heads.classifiers) == {"0", "1", "2"}
    assert torch.equal(outputs[0], outputs[2])
    accuracy = (outputs[2].argmax(1) == next(iter(DataLoader(benchmark.test_stream[0].dataset,
                                                            batch_size=1000)))[1]).float().mean()
    assert accuracy > 0.9
