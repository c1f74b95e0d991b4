"""SIGTERM (a cluster preempting the job) as a request to stop, honoured where stopping is safe.

The signal handler only notes the request; `raise_if_stopped` raises `Preempted` at the next
check: between training and evaluation iterations (`StopCheck`), between jobs and while the
driver waits on its workers. Raised by the handler itself, at any point of the code, it could
leave a lock held or a condition's waiter lost (a TensorBoard writer's queue), and the process
would then hang on exit.
"""

import contextlib
import signal
import threading

from avalanche.training.plugins import SupervisedPlugin


class Preempted(BaseException):
    """SIGTERM arrived. A BaseException, like KeyboardInterrupt, so that no `except Exception`
    on the way swallows it."""


_requested: str | None = None  # the name of the signal that asked this process to stop
_listening = True  # False in a local worker between jobs, where a SIGTERM is not for a job


def _request_stop(signum, frame) -> None:
    global _requested
    if _listening:
        _requested = signal.Signals(signum).name


def raise_if_stopped() -> None:
    """Preempted if a stop was requested."""
    if _requested is not None:
        raise Preempted(f"stopped by {_requested}")


def stop_on_sigterm():
    """From now on, SIGTERM requests a stop in this process (a local worker); returns the handler
    it replaces."""
    return signal.signal(signal.SIGTERM, _request_stop)


@contextlib.contextmanager
def sigterm_stops():
    """Within the block, SIGTERM requests a stop (in the main thread; elsewhere: no change); a
    request left unanswered ends with the block."""
    global _requested
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = stop_on_sigterm()
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        _requested = None


def listen_between_jobs(listening: bool) -> None:
    """In a local worker: whether a SIGTERM now stops the job (True while one runs); a request
    is forgotten when the job ends."""
    global _listening, _requested
    _listening = listening
    if not listening:
        _requested = None


class StopCheck(SupervisedPlugin):
    """Stops training or evaluation after the iteration in which a stop was requested."""

    def after_training_iteration(self, strategy, **kwargs) -> None:
        raise_if_stopped()

    def after_eval_iteration(self, strategy, **kwargs) -> None:
        raise_if_stopped()
