"""Piggyback (avalanche_hsf.plugins.PiggybackPlugin) dropped into an ordinary Avalanche script.

Piggyback needs two additions to stock Avalanche code: convert the model with
`avalanche_hsf.models.piggyback(...)` (masked layers plus one head per task), and add the plugin.
The first experience trains the SimpleMLP backbone; every later one freezes it and learns only a
binary mask and a head, so old tasks cannot be forgotten. The data is split_digits (scikit-learn's
8x8 digits, shipped inside scikit-learn, so no download) as 5 task-incremental experiences.

Run:  python examples/piggyback_plain_avalanche.py   (TensorBoard logs go to runs/examples/piggyback)
"""

import torch
from avalanche.evaluation.metrics import accuracy_metrics, forgetting_metrics
from avalanche.logging import InteractiveLogger, TensorboardLogger
from avalanche.models import SimpleMLP
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from digits import split_digits  # examples/digits.py: the data, in plain Avalanche

from avalanche_hsf.models import piggyback
from avalanche_hsf.plugins import PiggybackPlugin

torch.manual_seed(0)
# Tiny models: one CPU thread is much faster than many threads fighting over small ops.
torch.set_num_threads(1)
# A plain Avalanche benchmark; Piggyback needs its task labels to pick each task's mask.
benchmark = split_digits(n_experiences=5)

# No as_multitask here: the conversion itself turns SimpleMLP's `classifier` into per-task heads.
model = piggyback(SimpleMLP(num_classes=2, input_size=64, hidden_size=100))

evaluator = EvaluationPlugin(
    accuracy_metrics(experience=True, stream=True),
    forgetting_metrics(experience=True, stream=True),
    loggers=[InteractiveLogger(), TensorboardLogger(tb_log_dir="runs/examples/piggyback")],
)
strategy = Naive(
    model=model,
    # Trains the backbone (task 0) and each task's head; the plugin trains the masks with its own optimizer.
    optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
    criterion=torch.nn.CrossEntropyLoss(),
    train_mb_size=32, train_epochs=10, eval_mb_size=256,
    plugins=[PiggybackPlugin()],  # the paper's masks: scores from 1e-2, threshold 5e-3, Adam at lr 1e-4
    evaluator=evaluator,
)

for experience in benchmark.train_stream:
    strategy.train(experience)
    results = strategy.eval(benchmark.test_stream)  # every task, seen or not, after each experience

# The last evaluation holds each experience's accuracy after the whole stream was learned.
accs = [results[f"Top1_Acc_Exp/eval_phase/test_stream/Task{i:03d}/Exp{i:03d}"]
        for i in range(len(benchmark.test_stream))]
print("\nFinal accuracy per experience (Piggyback):", " ".join(f"{a:.3f}" for a in accs))
print(f"Mean {sum(accs) / len(accs):.3f}, "
      f"stream forgetting {results['StreamForgetting/eval_phase/test_stream']:.3f}")
print("Weights each task's mask switches off:",
      " ".join(f"task {task}: {100 * s['total']:.1f}%" for task, s in model.mask_sparsity().items()))
