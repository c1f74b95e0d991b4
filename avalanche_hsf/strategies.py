"""The registry of strategies the CLI runs by name.

Adding a strategy is one entry: an Avalanche template (used as it is), or a plugin dropped
into `Naive`, with its default hyperparameters and the settings it fits.
"""

from dataclasses import dataclass, field
from typing import Callable

from avalanche.models.packnet import PackNetModel, PackNetModule, PackNetPlugin
from avalanche.training import AGEM, EWC, GEM, MAS, ICaRL, LwF, Cumulative, Naive, SynapticIntelligence
from avalanche.training.plugins import EvaluationPlugin
from avalanche.training.plugins.clock import Clock
from avalanche.training.templates.base_sgd import PeriodicEval
from torch import nn

from .errors import UserError
from .models import build_mlp_autoencoder
from .models.hsf import build_hsf_model
from .models.piggyback import MASK_INIT, THRESHOLD, piggyback
from .plugins import MASPlugin
from .plugins.hsf import HSFPlugin
from .plugins.piggyback import PiggybackPlugin, options_problem
from .scenario import SETTINGS, check_params, registry_entry


def plugin_state(strategy):
    """By default a strategy keeps its state in its plugins (Avalanche's EWC, SI, LwF, GEM...)."""
    return [p for p in strategy.plugins if not isinstance(p, (EvaluationPlugin, Clock, PeriodicEval))]


def _packnet_state(strategy):
    # PackNet's only persistent state is the per-weight task index (1 byte per weight);
    # its visible/unfrozen masks are derived from it.
    return [m.task_index for m in strategy.model.modules() if isinstance(m, PackNetModule)
            and hasattr(m, "task_index")]


def _packnet_check(hparams, training):
    if hparams["post_prune_epochs"] >= training.epochs:
        return (f"post_prune_epochs ({hparams['post_prune_epochs']}) must be smaller than the "
                f"epochs per experience ({training.epochs})")
    return None


def _piggyback_check(hparams, training):
    return options_problem(hparams["mask_init"], hparams["threshold"])


_HSF_MODEL_DEFAULTS = {"latent_dim": 8, "embedding_dim": 16, "chunk_size": 1024, "hnet_hidden": 64,
                       "use_sde": True, "use_flow": True, "inference": "flow", "sde_steps": 10,
                       "max_diffusion": 0.1, "sde_samples": 1, "head_hidden": 0,
                       "decoder_hidden": 0}


def _hsf_check(hparams, training):
    if hparams["inference"] == "flow" and not hparams["use_flow"]:
        return "inference must be 'entropy', or 'flow' with use_flow = true"
    return None


def _hsf(description: str, **overrides) -> "StrategyEntry":
    # Hypernetworks train with Adam, as in von Oswald et al.'s code; SGD with the scenarios'
    # learning rates leaves them near chance.
    defaults = {"beta": 0.1, "gamma": 0.1, "reconstruction": 1.0, "reg_tasks": 8, "optimizer": "adam", "lr": 0.001,
                **_HSF_MODEL_DEFAULTS, **overrides}
    return StrategyEntry(description, plugin=HSFPlugin, defaults=defaults, build_model=build_hsf_model,
                         model_params=tuple(_HSF_MODEL_DEFAULTS), training_params=("optimizer", "lr"),
                         check=_hsf_check)


def _icarl(*, model, optimizer, criterion, **kwargs):
    # iCaRL brings its own loss (binary cross-entropy with distillation), so `criterion` is unused.
    features = nn.Sequential(nn.Flatten(), model.features)
    return ICaRL(feature_extractor=features, classifier=model.classifier, optimizer=optimizer,
                 buffer_transform=None, **kwargs)


@dataclass(frozen=True)
class StrategyEntry:
    description: str
    template: Callable = Naive  # an Avalanche strategy class, or a function with its signature
    plugin: Callable | None = None  # a plugin class built from the hyperparameters, added to `template`
    defaults: dict = field(default_factory=dict)
    settings: tuple = SETTINGS
    wrap_model: Callable | None = None
    multi_head: bool = True  # one head per task in task-IL; False keeps a single shared head
    state: Callable = plugin_state  # the objects that hold the strategy's per-task state
    check: Callable | None = None  # (hparams, training spec) -> an error message, or None; ranges are in BOUNDS
    build_model: Callable | None = None  # (model spec, input shape, head size, setting, **hparams) -> model
    model_params: tuple = ()  # the hyperparameters that go to `build_model` rather than the plugin
    training_params: tuple = ()  # hyperparameters overriding the scenario's training (e.g. optimizer, lr)

    def plugin_hparams(self, hparams: dict) -> dict:
        return {k: v for k, v in hparams.items() if k not in self.model_params + self.training_params}


