"""Memory Aware Synapses (Aljundi et al., ECCV 2018) as an Avalanche plugin.

Importance is the sensitivity of the squared L2 norm of the model's output to each
parameter, `Ω = mean_x |∂‖F(x)‖²₂ / ∂θ|`. It needs no labels, so it can be computed on any
(unlabelled) data. Per-sample gradients of Linear and Conv2d layers come from one batched
backward pass; those of any other parameter are vectorised with `torch.func`.
"""

from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import torch
from avalanche.benchmarks import CLExperience, CLStream
from avalanche.benchmarks.utils import AvalancheDataset
from avalanche.models.utils import is_multi_task_module
from avalanche.training.plugins import SupervisedPlugin
from avalanche.training.templates import SupervisedTemplate
from torch import nn
from torch.func import functional_call, grad, vmap
from torch.nn import functional as F
from torch.utils.data import DataLoader

from ..errors import DivergedError

ACCUMULATE_MODES = ("sum", "average", "ema")


def _datasets(data: Any) -> list:
    """The datasets behind `data`: a dataset, an experience, or a stream / list of experiences."""
    if isinstance(data, CLExperience):
        return [data.dataset]
    if isinstance(data, CLStream) or (isinstance(data, (list, tuple)) and data
                                      and all(isinstance(e, CLExperience) for e in data)):
        return [exp.dataset for exp in data]
    return [data]


