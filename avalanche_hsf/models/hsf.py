"""HSF: a hypernetwork generates every weight of a target network that encodes the input,
evolves the latent code with a neural SDE (torchsde) and models its density with a
normalizing flow (nflows).

Only the hypernetwork's weights, its chunk embeddings and the current task embedding are
trained; the target network's own parameters only give names and shapes (von Oswald et al.
2020). The flow's exact log-likelihood of the latent code lets the model infer the task when
no task label is given.
"""

import inspect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial, wraps
from typing import Any

import torch
import torchsde
from avalanche.models import DynamicModule, MultiTaskModule
from nflows.distributions import StandardNormal
from nflows.flows import Flow
from nflows.transforms import AffineCouplingTransform, CompositeTransform, ReversePermutation
from nflows.utils import create_alternating_binary_mask
from torch import nn
from torch.func import functional_call as _functional_call

from ..errors import DivergedError

INFERENCE_MODES = ("flow", "entropy")  # how HSFModel infers the task without task labels
EMBEDDING_INITS = ("random", "previous")  # where a new task's embedding starts
# The encoder's hidden layers by default. One layer could not fit conflicting_curves' oscillating
# tasks even trained directly; two, as von Oswald et al.'s target MLPs have, fit them (README).
ENCODER_LAYERS = 2

# The target ties no weights (HSFModel checks), so torch.func's search for tied weights can only
# cost and is skipped; the call is otherwise the same (bench/NOTES.md).
functional_call = partial(_functional_call, tie_weights=False)