STRATEGIES = {
    "naive": StrategyEntry("fine-tuning on each experience in turn: the lower bound"),
    "cumulative": StrategyEntry("retrains on all data seen so far (joint training): the upper bound",
                                template=Cumulative, state=lambda s: [s.dataset]),
    "ewc": StrategyEntry("Elastic Weight Consolidation (Kirkpatrick et al. 2017)", template=EWC,
                         defaults={"ewc_lambda": 100.0, "mode": "separate"}),
    "si": StrategyEntry("Synaptic Intelligence (Zenke et al. 2017)", template=SynapticIntelligence,
                        defaults={"si_lambda": 1.0}),
    "lwf": StrategyEntry("Learning without Forgetting (Li & Hoiem 2017)", template=LwF,
                         defaults={"alpha": 1.0, "temperature": 2.0}),
    "gem": StrategyEntry("Gradient Episodic Memory (Lopez-Paz & Ranzato 2017)", template=GEM,
                         defaults={"patterns_per_exp": 50, "memory_strength": 0.5}),
    "agem": StrategyEntry("Averaged GEM (Chaudhry et al. 2019)", template=AGEM,
                          defaults={"patterns_per_exp": 50, "sample_size": 64}),
    "icarl": StrategyEntry("iCaRL: exemplars + nearest-mean classifier (Rebuffi et al. 2017)",
                           template=_icarl, defaults={"memory_size": 200, "fixed_memory": True},
                           settings=("class-il",)),
    "packnet": StrategyEntry("PackNet: iterative magnitude pruning per task (Mallya & Lazebnik 2018)",
                             plugin=PackNetPlugin, defaults={"post_prune_epochs": 1, "prune_proportion": 0.5},
                             settings=("task-il",), wrap_model=PackNetModel, multi_head=False,
                             state=_packnet_state, check=_packnet_check),
    "mas": StrategyEntry("Memory Aware Synapses, per-sample importance as in the paper (Aljundi et al. 2018)",
                         plugin=MASPlugin, defaults={"lambda_reg": 1.0, "per_sample": True, "accumulate": "sum"}),
    "mas_avalanche": StrategyEntry("Avalanche's built-in MAS (batch-mean norm in train mode, EMA across tasks)",
                                   template=MAS, defaults={"lambda_reg": 1.0, "alpha": 0.5}),
    "piggyback": StrategyEntry("Piggyback: a learned binary mask per task over a frozen backbone (Mallya et al. 2018)",
                               plugin=PiggybackPlugin, defaults={"mask_init": MASK_INIT, "threshold": THRESHOLD,
                                                                 "per_task_bn": False, "pretrained": False},
                               settings=("task-il",), wrap_model=piggyback, multi_head=False,
                               # packed masks and heads of the finished tasks, as buffers
                               state=lambda s: s.model.task_state(), check=_piggyback_check),
    "hsf": _hsf("HSF: hypernetwork-generated network with latent SDE and flow, outputs protected"),
    "hsf_noreg": _hsf("HSF without the output regulariser (beta = 0): the original model's failure mode",
                      beta=0.0),
    "hsf_nosde": _hsf("HSF ablation: no latent SDE (the head reads z0 directly)", use_sde=False),
    "hsf_noflow": _hsf("HSF ablation: no flow; tasks inferred by lowest predictive entropy",
                       use_flow=False, gamma=0.0, inference="entropy"),
    "hsf_ent": _hsf("HSF with entropy-based task inference (HNET+ENT) instead of the flow's likelihood",
                    inference="entropy"),
    "mlp_ae": StrategyEntry("the seed benchmark's plain MLP autoencoder, trained sequentially (regression)",
                            build_model=build_mlp_autoencoder),
}


def validate_strategy(name: str, setting: str, hparams, where: str, training=None) -> dict:
    entry = registry_entry(STRATEGIES, "strategy", name, setting, where)
    hparams = check_params(hparams, entry.defaults, where, scope=name)
    problem = entry.check and training and entry.check({**entry.defaults, **hparams}, training)
    if problem:
        raise UserError(f"{where}: {problem}")
    return hparams


def build_strategy(name: str, hparams: dict, *, model, make_optimizer, criterion, plugins=(), **template_kwargs):
    """Build the named strategy around `model`; returns (strategy, full hyperparameters)."""
    entry = STRATEGIES[name]
    hparams = {**entry.defaults, **hparams}
    if entry.wrap_model is not None:
        model = entry.wrap_model(model)
    plugins = list(plugins)
    template_hparams = hparams
    if entry.plugin is not None:
        try:
            plugins.insert(0, entry.plugin(**entry.plugin_hparams(hparams)))
        except (AssertionError, ValueError) as err:
            raise UserError(f"strategy '{name}': {err}") from err
        template_hparams = {}
    strategy = entry.template(model=model, optimizer=make_optimizer(model), criterion=criterion,
                              plugins=plugins, **template_hparams, **template_kwargs)
    return strategy, hparams
