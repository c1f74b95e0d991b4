"""Where jobs run: in this process, in local worker processes, or as tasks on a Ray cluster.

A job is a module-level function applied to one picklable item (a sweep's unit, a tuning trial
on one seed). Every executor yields `(index, result, error)` as each job ends, so a failed job
never stops the others. A local worker that dies (killed, out of memory) breaks its pool: the
pool is started again and the jobs that had not ended are run again, which for a sweep's units
means from their last checkpoint. Ray retries a task whose worker dies by itself.

SIGTERM (a cluster preempting the job) stops the driver with `Preempted` (stopping.py) at its next
check, as Ctrl-C stops it with KeyboardInterrupt; the driver passes it on to its local workers, and
each running job stops after its current iteration. Units save a checkpoint after every training
experience, so what they keep is their last finished experience.
"""

import concurrent.futures
import contextlib
import multiprocessing
import os
import signal
import threading
import time
import warnings
from concurrent.futures.process import BrokenProcessPool

import torch

from ..errors import UserError
from .stopping import listen_between_jobs, raise_if_stopped, stop_on_sigterm

MAX_RESTARTS = 3  # local pools broken in a row, with no job ended in between, before giving up
PARENT_POLL_SECONDS = 0.1
WAIT_POLL_SECONDS = 0.1  # how long a stop can wait while the driver waits on its jobs