def _mlp(sizes: Sequence[int], activation: type[nn.Module] = nn.GELU) -> nn.Sequential:
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class LatentSDE(nn.Module):
    """dz = f(z, t) dt + g(z, t) dW, Ito, diagonal noise, as torchsde expects."""

    noise_type = "diagonal"
    sde_type = "ito"

    def __init__(self, latent_dim: int, hidden: int, max_diffusion: float) -> None:
        super().__init__()
        self.drift = _mlp([latent_dim + 1, hidden, latent_dim], nn.Tanh)
        self.diffusion = _mlp([latent_dim + 1, hidden, latent_dim], nn.Tanh)
        self.max_diffusion = max_diffusion

    def _with_time(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return torch.cat([z, t.expand(z.shape[0], 1)], dim=1)

    def f(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.drift(self._with_time(t, z))

    def g(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        # Bounded, positive diffusion: noise can regularise but never swamp the drift.
        return self.max_diffusion * torch.sigmoid(self.diffusion(self._with_time(t, z)))


class _Conditioner(nn.Module):
    """The coupling's parameter net; nflows calls it as `net(x, context)`."""

    def __init__(self, n_in: int, n_out: int, hidden: int) -> None:
        super().__init__()
        self.net = _mlp([n_in, hidden, n_out], nn.ReLU)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x)


def _coupling_flow(latent_dim: int, hidden: int, n_layers: int) -> Flow:
    def net(n_in: int, n_out: int) -> _Conditioner:
        return _Conditioner(n_in, n_out, hidden)

    transforms = []
    for i in range(n_layers):
        mask = create_alternating_binary_mask(latent_dim, even=i % 2 == 0)
        transforms += [AffineCouplingTransform(mask, net), ReversePermutation(latent_dim)]
    return Flow(CompositeTransform(transforms), StandardNormal([latent_dim]))


class HSFTarget(nn.Module):
    """The task network: encoder -> z0 -> SDE over [0, T] -> head; a flow scores z0.

    `forward` returns logits (averaged over `sde_samples` paths) and leaves the flow's
    per-dimension log-density of z0 in `self.latent_log_prob` for the plugin's NLL term. With
    `decoder_hidden > 0` a decoder reconstructs the input from z0 and the per-sample squared
    error is left in `self.reconstruction_error`: trained on it, z0 keeps what identifies the
    input, which a classifier's code alone discards and task inference needs.

    :param in_features: size of the flattened input.
    :param num_outputs: outputs of the head.
    :param hidden: width of the encoder's hidden layers, of the SDE's drift and diffusion nets,
        and twice the width of the flow's conditioners.
    :param latent_dim: size of the latent code z0.
    :param encoder_layers: hidden layers of the encoder.
    :param use_sde: evolve z0 with the latent SDE; otherwise the head reads z0 directly.
    :param use_flow: model the density of z0 with a coupling flow.
    :param sde_method: torchsde solver.
    :param sde_steps: solver steps over the horizon.
    :param horizon: the SDE is solved from t = 0 to t = horizon.
    :param max_diffusion: upper bound of the diffusion coefficient.
    :param flow_layers: affine coupling layers of the flow.
    :param sde_samples: SDE paths averaged at evaluation.
    :param head_hidden: hidden width of an MLP head; 0 for a linear head.
    :param decoder_hidden: hidden width of a decoder that reconstructs the input from z0; 0 for none.
    """

    def __init__(self, in_features: int, num_outputs: int, hidden: int = 100, latent_dim: int = 8,
                 encoder_layers: int = ENCODER_LAYERS, use_sde: bool = True, use_flow: bool = True,
                 sde_method: str = "euler", sde_steps: int = 10, horizon: float = 1.0, max_diffusion: float = 0.1,
                 flow_layers: int = 4, sde_samples: int = 1, head_hidden: int = 0,
                 decoder_hidden: int = 0) -> None:
        super().__init__()
        if latent_dim < 2 and use_flow:
            raise ValueError("the coupling flow needs latent_dim >= 2")
        if encoder_layers < 1:
            raise ValueError(f"encoder_layers must be at least 1, got {encoder_layers}")
        self.encoder = nn.Sequential(nn.Flatten(), _mlp([in_features, *[hidden] * encoder_layers, latent_dim]))
        self.sde = LatentSDE(latent_dim, hidden, max_diffusion) if use_sde else None
        self.flow = _coupling_flow(latent_dim, hidden // 2, flow_layers) if use_flow else None
        # A linear classifier head, or an MLP decoder for reconstruction (head_hidden > 0).
        self.head = _mlp([latent_dim, head_hidden, num_outputs]) if head_hidden else nn.Linear(latent_dim, num_outputs)
        self.decoder = _mlp([latent_dim, decoder_hidden, in_features]) if decoder_hidden else None
        self.in_features, self.num_outputs, self.latent_dim = in_features, num_outputs, latent_dim
        self.sde_method, self.sde_samples = sde_method, sde_samples
        self.register_buffer("sde_times", torch.tensor([0.0, horizon]), persistent=False)
        self.sde_dt = horizon / sde_steps
        self.latent_log_prob = self.reconstruction_error = None

    def log_prob(self, z0: torch.Tensor) -> torch.Tensor:
        """log p(z0) per latent dimension under this task's flow."""
        return self.flow.log_prob(z0) / self.latent_dim

    def evolve(self, z0: torch.Tensor) -> torch.Tensor:
        """z_T for one SDE path per row; K paths at eval are stacked on a leading axis."""
        if self.sde is None:
            return z0.unsqueeze(0)
        samples = 1 if self.training else self.sde_samples
        z = z0.repeat(samples, 1)
        # Brownian entropy drawn from torch's RNG, so a seeded run is reproducible.
        brownian = torchsde.BrownianInterval(
            t0=float(self.sde_times[0]), t1=float(self.sde_times[-1]), size=z.shape, dtype=z.dtype,
            device=z.device, entropy=int(torch.randint(2 ** 31 - 1, ()).item()))
        z_T = torchsde.sdeint(self.sde, z, self.sde_times, bm=brownian, method=self.sde_method, dt=self.sde_dt)[-1]
        if not torch.isfinite(z_T).all():
            raise DivergedError(f"HSF: the latent SDE diverged (non-finite state at t={float(self.sde_times[-1]):g}, "
                                f"{self.sde_method} step {self.sde_dt:g}); use more sde_steps or a smaller lr")
        return z_T.view(samples, *z0.shape)

    def forward(self, x: torch.Tensor, mode: str = "predict",
                latent_stats: tuple[torch.Tensor, torch.Tensor] | None = None,
                reconstruction_var: torch.Tensor | None = None) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """`mode`: "predict" (logits), "encode" (z0), "reconstruct" (z0 and the decoder's
        per-sample squared error) or "log_density" (see `log_density`), so that
        `functional_call` can run any part under generated weights.

        The flow scores z0 standardised by its task's statistics (`latent_stats`, or the
        batch's while training), so that log-densities of different tasks, each in its own
        encoder's latent space, are on one scale and can be compared for task inference.
        """
        if mode == "encode":
            return self.encoder(x)
        z0 = self.encoder(x)
        if mode == "reconstruct":
            return z0, self.squared_error(x, z0)
        if mode == "log_density":
            return self.log_density(x, z0, latent_stats, reconstruction_var)
        # The flow fits the encoder's codes without pulling on the encoder (no collapse).
        self.latent_log_prob = (self.log_prob(self.standardise(z0.detach(), latent_stats))
                                if self.flow is not None else None)
        self.reconstruction_error = self.squared_error(x, z0) if self.decoder is not None else None
        return self.head(self.evolve(z0)).mean(0)

    def squared_error(self, x: torch.Tensor, z0: torch.Tensor) -> torch.Tensor:
        """Per sample, the decoder's squared reconstruction error of `x` from its code `z0`."""
        return (self.decoder(z0) - x.flatten(1)).pow(2).sum(1)

    def log_density(self, x: torch.Tensor, z0: torch.Tensor, latent_stats: tuple[torch.Tensor, torch.Tensor],
                    reconstruction_var: torch.Tensor | None = None) -> torch.Tensor:
        """Per sample, log p(z0) under this task: the flow's density of the code standardised by the
        task's `latent_stats`, plus the standardisation's log-determinant, so that tasks whose codes
        have different scales compare fairly. With a decoder, plus log p(x | z0), a Gaussian with the
        task's `reconstruction_var` per feature: together the joint log-density of input and code."""
        std = latent_stats[1]
        density = self.flow.log_prob(self.standardise(z0, latent_stats)) - (std + 1e-3).log().sum()
        if self.decoder is not None:
            density = density - 0.5 * (self.squared_error(x, z0) / reconstruction_var
                                       + self.in_features * (2 * math.pi * reconstruction_var).log())
        return density

    def standardise(self, z0: torch.Tensor,
                    latent_stats: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        if latent_stats is None and self.training and len(z0) > 1:
            latent_stats = (z0.mean(0), z0.std(0))
        if latent_stats is None:
            return z0
        mean, std = latent_stats
        return (z0 - mean) / (std + 1e-3)


class ChunkedHypernetwork(nn.Module):
    """h(e, c_k) -> chunk k of the flat target weight vector, one small MLP for all chunks.

    Each generated weight is scaled by the standard deviation of the target's default
    initialisation; with `unit_init` the last layer is rescaled so that the raw outputs start with
    unit standard deviation, so that a fresh hypernetwork starts from target weights of the target's
    own initial scale.
    """

    def __init__(self, target: nn.Module, embedding_dim: int, chunk_size: int, chunk_embedding_dim: int,
                 hidden: int, unit_init: bool = True) -> None:
        super().__init__()
        self.names = [n for n, _ in target.named_parameters()]
        self.shapes = [p.shape for _, p in target.named_parameters()]
        self.sizes = [p.numel() for _, p in target.named_parameters()]
        self.num_target_params = sum(self.sizes)
        self.num_chunks = math.ceil(self.num_target_params / chunk_size)
        self.chunk_embeddings = nn.Parameter(torch.randn(self.num_chunks, chunk_embedding_dim))
        self.net = _mlp([embedding_dim + chunk_embedding_dim, hidden, hidden, chunk_size], nn.ReLU)
        scales = [torch.full((p.numel(),), max(float(p.detach().std()) if p.numel() > 1 else 0.0, 1e-2))
                  for _, p in target.named_parameters()]
        self.register_buffer("scales", torch.cat(scales))
        if unit_init:
            self._unit_outputs(embedding_dim)

    @torch.no_grad()
    def _unit_outputs(self, embedding_dim: int) -> None:
        """Rescale the last layer so that a random task embedding's raw outputs have unit standard
        deviation, as Chang et al. 2020's hyperfan init aims to. With PyTorch's default init they start
        about ten times smaller: every generated layer a tenth of its usual scale, so a deep target
        starts nearly flat and its gradients shrink layer by layer (bench/NOTES.md)."""
        raw = self.net(torch.cat([torch.randn(self.num_chunks, embedding_dim), self.chunk_embeddings], dim=1))
        self.net[-1].weight.div_(raw.std())
        self.net[-1].bias.div_(raw.std())

    def features(self, embedding: torch.Tensor) -> torch.Tensor:
        """The last layer's inputs, one row per (task, chunk): (k * num_chunks, hidden) for k task
        embeddings (k, e), or (num_chunks, hidden) for one (e,)."""
        tasks = embedding.view(-1, 1, embedding.shape[-1])
        inputs = torch.cat([tasks.expand(-1, self.num_chunks, -1),
                            self.chunk_embeddings.expand(len(tasks), -1, -1)], dim=2)
        return self.net[:-1](inputs.flatten(0, 1))

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        """The flat weight vector for one task embedding (e,), or one row per task for (k, e)."""
        tasks = embedding.numel() // embedding.shape[-1]
        flat = self.net[-1](self.features(embedding)).view(tasks, -1)[:, : self.num_target_params] * self.scales
        return flat.view(*embedding.shape[:-1], -1)

    def unflatten(self, flat: torch.Tensor) -> dict:
        # A 1-D parameter is its chunk already; a view of it would only add per-call overhead.
        return {name: chunk if len(shape) == 1 else chunk.view(shape) for name, shape, chunk
                in zip(self.names, self.shapes, flat.split(self.sizes))}


def _generating_once(forward: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """Each task's weights generated at most once per forward call: class-IL inference scores every
    learned task, then runs the chosen ones, and would otherwise run the hypernetwork twice."""
    @wraps(forward)
    def once(self: "HSFModel", *args: Any, **kwargs: Any) -> torch.Tensor:
        self._generated = {}
        try:
            return forward(self, *args, **kwargs)
        finally:
            self._generated = None  # the next call's weights differ (an optimizer step in between)
    return once


class HSFModel(MultiTaskModule):
    """A MultiTaskModule whose per-task weights come from a hypernetwork.

    With task labels (task-IL) each sample uses its task's generated network. With
    `infer_task=True` (class-IL, domain-IL) training uses `training_task` (set by the
    plugin) and evaluation picks, per sample, the learned task whose flow gives its latent code
    the highest likelihood (`inference="flow"`), or whose prediction has the lowest entropy
    (`inference="entropy"`, HNET+ENT); logits are returned in the global class space, with
    the classes of other tasks masked out.

    :param target: the task network whose parameters' names and shapes the hypernetwork generates.
    :param embedding_dim: size of each task's embedding.
    :param chunk_size: generated weights per hypernetwork call (one call per chunk). Large by
        default: each old task takes one input direction of the last layer per chunk, so
        `HSFPlugin(null_space=True)` has room for about hnet_hidden / chunks tasks.
    :param chunk_embedding_dim: size of each chunk's embedding.
    :param hnet_hidden: width of the hypernetwork's two hidden layers (the room above).
    :param unit_init: start the generated weights at the target's own initial scale (the
        hypernetwork's raw outputs at unit standard deviation); False keeps PyTorch's default
        initialisation of the hypernetwork, whose outputs start about ten times smaller.
    :param infer_task: infer the task at evaluation (class-IL, domain-IL) instead of reading task labels.
    :param inference: how the task is inferred: one of `INFERENCE_MODES`.
    :param embedding_init: where a new task's embedding starts, one of `EMBEDDING_INITS`: "random"
        (a standard normal draw) or "previous" (a copy of the most recently added task's embedding,
        so that the new task starts from a network the hypernetwork has learned to generate).
    :param frozen_features: keep the hypernetwork's hidden layers and chunk embeddings at their
        initialisation, so that only its last layer (and the task embeddings) train: each generated
        weight then changes through its own row of that layer, not all of them at once through the
        hidden layers, and `HSFPlugin(null_space=True)` (its default) can keep old tasks exactly
        (see the README's conflicting_curves section).
    """

    def __init__(self, target: HSFTarget, embedding_dim: int = 16, chunk_size: int = 16384,
                 chunk_embedding_dim: int = 16, hnet_hidden: int = 256, infer_task: bool = False,
                 inference: str = "flow", unit_init: bool = True, embedding_init: str = "random",
                 frozen_features: bool = True) -> None:
        super().__init__()
        if inference not in INFERENCE_MODES:
            raise ValueError(f"inference must be one of {INFERENCE_MODES}, got {inference!r}")
        if embedding_init not in EMBEDDING_INITS:
            raise ValueError(f"embedding_init must be one of {EMBEDDING_INITS}, got {embedding_init!r}")
        if inference == "flow" and target.flow is None:
            raise ValueError("flow-based task inference needs a target with a flow (use_flow=True)")
        self.target = target
        # The target's own parameters only give names and shapes; generated weights replace them.
        self.target.requires_grad_(False)
        self.hnet = ChunkedHypernetwork(target, embedding_dim, chunk_size, chunk_embedding_dim, hnet_hidden,
                                        unit_init)
        self.frozen_features = frozen_features
        if frozen_features:
            self.hnet.net[:-1].requires_grad_(False)
            self.hnet.chunk_embeddings.requires_grad_(False)
        if len(list(target.named_parameters(remove_duplicate=False))) != len(self.hnet.names):
            raise ValueError("HSF: the target network must not share (tie) parameters between layers")
        self.embedding_dim, self.embedding_init = embedding_dim, embedding_init
        self.task_embeddings = nn.ParameterDict()
        self.infer_task, self.inference = infer_task, inference
        self.training_task, self.training_classes = None, None  # set by HSFPlugin in class-/domain-IL
        self.class_sets = {}  # task id -> global class ids, recorded after each experience
        # task id -> the class ids its head outputs, in order, recorded by model adaptation (task-IL only)
        self.head_classes: dict[int, list[int]] = {}
        self.latent_stats = {}  # task id -> (mean, std) of its latent codes, recorded after each experience
        self.reconstruction_var = {}  # task id -> its decoder's mean squared error per input feature, likewise
        self.latent_log_prob = self.reconstruction_error = None  # of the last forward pass, for HSFPlugin

    @property
    def compression_ratio(self) -> float:
        """Hypernetwork parameters (without embeddings; frozen ones included) / generated target parameters."""
        return sum(p.numel() for p in self.hnet.parameters()) / self.hnet.num_target_params

    def adaptation(self, experience: Any) -> None:
        if hasattr(experience, "classes_in_this_experience"):
            super().adaptation(experience)
            self._adapt_classes(experience)
            return
        # A regression experience has no classes to count: record its task label only.
        DynamicModule.adaptation(self, experience)
        if self.training:
            self.known_train_tasks_labels |= set(experience.task_labels)

    def _adapt_classes(self, experience: Any) -> None:
        """Record each task's class ids, in the order its head outputs them, and fail here, before
        training, if the head cannot output them."""
        classes = sorted(set(experience.classes_in_this_experience))
        outputs = self.target.num_outputs
        if self.infer_task:
            if classes and max(classes) >= outputs:
                raise ValueError(f"HSF: experience {experience.current_experience} has class ids up to {max(classes)}, "
                                 f"but the model (infer_task=True) has {outputs} outputs, one per class of all tasks; "
                                 f"build it with hsf_model(input_shape, {max(classes) + 1}, infer_task=True)")
            return
        for task in sorted(set(experience.task_labels)):
            known = self.head_classes.setdefault(int(task), [])
            known += [c for c in classes if c not in known]  # appended: a class keeps its output
            if max(known) >= outputs and len(known) > outputs:
                hint = ("; without task labels every experience is task 0: for class-incremental learning build "
                        "it with infer_task=True and one output per class" if task == 0 else "")
                raise ValueError(f"HSF: task {task} has class ids {known}, {len(known)} classes, but the model's "
                                 f"head has {outputs} outputs per task; build it with hsf_model(input_shape, "
                                 f"{len(known)}){hint}")

    def get_extra_state(self) -> dict[str, Any]:
        return {"class_sets": self.class_sets, "latent_stats": self.latent_stats,
                "reconstruction_var": self.reconstruction_var, "head_classes": self.head_classes}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.class_sets = {int(task): list(classes) for task, classes in state["class_sets"].items()}
        self.latent_stats = {int(task): tuple(stats) for task, stats in state["latent_stats"].items()}
        self.reconstruction_var = {int(task): var for task, var in state.get("reconstruction_var", {}).items()}
        self.head_classes = {int(task): list(classes) for task, classes in state.get("head_classes", {}).items()}

    @torch.no_grad()
    def record_latent_stats(self, task: int, inputs: Iterable[torch.Tensor]) -> None:
        """Mean and std of the task's latent codes over `inputs` (an iterable of input batches), and
        its decoder's mean squared error per feature: the variance of its Gaussian p(x | z0)."""
        params = self.hnet.unflatten(self.generate(task))
        decoding = self.target.decoder is not None
        outputs = [functional_call(self.target, params, (x,), {"mode": "reconstruct" if decoding else "encode"})
                   for x in inputs]
        codes = torch.cat([out[0] for out in outputs] if decoding else outputs)
        self.latent_stats[task] = (codes.mean(0), codes.std(0))
        if decoding:
            self.reconstruction_var[task] = torch.cat([out[1] for out in outputs]).mean() / self.target.in_features

    @property
    def learned_tasks(self) -> list[int]:
        return sorted(self.class_sets)

    def add_task(self, task: int) -> None:
        key = str(task)
        if key in self.task_embeddings:
            return
        if self.embedding_init == "previous" and len(self.task_embeddings):
            # ParameterDict keeps insertion order: the last one is the most recently added task's.
            start = list(self.task_embeddings.values())[-1].detach().clone()
        else:
            start = torch.randn(self.embedding_dim, device=self.hnet.chunk_embeddings.device)
        self.task_embeddings[key] = nn.Parameter(start)

    _generated = None  # (task, grad mode) -> flat weights, during one forward call only (see _generating_once)

    def generate(self, task: int) -> torch.Tensor:
        """The flat generated weights of one task (one call per minibatch and task)."""
        generated = {} if self._generated is None else self._generated
        # Keyed by grad mode too: weights generated without a graph must not stand in for ones that need it.
        key = (task, torch.is_grad_enabled())
        if key not in generated:
            generated[key] = self.hnet(self.task_embeddings[str(task)])
        return generated[key]

    def generate_many(self, tasks: list[int], delta: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """The flat generated weights of several tasks, one row each, in one hypernetwork call; with
        `delta` (hypernetwork parameter name -> Δθ), from the hypernetwork at θ + Δθ."""
        embeddings = torch.stack([self.task_embeddings[str(task)] for task in tasks])
        if delta is None:
            return self.hnet(embeddings)
        shifted = {name: p + delta[name] for name, p in self.hnet.named_parameters() if name in delta}
        return functional_call(self.hnet, shifted, (embeddings,))

    def run_target(self, task: int, x: torch.Tensor) -> torch.Tensor:
        if x[0].numel() != self.target.in_features:
            raise ValueError(f"HSF: an input of shape {tuple(x.shape[1:])} has {x[0].numel()} features, "
                             f"but the target network expects {self.target.in_features}")
        params = self.hnet.unflatten(self.generate(task))
        logits = functional_call(self.target, params, (x,), {"latent_stats": self.latent_stats.get(task)})
        self.latent_log_prob = self.target.latent_log_prob
        self.reconstruction_error = self.target.reconstruction_error
        return logits

    @_generating_once
    def forward(self, x: torch.Tensor, task_labels: torch.Tensor | int | None = None) -> torch.Tensor:
        if self.infer_task and not self.training:
            return self.infer(x)
        if self.infer_task:
            return self._masked(self.run_target(self.training_task, x), self.training_classes)
        # Not MultiTaskModule.forward: it sizes outputs by classes, which regression has none of.
        if isinstance(task_labels, int):
            return self.forward_single_task(x, task_labels)
        tasks = task_labels.unique().tolist()
        if len(tasks) == 1:
            return self.forward_single_task(x, tasks[0])
        outputs = {task: self.forward_single_task(x[task_labels == task], task) for task in tasks}
        # Tasks whose heads output global class ids differ in width: the missing classes are masked.
        first = next(iter(outputs.values()))
        out = first.new_full((len(x), max(o.shape[1] for o in outputs.values())), -1e4)
        for task, output in outputs.items():
            out[task_labels == task, : output.shape[1]] = output
        return out

    def forward_single_task(self, x: torch.Tensor, task_label: int) -> torch.Tensor:
        self.add_task(int(task_label))  # evaluation on a task not trained yet: a fresh embedding
        return self._in_class_space(self.run_target(int(task_label), x), self.head_classes.get(int(task_label)))

    @staticmethod
    def _in_class_space(logits: torch.Tensor, classes: Sequence[int] | None) -> torch.Tensor:
        """A task's logits over the global class ids. Classes numbered from zero in each experience
        (or otherwise below the head's size) are the head's outputs as they are; global ids, as
        nc_benchmark(..., task_labels=True) gives by default, are the head's first outputs in the
        order of `classes`, placed at those ids, every other class masked (as MultiHeadClassifier does)."""
        if not classes or max(classes) < logits.shape[1]:
            return logits
        out = logits.new_full((len(logits), max(classes) + 1), -1e4)
        out[:, list(classes)] = logits[:, : len(classes)]
        return out

    @staticmethod
    def _masked(logits: torch.Tensor, classes: Sequence[int] | None) -> torch.Tensor:
        """Logits outside `classes` set far below the rest (global class space)."""
        if classes is None:
            return logits
        masked = torch.full_like(logits, -1e4)
        masked[:, classes] = logits[:, classes]
        return masked

    @torch.no_grad()
    def task_scores(self, x: torch.Tensor) -> torch.Tensor:
        """(n_samples, n_learned_tasks) scores; higher means more likely that task.

        With `inference="flow"`, the log-density of each task's own code of the input,
        log p_t(z0), plus log p_t(x | z0) when the target has a decoder (`HSFTarget.log_density`).
        """
        scores = []
        for task in self.learned_tasks:
            params = self.hnet.unflatten(self.generate(task))
            if self.inference == "flow":
                scores.append(functional_call(self.target, params, (x,), {
                    "mode": "log_density", "latent_stats": self.latent_stats[task],
                    "reconstruction_var": self.reconstruction_var.get(task)}))
            else:
                logits = functional_call(self.target, params, (x,))[:, self.class_sets[task]]
                probs = torch.softmax(logits, dim=1)
                scores.append((probs * probs.clamp_min(1e-12).log()).sum(1))  # negative entropy
        return torch.stack(scores, dim=1)

    def infer(self, x: torch.Tensor) -> torch.Tensor:
        if not self.class_sets:
            # Nothing learned yet: the untrained network of the first task predicts over every class,
            # so that the untrained model's accuracy is measured like any other model's.
            self.add_task(0)
            self.inferred_tasks = torch.zeros(len(x), dtype=torch.long, device=x.device)
            return self.run_target(0, x)
        chosen = self.task_scores(x).argmax(dim=1)
        self.inferred_tasks = torch.tensor(self.learned_tasks, device=x.device)[chosen]
        out = torch.full((x.shape[0], self.target.num_outputs), -1e4, device=x.device)
        for index, task in enumerate(self.learned_tasks):
            rows = chosen == index
            if rows.any():
                logits = self.run_target(task, x[rows])
                classes = self.class_sets[task]
                out[rows.nonzero(), torch.as_tensor(classes, device=x.device)] = logits[:, classes]
        return out


def hsf_model(input_shape: Sequence[int], num_outputs: int, **options: Any) -> HSFModel:
    """An `HSFModel` for inputs of `input_shape` with `num_outputs` outputs per task.

    :param input_shape: shape of one input sample, e.g. (1, 8, 8); it is flattened.
    :param num_outputs: outputs of the head: per task in task-IL, over all classes with
        `infer_task=True`.
    :param options: any keyword of `HSFTarget` (hidden, latent_dim, use_sde, use_flow, sde_steps,
        max_diffusion, sde_samples, head_hidden, decoder_hidden, ...) or of `HSFModel`
        (embedding_dim, chunk_size, hnet_hidden, infer_task, inference, ...), with their defaults.
    """
    target_keys = inspect.signature(HSFTarget).parameters
    unknown = set(options) - set(target_keys) - set(inspect.signature(HSFModel).parameters)
    if unknown:
        raise TypeError(f"hsf_model: unknown option {sorted(unknown)[0]!r} (options are the keywords of "
                        "HSFTarget and HSFModel)")
    target = HSFTarget(math.prod(input_shape), num_outputs,
                       **{key: value for key, value in options.items() if key in target_keys})
    return HSFModel(target, **{key: value for key, value in options.items() if key not in target_keys})
