"""Memory Aware Synapses (avalanche_hsf.plugins.MASPlugin) dropped into an ordinary Avalanche script.

A multi-head SimpleMLP learns split_digits (scikit-learn's 8x8 digits, shipped inside scikit-learn, so
no download) as 5 task-incremental experiences of 2 classes, with a stock `Naive` strategy. The
only MAS-specific line is the plugin in `plugins=[...]`.

Run:  python examples/mas_plain_avalanche.py   (TensorBoard logs go to runs/examples/mas)
"""

import torch
from avalanche.evaluation.metrics import accuracy_metrics, forgetting_metrics
from avalanche.logging import InteractiveLogger, TensorboardLogger
from avalanche.models import SimpleMLP, as_multitask
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from digits import split_digits  # examples/digits.py: the data, in plain Avalanche

from avalanche_hsf.plugins import MASPlugin

torch.manual_seed(0)
# Tiny models: one CPU thread is much faster than many threads fighting over small ops.
torch.set_num_threads(1)
# A plain Avalanche benchmark: train_stream / test_stream of experiences with task labels.
benchmark = split_digits(n_experiences=5)

# Task-IL: one 2-way head per task (Avalanche adds a head when it first sees a task label).
model = as_multitask(SimpleMLP(num_classes=2, input_size=64, hidden_size=100), "classifier")

evaluator = EvaluationPlugin(
    accuracy_metrics(experience=True, stream=True),
    forgetting_metrics(experience=True, stream=True),
    loggers=[InteractiveLogger(), TensorboardLogger(tb_log_dir="runs/examples/mas")],
)
strategy = Naive(
    model=model,
    optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
    criterion=torch.nn.CrossEntropyLoss(),
    train_mb_size=32, train_epochs=10, eval_mb_size=256,
    # lambda_reg=0.1: at this learning rate and 10 epochs, the paper's 1.0 can diverge.
    plugins=[MASPlugin(lambda_reg=0.1)],
    evaluator=evaluator,
)

for experience in benchmark.train_stream:
    strategy.train(experience)
    results = strategy.eval(benchmark.test_stream)  # every task, seen or not, after each experience

# The last evaluation holds each experience's accuracy after the whole stream was learned.
accs = [results[f"Top1_Acc_Exp/eval_phase/test_stream/Task{i:03d}/Exp{i:03d}"]
        for i in range(len(benchmark.test_stream))]
print("\nFinal accuracy per experience (MAS):", " ".join(f"{a:.3f}" for a in accs))
print(f"Mean {sum(accs) / len(accs):.3f}, "
      f"stream forgetting {results['StreamForgetting/eval_phase/test_stream']:.3f}")
