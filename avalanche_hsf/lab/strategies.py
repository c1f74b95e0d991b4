"""The registry of strategies the CLI runs by name.

Adding a strategy is one entry: an Avalanche template (used as it is), or a plugin dropped into
`Naive`, with the rules its hyperparameters must meet and the settings it fits. A hyperparameter's
default is the one in the signature of the class or function it is passed to; the entry gives a
value only where that signature has none, or where a named variant (`hsf_noreg`) fixes another.
"""

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from avalanche.models.packnet import PackNetModule, PackNetPlugin
from avalanche.training import AGEM, EWC, GEM, MAS, Cumulative, ICaRL, LwF, Naive, SynapticIntelligence
from avalanche.training.plugins import EvaluationPlugin
from avalanche.training.plugins.clock import Clock
from avalanche.training.templates.base_sgd import PeriodicEval
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution
from torch import nn

from ..errors import UserError
from ..models.hsf import EMBEDDING_INITS, INFERENCE_MODES, HSFModel, HSFTarget
from ..models.packnet import packnet_with_task_heads
from ..models.piggyback import piggyback
from ..plugins import HSFPlugin, MASPlugin, PiggybackPlugin
from ..plugins.hsf import NO_ROOM_ADVICE, null_space_room
from ..plugins.hsf import options_problem as hsf_options_problem
from ..plugins.mas import ACCUMULATE_MODES
from ..plugins.piggyback import MASK_OPTIMIZERS, options_problem
from .models import build_hsf, build_mlp_autoencoder, build_mlp_task_heads, build_per_task_mlps
from .params import (
    COUNT,
    FRACTION,
    MAX_WIDTH,
    NON_NEGATIVE,
    OPTIONAL_WIDTH,
    POSITIVE,
    WIDTH,
    OneOf,
    Range,
    Rule,
    check_params,
    registry_entry,
)
from .spec import SETTINGS, TrainingSpec, spec_rules


def plugin_state(strategy) -> list:
    """By default a strategy keeps its state in its plugins (Avalanche's EWC, SI, LwF, GEM...)."""
    return [p for p in strategy.plugins if not isinstance(p, (EvaluationPlugin, Clock, PeriodicEval))]


def _packnet_state(strategy) -> list:
    # PackNet's only persistent state is the per-weight task index (1 byte per weight);
    # its visible/unfrozen masks are derived from it.
    return [m.task_index for m in strategy.model.modules() if isinstance(m, PackNetModule)
            and hasattr(m, "task_index")]


def _packnet_check(hparams, training) -> str | None:
    if hparams["post_prune_epochs"] >= training.epochs:
        return (f"post_prune_epochs ({hparams['post_prune_epochs']}) must be smaller than the "
                f"epochs per experience ({training.epochs})")
    return None


def _piggyback_check(hparams, training) -> str | None:
    return options_problem(hparams["mask_init"], hparams["threshold"], hparams["mask_lr"])


def _piggyback_report(strategy) -> dict:
    """Each finished task's masked-off fraction, per layer and in total, and the mean total."""
    sparsity = strategy.model.mask_sparsity()
    totals = [task["total"] for task in sparsity.values()]
    return {"mask_sparsity": {str(task): value for task, value in sparsity.items()},
            "mask_off": sum(totals) / len(totals) if totals else None}


def _hsf_check(hparams, training) -> str | None:
    if hparams["inference"] == "flow" and not hparams["use_flow"]:
        return "inference must be 'entropy', or 'flow' with use_flow = true"
    return hsf_options_problem(hparams["null_space"], hparams["lookahead"], hparams["frozen_features"])


def _icarl(*, model, optimizer, criterion, memory_size: int, fixed_memory: bool, **kwargs) -> ICaRL:
    # iCaRL brings its own loss (binary cross-entropy with distillation), so `criterion` is unused.
    features = nn.Sequential(nn.Flatten(), model.features)
    return ICaRL(feature_extractor=features, classifier=model.classifier, optimizer=optimizer,
                 memory_size=memory_size, fixed_memory=fixed_memory, buffer_transform=None, **kwargs)


