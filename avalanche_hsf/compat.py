"""Fixes for faults of avalanche-lib 0.6.0 and the libraries it runs with, applied on import of
`avalanche_hsf`, each only where its fault is present.

Every fix names the versions it was written for and checks, on the installed code, that the fault
is really there before it changes anything; it then says once, through `logging` (logger
`avalanche_hsf.compat`, level INFO), what it changed. `AVALANCHE_HSF_NO_FIXES=all` turns them all
off; a comma-separated list of names (`si-weight-copy,agem-pickle`) turns off those.

si-weight-copy: `SynapticIntelligencePlugin.extract_weights` stores
`param.detach().cpu().flatten()`. On a CPU model that is a view of the live parameter, not a
copy, so the "old" and "new" weights it compares are the same tensor, the path integral is
always zero, and SI silently degrades to naive fine-tuning. Storing a copy restores the method.
The plugin calls the function through its class name, so it is replaced there.

optim-submodules and sentinel-pickle: `avalanche.checkpointing.save_checkpoint` pickles the
strategy with dill and fails with "Can't pickle sentinel: it's not the same object as
typing_extensions.sentinel". Two faults meet:
1. torch.optim's `__init__` deletes its submodule attributes (`del sgd`, `del adam`, ...). dill
   locates a class by walking attributes from the package (`torch.optim` -> `sgd` -> `SGD`), so
   it concludes that `torch.optim.sgd.SGD` cannot be imported and pickles the whole class by
   value, methods and all.
2. Among those methods is a `typing_extensions.deprecated` wrapper whose code refers to
   typing_extensions' private `_marker` sentinel. That sentinel is created as
   `sentinel("sentinel")`, so it pickles as the global `typing_extensions.sentinel`, which is the
   sentinel class itself, and pickle refuses.
Re-attaching the loaded submodules to their package fixes (1): dill pickles optimizers by
reference again, so a loaded optimizer is a real `torch.optim.SGD`. Naming the sentinel after
the variable that holds it fixes (2) for anything else that is still pickled by value.

agem-pickle: after its first experience `AGEMPlugin` keeps `buffer_dliter`, a generator over its
replay buffer (`iter(GroupBalancedInfiniteDataLoader)`), so `save_checkpoint` fails with "cannot
pickle 'generator' object" (Avalanche issue #1517). The plugin is given `__getstate__` and
`__setstate__` that leave the generator out and build it again from `buffer_dataloader` on load.
Nothing is lost: the generator is rebuilt, not yet started, at the end of every experience.

packnet-hooks: a PackNet layer keeps its frozen weights frozen with a gradient hook on the wrapped
weight (`weight.register_hook(self._remove_gradient_hook)`), and torch never pickles tensor hooks.
A PackNet model loaded from a checkpoint therefore trains the weights of its finished tasks, and
a resumed run departs from an uninterrupted one. The layers are given a `__setstate__` that
registers the hook again.

mas-zero-loss: Avalanche's `MASPlugin.before_backward` checks `if not strategy.loss`, and a loss
tensor of exactly 0.0 (a minibatch fit perfectly, which float32 cross-entropy reaches with
confident logits) is falsy, so training stops with "ValueError: Loss is not available". The
penalty is the same sum over the same parameters in the same order, so every run that never met
the fault gives the same numbers; the check becomes `strategy.loss is None`.

wandb-api: Avalanche's `WandBLogger` uses two names that recent wandb releases (0.31.0 here) no
longer have. `before_run` calls `wandb.util.generate_id()` to name the run, so the logger cannot
even be built ("module 'wandb.util' has no attribute 'generate_id'"), and `log_single_metric`
names `wandb.viz.CustomChart` for every metric, so every log call fails with "module 'wandb' has
no attribute 'viz'" (Avalanche issue #1674). Both still exist elsewhere in wandb:
`wandb.plot.CustomChart` and `wandb.sdk.lib.runid.generate_id`. The logger's `import_wandb` gives
it wandb seen with the two old names pointing there; wandb itself is not changed.

csv-logger-pickle: Avalanche's `CSVLogger` holds its two open files, so a strategy that logs to
CSV cannot be saved with `save_checkpoint` ("cannot pickle '_io.TextIOWrapper' object"). The
logger is given `__getstate__` and `__setstate__` that leave the files out and open them again
for appending on load, as Avalanche's `TensorboardLogger` opens a new writer in its folder.
"""

