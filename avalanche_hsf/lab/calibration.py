"""After the last experience: calibration (ECE) on the whole test stream, and, for models that
infer the task themselves, how often they pick the right one."""

import torch
from avalanche.models.utils import avalanche_forward
from torch.utils.data import DataLoader
from torchmetrics.functional.classification import multiclass_calibration_error


@torch.no_grad()
def final_test_pass(model, test_stream, batch_size: int, device="cpu", n_bins: int = 15) -> dict:
    """`ece` (15 equal-width bins, L1) and, when the model records `inferred_tasks` (HSF without
    task labels), `task_inference_acc`: the share of test samples of experience j sent to task j."""
    was_training = model.training
    model.eval()
    probs, labels, right_task, inferred = [], [], 0, 0
    for index, experience in enumerate(test_stream):
        for x, y, t, *_ in DataLoader(experience.dataset.eval(), batch_size=batch_size):
            model.inferred_tasks = None
            logits = avalanche_forward(model, x.to(device), t.to(device))
            probs.append(torch.softmax(logits.float(), dim=1).cpu())
            labels.append(y)
            if model.inferred_tasks is not None:
                right_task += int((model.inferred_tasks.cpu() == index).sum())
                inferred += len(x)
    model.train(was_training)
    width = max(p.shape[1] for p in probs)  # multi-head outputs may differ in width per task
    probs = torch.cat([torch.nn.functional.pad(p, (0, width - p.shape[1])) for p in probs])
    result = {"ece": float(multiclass_calibration_error(probs, torch.cat(labels), num_classes=width,
                                                        n_bins=n_bins, norm="l1"))}
    if inferred:
        result["task_inference_acc"] = right_task / inferred
    return result