# Every strategy may set its own optimizer and learning rate in its table (default: the scenario's
# [training]), and every strategy's search space includes both, so that none is given an optimizer
# or a tuned learning rate that the others are denied.
TRAINING_KEYS = ("optimizer", "lr")
TRAINING_RULES = {key: spec_rules(TrainingSpec)[key] for key in TRAINING_KEYS}
TRAINING_SPACE = {"optimizer": CategoricalDistribution(("sgd", "adam")),
                  "lr": FloatDistribution(1e-4, 0.3, log=True)}


def _log(low: float, high: float) -> FloatDistribution:
    return FloatDistribution(low, high, log=True)


def _signature_defaults(receiver: Callable) -> dict:
    return {name: p.default for name, p in inspect.signature(receiver).parameters.items()
            if p.default is not inspect.Parameter.empty}


@dataclass(frozen=True)
class StrategyEntry:
    description: str
    template: Callable = Naive  # an Avalanche strategy class, or a function with its signature
    plugin: Callable | None = None  # a plugin class built from the hyperparameters, added to `template`
    rules: Mapping[str, Rule | None] = field(default_factory=dict)  # hyperparameter -> allowed values
    values: Mapping[str, Any] = field(default_factory=dict)  # where the receiving signature has no default
    variant: Mapping[str, Any] = field(default_factory=dict)  # what a named variant fixes otherwise
    settings: tuple = SETTINGS
    wrap_model: Callable | None = None
    multi_head: bool = True  # one head per task in task-IL; False keeps a single shared head
    state: Callable = plugin_state  # the objects that hold the strategy's per-task state
    check: Callable | None = None  # (hparams, training spec) -> an error message, or None
    report: Callable | None = None  # (trained strategy) -> extra fields of the run's result
    build_model: Callable | None = None  # (model spec, input shape, head size, setting, **model hparams)
    model_receivers: tuple = ()  # the callables whose keywords the model hyperparameters are
    training: Mapping[str, Any] = field(default_factory=dict)  # defaults that replace the scenario's [training]
    space: Mapping[str, BaseDistribution] = field(default_factory=dict)  # searched by `tune`, with TRAINING_SPACE
    unused: Callable[[Mapping], Iterable[str]] | None = None  # (hyperparameters) -> those they leave unused
    room_check: Callable | None = None  # (built strategy, experiences) -> an error message if it has no room

    @cached_property
    def model_params(self) -> tuple:
        names = {name for receiver in self.model_receivers for name in inspect.signature(receiver).parameters}
        return tuple(name for name in self.rules if name in names)

    @cached_property
    def defaults(self) -> dict:
        """Every hyperparameter's default: a variant's value, the entry's value, or the signature's."""
        found = {}
        for receiver in self.receivers:
            found = {**_signature_defaults(receiver), **found}
        out = {}
        for name in self.rules:
            for source in (self.variant, self.values, found):
                if name in source:
                    out[name] = source[name]
                    break
            else:
                raise TypeError(f"strategy hyperparameter {name!r} has no default")
        return out

    @property
    def receivers(self) -> tuple:
        """The callables the hyperparameters are passed to, first match first."""
        return (self.plugin or self.template, *self.model_receivers)

    def defaults_for(self, training) -> dict:
        """The defaults, with the optimizer and learning rate of the scenario's `training` (a
        TrainingSpec) unless the entry replaces them."""
        return {**self.defaults, **{key: self.training.get(key, getattr(training, key)) for key in TRAINING_KEYS}}

    def search_space(self, fixed: Mapping[str, Any]) -> dict:
        """What `tune` searches, less what the values a scenario fixes (`fixed`) leave unused."""
        unused = set(self.unused({**self.defaults, **fixed})) if self.unused else set()
        return {key: space for key, space in {**TRAINING_SPACE, **self.space}.items() if key not in unused}

    def template_hparams(self, hparams: dict) -> dict:
        """What the template or plugin takes: neither the model's nor the optimizer's settings."""
        return {k: v for k, v in hparams.items() if k not in self.model_params + TRAINING_KEYS}


