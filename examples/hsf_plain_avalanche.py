"""HSF (avalanche_hsf.plugins.HSFPlugin) dropped into an ordinary Avalanche script.

An `HSFModel` holds no per-task weights of its own: a hypernetwork generates each task's target
network (an MLP with a latent SDE and a normalising flow) from a learned task embedding. The plugin
keeps the hypernetwork's outputs for old tasks in place (beta) and fits each task's flow (gamma).
The data is split_digits (scikit-learn's 8x8 digits, shipped inside scikit-learn, so no download) as
5 task-incremental experiences, trained with a stock `Naive` strategy.

Run:  python examples/hsf_plain_avalanche.py   (TensorBoard logs go to runs/examples/hsf)
"""

import torch
from avalanche.evaluation.metrics import accuracy_metrics, forgetting_metrics
from avalanche.logging import InteractiveLogger, TensorboardLogger
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from digits import split_digits  # examples/digits.py: the data, in plain Avalanche

from avalanche_hsf.models import hsf_model
from avalanche_hsf.plugins import HSFPlugin

torch.manual_seed(0)
# Tiny models: one CPU thread is much faster than many threads fighting over small ops.
torch.set_num_threads(1)
# A plain Avalanche benchmark: with task labels, each sample uses its own task's generated network.
benchmark = split_digits(n_experiences=5)

# Target: 1x8x8 inputs, 2 outputs per task, hidden size 64; with task labels, no task inference.
model = hsf_model((1, 8, 8), 2, hidden=64)

evaluator = EvaluationPlugin(
    accuracy_metrics(experience=True, stream=True),
    forgetting_metrics(experience=True, stream=True),
    loggers=[InteractiveLogger(), TensorboardLogger(tb_log_dir="runs/examples/hsf")],
)
strategy = Naive(
    model=model,
    # Adam, not SGD: with SGD the hypernetwork stays near chance on this stream.
    optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
    criterion=torch.nn.CrossEntropyLoss(),
    train_mb_size=32, train_epochs=10, eval_mb_size=256,
    # By default the old tasks' generated weights are kept exactly (null_space); for the output
    # regulariser instead: HSFPlugin(null_space=False, beta=0.1) and hsf_model(..., frozen_features=False).
    plugins=[HSFPlugin(gamma=0.1)],
    evaluator=evaluator,
)

for experience in benchmark.train_stream:
    strategy.train(experience)
    results = strategy.eval(benchmark.test_stream)  # every task, seen or not, after each experience

# The last evaluation holds each experience's accuracy after the whole stream was learned.
accs = [results[f"Top1_Acc_Exp/eval_phase/test_stream/Task{i:03d}/Exp{i:03d}"]
        for i in range(len(benchmark.test_stream))]
print("\nFinal accuracy per experience (HSF):", " ".join(f"{a:.3f}" for a in accs))
print(f"Mean {sum(accs) / len(accs):.3f}, "
      f"stream forgetting {results['StreamForgetting/eval_phase/test_stream']:.3f}")
# Hypernetwork parameters / parameters of one generated target network (below 1 = compression; the
# defaults' last layer has room for many tasks, so it is far above 1).
print(f"Compression ratio {model.compression_ratio:.3f}")