@contextlib.contextmanager
def _interrupt_deferred():
    """Within the block Ctrl-C (SIGINT) is noted, not raised; on leaving it, it is raised again.
    Raised inside concurrent.futures' waiting, which holds every future's lock, KeyboardInterrupt
    could leave a lock held, and the pool's shutdown would then wait for ever."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: arrived.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if arrived:
        signal.raise_signal(signal.SIGINT)


def configure_worker(threads: int) -> None:
    """What every worker process or Ray task sets before its first job."""
    warnings.filterwarnings("ignore")  # Avalanche's deprecation chatter, once per job otherwise
    torch.set_num_threads(threads)


class InProcess:
    """One job after another, in this process."""

    slots = 1

    def map(self, function, items):
        for index, item in enumerate(items):
            raise_if_stopped()
            try:
                yield index, function(item), None
            except Exception as err:  # noqa: BLE001 - reported by the caller, with the job's name
                yield index, None, err

    def close(self) -> None:
        pass


def _local_job(function, item):
    listen_between_jobs(True)
    try:
        return function(item)
    finally:
        listen_between_jobs(False)


def _start_local_worker(threads: int, parent: int) -> None:
    configure_worker(threads)
    stop_on_sigterm()
    listen_between_jobs(False)
    # A driver killed with SIGKILL cannot stop its workers; each stops itself instead, so that a
    # restarted driver is not racing orphans over the same units.
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)


class LocalProcesses:
    """`workers` jobs at once, each in its own process with `threads` torch threads."""

    def __init__(self, workers: int, threads: int = 1, on_restart=None):
        """:param on_restart: called with the number of jobs to run again when a worker died."""
        self.slots = workers
        self.threads = threads
        self.on_restart = on_restart

    def map(self, function, items):
        if len(items) == 1:  # no process to start for one job
            yield from InProcess().map(function, items)
            return
        pending = dict(enumerate(items))
        restarts = 0
        while pending:
            # Fresh interpreters: a forked copy of a process that has started torch's thread pools can hang.
            pool = concurrent.futures.ProcessPoolExecutor(
                min(self.slots, len(pending)), mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_local_worker, initargs=(self.threads, os.getpid()))
            broken = False
            try:
                futures = {pool.submit(_local_job, function, item): index for index, item in pending.items()}
                running = set(futures)
                while running:
                    with _interrupt_deferred():
                        done, running = concurrent.futures.wait(running, timeout=WAIT_POLL_SECONDS,
                                                                return_when=concurrent.futures.FIRST_COMPLETED)
                    raise_if_stopped()
                    for future in done:
                        index, error = futures[future], future.exception()
                        if isinstance(error, BrokenProcessPool):
                            broken = True
                            continue
                        restarts = 0
                        del pending[index]
                        yield index, None if error else future.result(), error
            except BaseException:
                # Preempted or interrupted: stop the workers' jobs after their current step, then wait for them.
                for process in list((pool._processes or {}).values()):  # no public way to reach them
                    with contextlib.suppress(OSError):
                        os.kill(process.pid, signal.SIGTERM)
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            pool.shutdown(wait=True)
            if broken:
                restarts += 1
                if restarts > MAX_RESTARTS:
                    error = UserError(f"local workers died {MAX_RESTARTS + 1} times in a row before any run ended")
                    for index in list(pending):
                        del pending[index]
                        yield index, None, error
                elif self.on_restart is not None:
                    self.on_restart(len(pending))

    def close(self) -> None:
        pass


def _ray_job(function, item, threads: int):
    configure_worker(threads)
    return function(item)


class RayCluster:
    """Jobs as Ray tasks, each holding `cpus_per_run` CPUs and `gpus_per_run` GPUs (a fraction
    packs several runs onto one GPU). Joins the Ray instance this process already started, else
    the cluster at `address` ("auto": the one started on this machine with `ray start`), else
    starts a local instance."""

    def __init__(self, address: str | None = None, cpus_per_run: float = 1, gpus_per_run: float = 0,
                 threads: int = 1):
        try:
            import ray  # an optional extra: imported only when asked for
        except ImportError:
            raise UserError("--executor ray needs Ray: pip install 'avalanche-hsf[ray]'") from None
        self._ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
            except ConnectionError as err:
                raise UserError(f"cannot reach the Ray cluster at {address}: {err}") from err
        resources = ray.cluster_resources()
        if cpus_per_run > resources.get("CPU", 0) or gpus_per_run > resources.get("GPU", 0):
            self.close()
            raise UserError(f"a run asks for {cpus_per_run} CPUs and {gpus_per_run} GPUs; the Ray cluster has "
                            f"{resources.get('CPU', 0):g} CPUs and {resources.get('GPU', 0):g} GPUs")
        self.slots = max(1, int(resources["CPU"] // cpus_per_run))
        # Ray runs a task again, up to max_retries times, when its worker process dies.
        self._remote = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=MAX_RESTARTS)(_ray_job)
        self.threads = threads

    def map(self, function, items):
        ray = self._ray
        refs = {self._remote.remote(function, item, self.threads): index for index, item in enumerate(items)}
        try:
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1, timeout=WAIT_POLL_SECONDS)
                raise_if_stopped()
                if not ready:
                    continue
                (done,) = ready
                index = refs.pop(done)
                try:
                    result = ray.get(done)
                except ray.exceptions.RayTaskError as err:  # the job's own exception, as raised there
                    yield index, None, err.cause if isinstance(err.cause, Exception) else UserError(str(err))
                except ray.exceptions.RayError as err:  # the task could not run: out of retries, node lost
                    yield index, None, UserError(f"Ray: {' '.join(str(err).split())}")
                else:
                    yield index, result, None
        except BaseException:
            for ref in refs:  # Ray delivers this to a running task as KeyboardInterrupt
                ray.cancel(ref)
            raise

    def close(self) -> None:
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()


def make_executor(executor: str = "local", workers: int = 1, threads: int = 1, ray_address: str | None = None,
                  cpus_per_run: float = 1, gpus_per_run: float = 0, on_restart=None):
    """The executor the command line asks for; `workers` applies to "local" only."""
    if executor == "ray":
        return RayCluster(ray_address, cpus_per_run, gpus_per_run, threads)
    if ray_address is not None or cpus_per_run != 1 or gpus_per_run != 0:
        raise UserError("--ray-address, --cpus-per-run and --gpus-per-run need --executor ray")
    return InProcess() if workers <= 1 else LocalProcesses(workers, threads, on_restart)


def available_cores() -> int:
    """The cores this process may use (a Slurm or container allocation, not the whole machine)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