def _inputs_and_tasks(dataset: Any, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (x, task labels) batches of `dataset`; labels and any extra elements are ignored.

    Avalanche datasets put the task label last; anything else counts as task 0.
    """
    if isinstance(dataset, AvalancheDataset):
        dataset = dataset.eval()  # the importance of the data, not of its augmentations
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False,
                        collate_fn=getattr(dataset, "collate_fn", None))
    has_tasks = isinstance(dataset, AvalancheDataset)
    for batch in loader:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        if has_tasks and isinstance(batch, (list, tuple)) and len(batch) > 1:
            tasks = torch.as_tensor(batch[-1]).reshape(-1)
        else:
            tasks = torch.zeros(len(x), dtype=torch.long)
        yield x, tasks


def _squared_norm(model: nn.Module, x: torch.Tensor, task: int | None,
                  tensors: tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]] | None = None) -> torch.Tensor:
    """‖F(x)‖²₂ summed over the batch `x`; F is the head of `task` unless it is None.

    `tensors` = (params, buffers) calls the model functionally with them (for torch.func).
    """
    # An int task label takes avalanche_forward's single-task path (forward_single_task).
    args = (x,) if task is None else (x, task)
    out = model(*args) if tensors is None else functional_call(model, tensors, args)
    return out.pow(2).sum()


def _linear_input(module: nn.Linear, x: torch.Tensor) -> torch.Tensor | None:
    """A Linear call's input as (samples, features), or None.

    Only 2-D inputs: with more dimensions (a sequence) which one holds the samples is ambiguous.
    """
    return x if x.dim() == 2 else None


def _conv2d_input(module: nn.Conv2d, x: torch.Tensor) -> torch.Tensor | None:
    """A Conv2d call's input patches, (samples, features, positions), or None.

    None where unfolding does not reproduce the convolution (groups, non-zero or string padding).
    """
    if (x.dim() != 4 or module.groups != 1 or module.padding_mode != "zeros"
            or isinstance(module.padding, str)):
        return None
    return F.unfold(x, module.kernel_size, module.dilation, module.padding, module.stride)


# Layers whose weight gradient is Σ over output positions of (output gradient) (input features)ᵀ,
# with those input features. Matched by exact type: a subclass may compute something else.
_LAYER_INPUTS = {nn.Linear: _linear_input, nn.Conv2d: _conv2d_input}


def _rows(t: torch.Tensor) -> torch.Tensor:
    """(samples, features, *positions) -> (samples, positions, features); no positions is one."""
    return t.flatten(2).transpose(1, 2) if t.dim() > 2 else t.unsqueeze(1)


def _sum_abs_outer(x_rows: torch.Tensor, g_rows: torch.Tensor) -> torch.Tensor:
    """Σ_i |g_iᵀ x_i| over samples i: the summed |per-sample weight gradient| of a layer."""
    if x_rows.shape[1] == 1:  # one position: |g xᵀ| = |g||x|ᵀ, so no per-sample matrix is formed
        return g_rows[:, 0].abs().T @ x_rows[:, 0].abs()
    return torch.bmm(g_rows.transpose(1, 2), x_rows).abs().sum(0)


def _graph_uses(loss: torch.Tensor) -> Counter:
    """How many times each leaf tensor (by id) enters the autograd graph of `loss`."""
    uses, seen, stack = Counter(), set(), [loss.grad_fn] if loss.grad_fn is not None else []
    while stack:
        for node, _ in stack.pop().next_functions:
            if node is None:
                continue
            if hasattr(node, "variable"):  # AccumulateGrad: one edge per use of the leaf
                uses[id(node.variable)] += 1
            elif node not in seen:
                seen.add(node)
                stack.append(node)
    return uses


def _forward_recording(model: nn.Module, layers: list[nn.Module], x: torch.Tensor, task: int | None,
                       ) -> tuple[torch.Tensor, dict[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]]]:
    """The batch-summed squared norm, with every call of `layers` recorded as (input, output)."""
    calls = defaultdict(list)

    def record(module: nn.Module, args: tuple[Any, ...], out: torch.Tensor) -> torch.Tensor:
        calls[module].append((args[0], out))
        # In-place ops downstream (ReLU(inplace=True)) modify the clone, so `out` stays the
        # layer's output for autograd.grad.
        return out.clone()

    hooks = [m.register_forward_hook(record) for m in layers]
    try:
        with torch.enable_grad():
            return _squared_norm(model, x, task), calls
    finally:
        for hook in hooks:
            hook.remove()


def _layer_abs_grads(model: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor,
                     task: int | None) -> tuple[dict[str, torch.Tensor], set[str]]:
    """Σ over the samples of `x` of |per-sample gradient|, from one batched forward and backward.

    Returns the sums and the names of the parameters they are exact for: those the output
    does not depend on (zero, left out of the sums), and the weights and biases of
    `_LAYER_INPUTS` layers whose only use is one call with one input entry per sample. A
    sample's gradient there is Σ_positions g xᵀ, from the layer's input x and output gradient
    g, and one backward pass of the batch-summed norm gives every sample's g at once, as long
    as samples in a batch do not interact (true of standard layers in eval mode, where
    BatchNorm uses its running statistics).
    """
    names = {id(p): n for n, p in model.named_parameters() if n in params}  # `params` holds detached copies
    layers = [m for m in model.modules()
              if type(m) in _LAYER_INPUTS and any(id(p) in names for p in m.parameters(recurse=False))]
    loss, calls = _forward_recording(model, layers, x, task)
    uses = _graph_uses(loss)
    jobs = []  # (parameters, input rows, output) of each layer handled here
    for module in layers:
        # A parameter used more than once (a layer called twice, tied weights, direct use
        # elsewhere) has per-sample gradients summed inside the absolute value: left to vmap.
        owned = [(local, p) for local, p in module.named_parameters(recurse=False)
                 if local in ("weight", "bias") and uses[id(p)] == 1]
        if not owned or len(calls[module]) != 1:
            continue
        x_in, out = calls[module][0]
        features = _LAYER_INPUTS[type(module)](module, x_in.detach()) if len(x_in) == len(x) else None
        if features is not None:
            jobs.append((owned, _rows(features), out))
    out_grads = torch.autograd.grad(loss, [out for _, _, out in jobs]) if jobs else []
    sums = {}
    for (owned, x_rows, _), g in zip(jobs, out_grads):
        g_rows = _rows(g)
        for local, p in owned:
            sums[names[id(p)]] = (_sum_abs_outer(x_rows, g_rows).view_as(p) if local == "weight"
                                  else g_rows.sum(1).abs().sum(0))
    return sums, {n for i, n in names.items() if uses[i] == 0} | sums.keys()


def _vmap_abs_grads(model: nn.Module, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor],
                    names: list[str], x: torch.Tensor, task: int | None) -> dict[str, torch.Tensor]:
    """Σ over the samples of `x` of |per-sample gradient| for `names`, by vmap over grad.

    Exact for any model: each sample is run as a batch of one. Memory grows with
    len(x) × the size of `names`.
    """
    fixed = {n: p for n, p in params.items() if n not in names}

    def squared_norm(free: dict[str, torch.Tensor], xi: torch.Tensor) -> torch.Tensor:
        # One sample as a batch of one, so the model sees its usual input rank.
        return _squared_norm(model, xi.unsqueeze(0), task, ({**fixed, **free}, buffers))

    per_x = vmap(grad(squared_norm), in_dims=(None, 0))({n: params[n] for n in names}, x)
    return {n: g.abs().sum(0) for n, g in per_x.items()}


def _per_sample_abs_grads(model: nn.Module, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor],
                          x: torch.Tensor, task: int | None) -> dict[str, torch.Tensor]:
    """Σ over the samples of `x` of |per-sample gradient|: layer rules where they apply, else vmap."""
    sums, handled = _layer_abs_grads(model, params, x, task)
    rest = [n for n in params if n not in handled]
    if rest:
        sums.update(_vmap_abs_grads(model, params, buffers, rest, x, task))
    return sums


def _per_batch_abs_grads(model: nn.Module, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor],
                         x: torch.Tensor, task: int | None) -> dict[str, torch.Tensor]:
    """|gradient of ‖F(x)‖²₂ summed over the batch `x`|: the official code's estimator."""
    grads = grad(lambda p, xs: _squared_norm(model, xs, task, (p, buffers)))(params, x)
    return {n: g.abs() for n, g in grads.items()}


def mas_importance(model: torch.nn.Module, data: Any, *, per_sample: bool = True,
                   chunk_size: int = 64, batch_size: int = 16) -> dict[str, torch.Tensor]:
    """MAS importance of each trainable parameter of `model` on `data`.

    per_sample=True is the paper's estimator, mean over samples of |per-sample gradient|,
    computed exactly, `chunk_size` samples at a time. For Linear and Conv2d layers it comes
    from one batched backward pass per chunk (see `_layer_abs_grads`), which forms per-sample
    gradients only for Conv2d weights; every other parameter goes through torch.func's vmap
    over grad, which holds `chunk_size` per-sample gradients of them at a time.
    The result does not depend on `chunk_size`, only its speed and memory: larger chunks read the
    weights fewer times (bench/NOTES.md).
    per_sample=False is the official code's estimator: |gradient of the batch-summed squared
    norm| summed over batches of `batch_size` and divided by the number of samples (equal to
    the paper's at batch size 1, and never larger, by the triangle inequality).

    Computed in eval mode (dropout off, BatchNorm running statistics used and not updated);
    each module's train/eval mode is restored afterwards.
    """
    device = next(model.parameters()).device
    multi_task = is_multi_task_module(model)
    abs_grads = _per_sample_abs_grads if per_sample else _per_batch_abs_grads
    params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    n_samples = 0
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        for dataset in _datasets(data):
            for x, tasks in _inputs_and_tasks(dataset, chunk_size if per_sample else batch_size):
                x = x.to(device)
                n_samples += len(x)
                # Multi-head outputs are computed one task at a time, as avalanche_forward does.
                for task in (tasks.unique().tolist() if multi_task else [None]):
                    x_task = x if task is None else x[(tasks == task).to(device)]
                    for n, g in abs_grads(model, params, buffers, x_task, task).items():
                        total[n] += g
    finally:
        for module, training in modes:
            module.training = training
    if n_samples == 0:
        raise ValueError("MAS: the importance data is empty")
    return {n: t / n_samples for n, t in total.items()}


def _overlap(a: torch.Tensor, b: torch.Tensor) -> tuple[slice, ...]:
    """Index of the common leading block of `a` and `b` (grown layers keep old units first)."""
    return tuple(slice(0, min(sa, sb)) for sa, sb in zip(a.shape, b.shape))


def _grow(old: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """`old` zero-padded to `shape`: units added since then have no importance yet."""
    if old.shape == shape:
        return old
    grown = old.new_zeros(shape)
    index = _overlap(old, grown)
    grown[index] = old[index]
    return grown


class MASPlugin(SupervisedPlugin):
    """Memory Aware Synapses: penalise changes to parameters the output is sensitive to.

    After each training experience, the importance Ω of every trainable parameter is computed
    (see `mas_importance`) and the parameters θ* are kept; later experiences add
    `lambda_reg * Σ Ω (θ − θ*)²` to the loss.

    Where the variants differ:

    - estimator: the paper defines Ω per sample (``per_sample=True``, the default); the
      official code takes the gradient of the batch-summed norm (``per_sample=False``);
      Avalanche's ``MASPlugin`` takes the batch-*mean* norm in train mode.
    - accumulation across experiences: the official code sums (``accumulate="sum"``, the
      default); ``"average"`` keeps the running mean over experiences; Avalanche's
      ``MASPlugin`` uses an exponential moving average (``accumulate="ema"``,
      ``Ω ← alpha·Ω + (1 − alpha)·Ω_new``, alpha = 0.5).

    Usage: ``Naive(model, opt, criterion, plugins=[MASPlugin(lambda_reg=1.0)])``.

    :param lambda_reg: weight of the penalty (1 in the paper's object recognition runs).
    :param per_sample: the paper's per-sample estimator, or the official code's per batch.
    :param accumulate: one of `ACCUMULATE_MODES`, "sum", "average" or "ema" (see above).
    :param alpha: weight of the old importance with accumulate="ema".
    :param chunk_size: samples per pass of the per-sample estimator, which does not depend on
        it: larger chunks run faster (the weights are read once per chunk) but hold more
        per-sample gradients (see `mas_importance`).
    :param batch_size: the batch size of the per-batch estimator, whose result depends on it.
    :param importance_data: data to compute importance on instead of each training
        experience: a dataset (labelled or not), an experience or a stream.
    """

    def __init__(self, lambda_reg: float = 1.0, per_sample: bool = True, accumulate: str = "sum",
                 alpha: float = 0.5, chunk_size: int = 64, batch_size: int = 16,
                 importance_data: Any = None) -> None:
        super().__init__()
        if not lambda_reg >= 0:
            raise ValueError(f"MAS: lambda_reg must be >= 0, got {lambda_reg}")
        if accumulate not in ACCUMULATE_MODES:
            raise ValueError(f"MAS: unknown accumulate mode {accumulate!r} (expected one of: "
                             f"{', '.join(ACCUMULATE_MODES)})")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"MAS: alpha must be in [0, 1], got {alpha}")
        if chunk_size < 1 or batch_size < 1:
            raise ValueError(f"MAS: chunk_size and batch_size must be >= 1, got {chunk_size} and {batch_size}")
        if importance_data is not None and hasattr(importance_data, "__len__") and len(importance_data) == 0:
            raise ValueError("MAS: the importance data is empty")
        self.lambda_reg = lambda_reg
        self.per_sample = per_sample
        self.accumulate = accumulate
        self.alpha = alpha
        self.chunk_size, self.batch_size = chunk_size, batch_size
        self.importance_data = importance_data
        self.importance: dict[str, torch.Tensor] = {}
        self.anchor: dict[str, torch.Tensor] = {}
        self.n_experiences = 0  # experiences accumulated into `importance`

    def penalty(self, model: torch.nn.Module) -> torch.Tensor:
        """`lambda_reg * Σ Ω (θ − θ*)²` over the parameters that have an importance."""
        total = torch.zeros((), device=next(model.parameters()).device)
        for name, param in model.named_parameters():
            if name not in self.importance or param.dim() != self.importance[name].dim():
                continue  # a parameter born after the last importance, or reshaped: no constraint
            omega, anchor = self._on(name, param.device)
            index = _overlap(param, omega)
            total = total + (omega[index] * (param[index] - anchor[index]).pow(2)).sum()
        return self.lambda_reg * total

    def before_backward(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        if self.importance and self.lambda_reg > 0:
            strategy.loss += self.penalty(strategy.model)

    def after_training_exp(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        data = self.importance_data if self.importance_data is not None else strategy.experience.dataset
        try:
            new = mas_importance(strategy.model, data, per_sample=self.per_sample,
                                 chunk_size=self.chunk_size, batch_size=self.batch_size)
        except ValueError as err:
            raise ValueError(f"{err} (experience {strategy.experience.current_experience})") from err
        for name, omega in new.items():
            if not torch.isfinite(omega).all():
                raise DivergedError(f"MAS: non-finite importance for '{name}' after experience "
                                    f"{strategy.experience.current_experience}; it was not stored")
        self._accumulate(new)
        self.anchor = {n: p.detach().clone() for n, p in strategy.model.named_parameters() if n in new}

    def _accumulate(self, new: dict) -> None:
        k = self.n_experiences
        combine = {
            "sum": lambda old, w: old + w,
            "average": lambda old, w: (k * old + w) / (k + 1),
            "ema": lambda old, w: self.alpha * old + (1 - self.alpha) * w,
        }[self.accumulate]
        accumulated = {}
        for name, omega in new.items():
            old = self.importance.get(name)
            if old is None or old.dim() != omega.dim():
                accumulated[name] = omega  # a parameter's first importance is taken as it is
            else:
                accumulated[name] = combine(_grow(old.to(omega.device), omega.shape), omega)
        self.importance = accumulated
        self.n_experiences += 1

    def _on(self, name: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Importance and anchor of `name` on `device` (moved once, e.g. after loading a checkpoint)."""
        if self.importance[name].device != device:
            self.importance[name] = self.importance[name].to(device)
            self.anchor[name] = self.anchor[name].to(device)
        return self.importance[name], self.anchor[name]

    def state_dict(self) -> dict:
        return {"importance": dict(self.importance), "anchor": dict(self.anchor),
                "n_experiences": self.n_experiences}

    def load_state_dict(self, state: dict) -> None:
        self.importance = {n: t.detach().clone() for n, t in state["importance"].items()}
        self.anchor = {n: t.detach().clone() for n, t in state["anchor"].items()}
        self.n_experiences = int(state["n_experiences"])