def _mas(description: str, **variant) -> StrategyEntry:
    return StrategyEntry(description, plugin=MASPlugin, variant=variant,
                         rules={"lambda_reg": NON_NEGATIVE, "per_sample": None, "accumulate": OneOf(ACCUMULATE_MODES)},
                         space={"lambda_reg": _log(1e-3, 100.0)})


# HSF's hyperparameters: the plugin's loss weights, then the target's and hypernetwork's sizes.
_HSF_RULES = {
    "beta": NON_NEGATIVE, "gamma": NON_NEGATIVE, "reconstruction": NON_NEGATIVE, "reg_tasks": COUNT,
    "latent_dim": Range(2, MAX_WIDTH),  # the coupling flow splits the latent in two
    "encoder_layers": COUNT, "embedding_dim": WIDTH, "chunk_size": WIDTH, "hnet_hidden": WIDTH,
    "use_sde": None, "use_flow": None,
    "inference": OneOf(INFERENCE_MODES), "sde_steps": COUNT, "max_diffusion": NON_NEGATIVE, "sde_samples": COUNT,
    "head_hidden": OPTIONAL_WIDTH, "decoder_hidden": OPTIONAL_WIDTH, "lookahead": None,
    "unit_init": None, "embedding_init": OneOf(EMBEDDING_INITS), "frozen_features": None, "null_space": None,
}
# The loss weights, and the sizes that matter most (a decoder is what lets the flow infer the task).
_HSF_SPACE = {"beta": _log(1e-3, 10.0), "gamma": _log(1e-3, 10.0), "reconstruction": _log(0.1, 100.0),
              "hnet_hidden": CategoricalDistribution((64, 256)), "latent_dim": CategoricalDistribution((8, 32)),
              "decoder_hidden": CategoricalDistribution((0, 100))}


def _hsf_room_check(strategy, experiences: int) -> str | None:
    """Checked before training, so that a model that would stop for no room never starts."""
    if not next(p for p in strategy.plugins if isinstance(p, HSFPlugin)).null_space:
        return None
    room = null_space_room(strategy.model)
    if room < experiences:
        return (f"null_space has room for {room} of the scenario's {experiences} experiences in this "
                f"hypernetwork, so training would stop at experience {room}; {NO_ROOM_ADVICE}")
    return None


def _hsf(description: str, **variant) -> StrategyEntry:
    # Hypernetworks train with Adam, as in von Oswald et al.'s code; SGD with the scenarios'
    # learning rates leaves them near chance.
    return StrategyEntry(description, plugin=HSFPlugin, rules=_HSF_RULES, variant=variant,
                         space={k: v for k, v in _HSF_SPACE.items() if k not in variant},
                         build_model=build_hsf, model_receivers=(HSFTarget, HSFModel),
                         # β weights the output regulariser, which null_space replaces
                         unused=lambda values: ("beta",) if values["null_space"] else (),
                         training={"optimizer": "adam", "lr": 0.001}, check=_hsf_check, room_check=_hsf_room_check,
                         # hypernetwork parameters / generated target parameters
                         report=lambda s: {"compression_ratio": s.model.compression_ratio})


_PIGGYBACK_RULES = {"mask_init": POSITIVE, "threshold": POSITIVE,  # scores start above a positive threshold
                    "per_task_bn": None, "pretrained": None, "masks": None,
                    "mask_optimizer": OneOf(tuple(MASK_OPTIMIZERS)), "mask_lr": POSITIVE}