import inspect
import logging
import os
import pickle
import sys
import tempfile
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import torch
import torch.optim
import typing_extensions
from avalanche.benchmarks.utils import AvalancheDataset
from avalanche.logging import CSVLogger, WandBLogger
from avalanche.models.packnet import PackNetModel, WeightAndBiasPackNetModule
from avalanche.training.plugins import MASPlugin
from avalanche.training.plugins.agem import AGEMPlugin
from avalanche.training.plugins.synaptic_intelligence import SynapticIntelligencePlugin
from packaging.specifiers import SpecifierSet

logger = logging.getLogger(__name__)
DISABLE_VARIABLE = "AVALANCHE_HSF_NO_FIXES"


@dataclass(frozen=True)
class Fix:
    """One fix: the versions it was written for, a check that the fault is present, the change."""
    name: str
    summary: str
    versions: dict  # distribution name -> the versions (a PEP 440 specifier) that have the fault
    fault_present: Callable[[], bool]
    apply: Callable[[], None]

    def applies(self) -> bool:
        for distribution, specifier in self.versions.items():
            try:
                if version(distribution) not in SpecifierSet(specifier):
                    return False
            except PackageNotFoundError:
                return False
        return self.fault_present()


# --- si-weight-copy ------------------------------------------------------------------------

@torch.no_grad()
def _extract_weights_copy(model: torch.nn.Module, target: dict[str, Any], excluded_parameters: set[str]) -> None:
    for name, param in SynapticIntelligencePlugin.allowed_parameters(model, excluded_parameters):
        target[name].data = param.detach().cpu().flatten().clone()


def _si_stores_views() -> bool:
    """Whether SI's `extract_weights` stores views of the live weights of a CPU model."""
    layer = torch.nn.Linear(2, 2)
    stored = {name: types.SimpleNamespace(data=None) for name, _ in layer.named_parameters()}
    SynapticIntelligencePlugin.extract_weights(layer, stored, set())
    return stored["weight"].data.untyped_storage().data_ptr() == layer.weight.untyped_storage().data_ptr()


def _copy_si_weights() -> None:
    SynapticIntelligencePlugin.extract_weights = staticmethod(_extract_weights_copy)


# --- optim-submodules -------------------------------------------------------------------------

def _detached_submodules(package: types.ModuleType) -> dict:
    prefix = package.__name__ + "."
    return {name[len(prefix):]: module for name, module in list(sys.modules.items())
            if name.startswith(prefix) and module is not None and "." not in name[len(prefix):]
            and not hasattr(package, name[len(prefix):])}


def _reattach_optim_submodules() -> None:
    for child, module in _detached_submodules(torch.optim).items():
        setattr(torch.optim, child, module)


# --- sentinel-pickle --------------------------------------------------------------------------

def _sentinel_unpicklable() -> bool:
    if not hasattr(typing_extensions, "_marker"):
        return False
    try:
        return pickle.loads(pickle.dumps(typing_extensions._marker)) is not typing_extensions._marker
    except (pickle.PicklingError, AttributeError, TypeError):
        return True


def _name_sentinel() -> None:
    typing_extensions._marker._name = "_marker"  # what `__reduce__` returns; setting `__name__` warns


# --- agem-pickle ------------------------------------------------------------------------------

def _agem_with_memory() -> AGEMPlugin:
    """An AGEMPlugin as it is after an experience: a memory, and the iterator over it."""
    plugin = AGEMPlugin(patterns_per_experience=2, sample_size=2)
    data = torch.utils.data.TensorDataset(torch.zeros(2, 1), torch.zeros(2, dtype=torch.long))
    plugin.update_memory(AvalancheDataset([data]))  # no more patterns than it keeps: no shuffle, no RNG used
    return plugin


def _agem_unpicklable() -> bool:
    try:
        pickle.dumps(_agem_with_memory())
    except TypeError as err:
        return "generator" in str(err)
    return False


def _agem_getstate(self: AGEMPlugin) -> dict:
    # Checkpoints are taken between experiences, after `after_training_exp`, whose `update_memory`
    # has just replaced the iterator by a new, not yet started generator: it stands for nothing but
    # `iter(buffer_dataloader)` (its body, which builds the loader and its samplers, runs only on
    # the first `next`, in the next experience), so it is rebuilt on load. A started one is
    # mid-experience: its position cannot be saved, so it is refused rather than silently reset.
    state = dict(self.__dict__)
    iterator = state.pop("buffer_dliter", None)
    if inspect.isgenerator(iterator) and inspect.getgeneratorstate(iterator) != inspect.GEN_CREATED:
        raise TypeError("AGEMPlugin's replay iterator is in use; it can only be saved between experiences")
    return state


