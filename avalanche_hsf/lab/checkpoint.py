"""Resumable runs: one checkpoint per (strategy, seed), rewritten after every training experience.

The strategy is saved with Avalanche's own `save_checkpoint` (which also stores the torch, numpy
and python RNG states through `RNGManager`) and restored with `maybe_load_checkpoint`; `compat.py`
makes both work on the pinned stack. The run's own progress (the evaluations done so far and the
settings the run was started with) travels inside the same file, as an attribute of the
strategy, so the two can never disagree. Every write goes through `atomic_write_bytes`. A strategy
that cannot be pickled stops with a one-line `UserError` naming it: before training if it cannot
be pickled as built, otherwise (state that only training creates) at its first save.
"""

import contextlib
import io
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from avalanche.checkpointing import maybe_load_checkpoint, save_checkpoint

from ..errors import UserError
from .files import atomic_write_bytes

PROGRESS_ATTRIBUTE = "avalanche_hsf_progress"
_PICKLING_ERRORS = (TypeError, AttributeError, pickle.PicklingError)  # what pickle and dill raise


@dataclass
class RunProgress:
    """What a run has done so far; `config` is what it was started with."""
    config: dict
    initial: list | None = None
    matrix: list = field(default_factory=list)
    train_seconds: float = 0.0
    resumed_at: list = field(default_factory=list)  # the experience each resumption started from


def _differences(saved: dict, wanted: dict, prefix: str = "") -> list[str]:
    keys = sorted(set(saved) | set(wanted))
    out = []
    for key in keys:
        a, b = saved.get(key), wanted.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key} was {a!r}, now {b!r}")
    return out


class RunCheckpoint:
    """The checkpoint file of one (strategy, seed) run."""

    def __init__(self, path, config: dict, required: bool = True):
        """`config`: the run's settings in their stored form (`runner.run_config`). `required`: a
        strategy that cannot be saved is an error; if not, the run goes on without checkpoints."""
        self.path = Path(path)
        self.config = config
        self.required = required
        self.enabled = True

    def restore(self, strategy, device="cpu") -> RunProgress:
        """Load the saved state into `strategy`, or start afresh if there is no checkpoint yet.
        First, `strategy` (freshly built, not yet trained) is saved to memory, so that one that
        cannot be checkpointed is found here."""
        if self._serialize(strategy) is None or not self.path.exists():
            return RunProgress(self.config)
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # Avalanche prints its own resume chatter
                maybe_load_checkpoint(strategy, str(self.path), map_location=device)
        except (OSError, EOFError, RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, AttributeError,
                ValueError, TypeError) as err:
            raise UserError(f"checkpoint {self.path} cannot be read ({type(err).__name__}: {err}); "
                            "delete it to start this run over") from err
        progress = getattr(strategy, PROGRESS_ATTRIBUTE, None)
        if not isinstance(progress, RunProgress):
            raise UserError(f"checkpoint {self.path} was not written by `avalanche-hsf run`; "
                            "delete it or choose another --checkpoint-dir")
        changed = _differences(progress.config, self.config)
        if changed:
            raise UserError(f"checkpoint {self.path} belongs to a run with other settings ({'; '.join(changed)}); "
                            "rerun with the original settings, or delete it / choose another --checkpoint-dir "
                            "to start over")
        progress.resumed_at.append(len(progress.matrix))
        return progress

    def save(self, strategy, progress: RunProgress) -> None:
        setattr(strategy, PROGRESS_ATTRIBUTE, progress)
        data = self._serialize(strategy)
        if data is not None:
            atomic_write_bytes(self.path, data)

    def _serialize(self, strategy) -> bytes | None:
        """The checkpoint's bytes; None once the strategy proved it cannot be saved (not required)."""
        if not self.enabled:
            return None
        buffer = io.BytesIO()
        try:
            save_checkpoint(strategy, buffer)
        except _PICKLING_ERRORS as err:  # state that appears only in training is caught at the first save
            if self.required:
                raise UserError(f"strategy '{self.config['strategy']}' cannot be checkpointed ({type(err).__name__}: "
                                f"{err}); run it without --checkpoint-dir") from err
            print(f"not checkpointed, so not resumable: {type(err).__name__}: {err}")
            self.enabled = False
            return None
        return buffer.getvalue()