def _piggyback(description: str, **variant) -> StrategyEntry:
    space = {} if variant.get("masks") is False else {"mask_lr": _log(1e-5, 1e-2)}
    return StrategyEntry(description, plugin=PiggybackPlugin, rules=_PIGGYBACK_RULES, variant=variant, space=space,
                         settings=("task-il",), wrap_model=piggyback, multi_head=False,
                         # packed masks and heads of the finished tasks, as buffers
                         state=lambda s: s.model.task_state(), check=_piggyback_check, report=_piggyback_report)


STRATEGIES = {
    "naive": StrategyEntry("fine-tuning on each experience in turn: the lower bound"),
    "cumulative": StrategyEntry("retrains on all data seen so far (joint training): the upper bound",
                                template=Cumulative, state=lambda s: [s.dataset]),
    "ewc": StrategyEntry("Elastic Weight Consolidation (Kirkpatrick et al. 2017)", template=EWC,
                         rules={"ewc_lambda": NON_NEGATIVE, "mode": OneOf(("separate",))},  # online needs a decay
                         values={"ewc_lambda": 100.0}, space={"ewc_lambda": _log(1.0, 1e6)}),
    "si": StrategyEntry("Synaptic Intelligence (Zenke et al. 2017)", template=SynapticIntelligence,
                        rules={"si_lambda": NON_NEGATIVE}, values={"si_lambda": 1.0},
                        space={"si_lambda": _log(0.1, 1e5)}),
    "lwf": StrategyEntry("Learning without Forgetting (Li & Hoiem 2017)", template=LwF,
                         rules={"alpha": NON_NEGATIVE, "temperature": POSITIVE},  # the temperature divides logits
                         values={"alpha": 1.0, "temperature": 2.0}, space={"alpha": _log(0.01, 100.0)}),
    "gem": StrategyEntry("Gradient Episodic Memory (Lopez-Paz & Ranzato 2017)", template=GEM,
                         rules={"patterns_per_exp": COUNT, "memory_strength": NON_NEGATIVE},
                         values={"patterns_per_exp": 50}, space={"memory_strength": FloatDistribution(0.0, 1.0)}),
    "agem": StrategyEntry("Averaged GEM (Chaudhry et al. 2019)", template=AGEM,
                          rules={"patterns_per_exp": COUNT, "sample_size": COUNT}, values={"patterns_per_exp": 50}),
    "icarl": StrategyEntry("iCaRL: exemplars + nearest-mean classifier (Rebuffi et al. 2017)", template=_icarl,
                           rules={"memory_size": COUNT, "fixed_memory": None},
                           values={"memory_size": 200, "fixed_memory": True}, settings=("class-il",)),
    "packnet": StrategyEntry("PackNet: iterative magnitude pruning per task (Mallya & Lazebnik 2018)",
                             plugin=PackNetPlugin,
                             # PackNet prunes at epoch (epochs - post_prune_epochs): 0 would never prune
                             rules={"post_prune_epochs": COUNT,
                                    "prune_proportion": Range(0, 1, low_open=True, high_open=True)},
                             values={"post_prune_epochs": 1}, space={"prune_proportion": FloatDistribution(0.1, 0.9)},
                             # a head per task, as Piggyback has, rather than Avalanche's one shared head
                             settings=("task-il",), wrap_model=packnet_with_task_heads,
                             multi_head=False, state=_packnet_state, check=_packnet_check),
    "mas": _mas("Memory Aware Synapses, per-sample importance as in the paper (Aljundi et al. 2018)"),
    # The ablation against Avalanche's MAS: its estimator, its accumulation, or both, one at a time.
    "mas_per_batch": _mas("MAS ablation: importance from the batch-summed output norm (the official code)",
                          per_sample=False),
    "mas_ema": _mas("MAS ablation: importance accumulated by an EMA across tasks (as Avalanche's MAS)",
                    accumulate="ema"),
    "mas_per_batch_ema": _mas("MAS ablation: both the per-batch estimator and the EMA", per_sample=False,
                              accumulate="ema"),
    "mas_avalanche": StrategyEntry("Avalanche's built-in MAS (batch-mean norm in train mode, EMA across tasks)",
                                   template=MAS, rules={"lambda_reg": NON_NEGATIVE, "alpha": FRACTION},  # alpha: EMA
                                   space={"lambda_reg": _log(1e-3, 100.0)}),
    "piggyback": _piggyback("Piggyback: a learned binary mask per task over a frozen backbone (Mallya et al. 2018)"),
    "piggyback_heads": _piggyback("Piggyback's control: the same frozen backbone, a head per task, no masks",
                                  masks=False),
    "hsf": _hsf("HSF: hypernetwork-generated network with latent SDE and flow, old tasks' outputs kept "
                "(exactly by default; null_space = false: by the output regulariser)"),
    # hsf as it is by default, under a second name: a file can then run it beside an hsf that sets
    # null_space = false (conflicting_curves does).
    "hsf_null_space": _hsf("HSF keeping old tasks' generated weights exactly (hsf's default): null-space steps of "
                           "the hypernetwork's last layer over frozen features"),
    "hsf_noreg": _hsf("HSF with nothing protecting old tasks (no null space, beta = 0, every hypernetwork weight "
                      "trained): the original model's failure mode", beta=0.0, null_space=False, frozen_features=False),
    "hsf_nosde": _hsf("HSF ablation: no latent SDE (the head reads z0 directly)", use_sde=False),
    "hsf_noflow": _hsf("HSF ablation: no flow; tasks inferred by lowest predictive entropy",
                       use_flow=False, gamma=0.0, inference="entropy"),
    "hsf_ent": _hsf("HSF with entropy-based task inference (HNET+ENT) instead of the flow's likelihood",
                    inference="entropy"),
    "mlp_ae": StrategyEntry("the seed benchmark's plain MLP, one network for every task, trained sequentially "
                            "(regression)", build_model=build_mlp_autoencoder),
    "mlp_heads": StrategyEntry("the same MLP's layers shared by every task, one output layer per task, trained "
                               "sequentially (regression)", build_model=build_mlp_task_heads, settings=("task-il",)),
    "mlp_per_task": StrategyEntry("one independent copy of the same MLP per task: no sharing, no forgetting "
                                  "(regression)", build_model=build_per_task_mlps, settings=("task-il",)),
}