def _agem_setstate(self: AGEMPlugin, state: dict) -> None:
    self.__dict__.update(state)
    self.buffer_dliter = iter([]) if self.buffer_dataloader is None else iter(self.buffer_dataloader)


def _make_agem_picklable() -> None:
    AGEMPlugin.__getstate__ = _agem_getstate
    AGEMPlugin.__setstate__ = _agem_setstate


# --- packnet-hooks ----------------------------------------------------------------------------

def _packnet_loses_its_gradient_mask() -> bool:
    """Whether a pickled PackNet layer, all of whose weights are frozen, still gets gradients."""
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):  # leaves the RNG as it was
        warnings.simplefilter("ignore")  # torch warns that the hook is not serialized
        layer = pickle.loads(pickle.dumps(PackNetModel.wrap(torch.nn.Linear(2, 1))))
    layer.unfrozen_mask.zero_()
    layer(torch.ones(1, 2)).sum().backward()
    return bool(layer.wrappee.weight.grad.abs().sum() > 0)


def _register_packnet_hooks_on_load() -> None:
    load = WeightAndBiasPackNetModule.__setstate__

    def setstate(self: WeightAndBiasPackNetModule, state: dict) -> None:
        load(self, state)
        self.wrappee.weight.register_hook(self._remove_gradient_hook)  # as `__init__` does

    WeightAndBiasPackNetModule.__setstate__ = setstate


# --- mas-zero-loss --------------------------------------------------------------------------------

def _mas_refuses_a_zero_loss() -> bool:
    """Whether Avalanche's MAS stops training on a loss of exactly 0.0."""
    layer = torch.nn.Linear(1, 1)
    plugin = MASPlugin()
    plugin.params = {name: p.detach().clone() for name, p in layer.named_parameters()}
    plugin.importance = {name: torch.ones_like(p) for name, p in layer.named_parameters()}
    strategy = types.SimpleNamespace(clock=types.SimpleNamespace(train_exp_counter=1), model=layer,
                                     loss=torch.tensor(0.0))
    try:
        plugin.before_backward(strategy)
    except ValueError:
        return True
    return False


def _mas_before_backward(self: MASPlugin, strategy: Any, **kwargs: Any) -> None:
    if strategy.clock.train_exp_counter == 0:
        return
    if not self.importance or not self.params or strategy.loss is None:
        raise ValueError("MAS: importance, parameters or loss not available")
    penalty = 0.0
    for name, param in strategy.model.named_parameters():
        if name in self.importance:
            anchor, importance = self.params[name].expand(param.shape), self.importance[name].expand(param.shape)
            penalty += torch.sum(importance * (param - anchor).pow(2))
    strategy.loss += self._lambda * penalty


def _accept_a_zero_loss_in_mas() -> None:
    MASPlugin.before_backward = _mas_before_backward


# --- wandb-api -------------------------------------------------------------------------------------

class _Overlay:
    """`target` seen with some attributes added or replaced; every other attribute is `target`'s."""

    def __init__(self, target: Any, **attributes: Any) -> None:
        self.__dict__.update(attributes, _target=target)

    def __getattr__(self, name: str) -> Any:  # called only for what the overlay does not hold
        return getattr(self.__dict__["_target"], name)


def _wandb_logger_fails() -> bool:
    """Whether `WandBLogger` fails to start a run or to log a number with the installed wandb; the
    check starts no run and logs nothing."""
    def nothing(*args: Any, **kwargs: Any) -> None:
        return None

    logger = WandBLogger.__new__(WandBLogger)  # not initialised: `__init__` would start a W&B run
    logger.import_wandb()
    logger.wandb = _Overlay(logger.wandb, init=nothing, log=nothing, run=types.SimpleNamespace(_label=nothing))
    logger.init_kwargs, logger.log_artifacts = {}, False
    try:
        logger.before_run()
        logger.log_single_metric("probe", 1.0, 0)
    except AttributeError as err:
        return "viz" in str(err) or "generate_id" in str(err)
    return False


def _wandb_with_old_names(wandb: Any) -> Any:
    old = {}
    if not hasattr(wandb, "viz"):
        old["viz"] = types.SimpleNamespace(CustomChart=wandb.plot.CustomChart)
    if not hasattr(wandb.util, "generate_id"):
        from wandb.sdk.lib.runid import generate_id
        old["util"] = _Overlay(wandb.util, generate_id=generate_id)
    return _Overlay(wandb, **old) if old else wandb


def _give_wandb_logger_old_names() -> None:
    import_wandb = WandBLogger.import_wandb

    def import_wandb_with_old_names(self: WandBLogger) -> None:
        import_wandb(self)
        self.wandb = _wandb_with_old_names(self.wandb)

    WandBLogger.import_wandb = import_wandb_with_old_names


# --- csv-logger-pickle ------------------------------------------------------------------------------

_CSV_FILES = {"training_file": "training_results.csv", "eval_file": "eval_results.csv"}  # as CSVLogger names them


def _csv_logger_unpicklable() -> bool:
    with tempfile.TemporaryDirectory() as folder:
        logger = CSVLogger(folder)
        try:
            pickle.dumps(logger)
        except TypeError:
            return True
        finally:
            logger.close()
    return False


def _csv_getstate(self: CSVLogger) -> dict:
    return {key: value for key, value in self.__dict__.items() if key not in _CSV_FILES}


def _csv_setstate(self: CSVLogger, state: dict) -> None:
    self.__dict__.update(state)
    for attribute, name in _CSV_FILES.items():
        setattr(self, attribute, open(os.path.join(self.log_folder, name), "a"))


def _make_csv_logger_picklable() -> None:
    CSVLogger.__getstate__ = _csv_getstate
    CSVLogger.__setstate__ = _csv_setstate


FIXES = (
    Fix("si-weight-copy", "SynapticIntelligencePlugin.extract_weights stores copies, not views, of the weights",
        {"avalanche-lib": "==0.6.*"}, _si_stores_views, _copy_si_weights),
    Fix("optim-submodules", "torch.optim's submodules re-attached, so that dill pickles optimizers by reference",
        {"avalanche-lib": "==0.6.*"}, lambda: bool(_detached_submodules(torch.optim)), _reattach_optim_submodules),
    Fix("sentinel-pickle", "typing_extensions._marker named after its variable, so that it pickles",
        {"avalanche-lib": "==0.6.*"}, _sentinel_unpicklable, _name_sentinel),
    Fix("agem-pickle", "AGEMPlugin pickles without its replay-buffer generator and rebuilds it on load",
        {"avalanche-lib": "==0.6.*"}, _agem_unpicklable, _make_agem_picklable),
    Fix("packnet-hooks", "PackNet's layers register their gradient mask again when loaded from a checkpoint",
        {"avalanche-lib": "==0.6.*"}, _packnet_loses_its_gradient_mask, _register_packnet_hooks_on_load),
    Fix("mas-zero-loss", "MASPlugin accepts a loss of exactly 0.0 instead of stopping with 'Loss is not available'",
        {"avalanche-lib": "==0.6.*"}, _mas_refuses_a_zero_loss, _accept_a_zero_loss_in_mas),
    # Which wandb releases lack the two names is not pinned here (0.31.0 does); the check decides.
    Fix("wandb-api", "WandBLogger finds wandb.viz.CustomChart and wandb.util.generate_id where wandb now keeps them",
        {"avalanche-lib": "==0.6.*", "wandb": ">0"}, _wandb_logger_fails, _give_wandb_logger_old_names),
    Fix("csv-logger-pickle", "CSVLogger pickles without its open files and reopens them for appending on load",
        {"avalanche-lib": "==0.6.*"}, _csv_logger_unpicklable, _make_csv_logger_picklable),
)

applied: list[str] = []  # names of the fixes applied in this process


def disabled_fixes() -> set[str]:
    """The fix names that `AVALANCHE_HSF_NO_FIXES` turns off."""
    words = {word.strip() for word in os.environ.get(DISABLE_VARIABLE, "").split(",") if word.strip()}
    return {fix.name for fix in FIXES} if words & {"all", "1"} else words


def apply_fixes() -> list[str]:
    """Apply every fix whose fault is present and that is not turned off; return the names applied."""
    disabled = disabled_fixes()
    for fix in FIXES:
        if fix.name in applied or fix.name in disabled or not fix.applies():
            continue
        fix.apply()
        applied.append(fix.name)
        logger.info("avalanche-hsf applied fix %s: %s (set %s=%s to turn it off)",
                    fix.name, fix.summary, DISABLE_VARIABLE, fix.name)
    return list(applied)