def validate_strategy(name: str, setting: str, hparams, where: str, training) -> dict:
    """`hparams` from a scenario's [strategies.NAME] table, checked against the entry's rules and
    the training keys' (the scenario's `training` gives their defaults)."""
    entry = registry_entry(STRATEGIES, "strategy", name, setting, where)
    defaults = entry.defaults_for(training)
    hparams = check_params(hparams, defaults, {**entry.rules, **TRAINING_RULES}, where)
    problem = entry.check and entry.check({**defaults, **hparams}, training)
    if problem:
        raise UserError(f"{where}: {problem}")
    return hparams


def build_strategy(name: str, hparams: dict, *, model, make_optimizer, criterion, plugins=(), **template_kwargs):
    """Build the named strategy around `model` from its full hyperparameters (`defaults_for` updated
    with the scenario's table); the optimizer comes from `make_optimizer(model)`."""
    entry = STRATEGIES[name]
    if entry.wrap_model is not None:
        model = entry.wrap_model(model)
    plugins = list(plugins)
    template_hparams = entry.template_hparams(hparams)
    if entry.plugin is not None:
        try:
            plugins.insert(0, entry.plugin(**template_hparams))
        except (AssertionError, ValueError) as err:
            raise UserError(f"strategy '{name}': {err}") from err
        template_hparams = {}
    return entry.template(model=model, optimizer=make_optimizer(model), criterion=criterion,
                          plugins=plugins, **template_hparams, **template_kwargs)
