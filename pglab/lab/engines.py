"""Engines that execute a grid's runs: a local process pool, or Ray for more than one machine.

An engine is a function ``(tasks, workers, address) -> iterator of Outcome`` that yields each run's
outcome as it completes. Both run :func:`pglab.lab.runtask.execute` once per run, in a process of
its own holding one CPU, with torch limited to one thread: the small networks of pglab run fastest
on one thread, and one process per core uses every core without oversubscribing any.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, as_completed, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from pglab.errors import ConfigError
from pglab.lab.runtask import Outcome, RunTask, execute

ENGINES = ("local", "ray")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

Engine = Callable[..., Iterator[Outcome]]
STOP_GRACE_S = 10.0  # after a second Ctrl-C, how long runs get to stop before their workers are killed

_stop_event: Any = None  # set in each local worker: the grid was interrupted, start no new run
_started: Any = None  # each local worker's pipe to the grid: the run directories it has begun


def _init_local_worker(stop_event: Any, started: Any) -> None:
    """Runs first in each worker process (torch itself is held to one thread by TrainConfig.torch_threads)."""
    global _stop_event, _started
    _stop_event, _started = stop_event, started
    for name in THREAD_VARIABLES:
        os.environ[name] = "1"
    # An idle worker must survive Ctrl-C (a dead worker breaks the whole pool); a training one
    # receives it all the same, because pglab.core.train installs its own graceful handler while it runs.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _execute_unless_stopped(task: RunTask) -> Outcome:
    if _stop_event is not None and _stop_event.is_set():
        return Outcome.of(task, "interrupted", "not started")
    if _started is not None:
        _started.put(str(task.run_dir))  # a SimpleQueue writes at once: said before a crash can come
    return execute(task)


def _crashed(task: RunTask, exc: BaseException, action: str) -> Outcome:
    """The worker itself died (killed, out of memory, segfault): the run failed, the grid goes on."""
    return Outcome.of(task, "failed", action, error=f"worker crashed: {type(exc).__name__}: {exc}")


def _outcome(future: Future, task: RunTask) -> Outcome:
    try:
        return future.result()
    except Exception as exc:
        return _crashed(task, exc, _action(task))


def run_local(tasks: Sequence[RunTask], workers: int | None = None, address: str | None = None) -> Iterator[Outcome]:
    """Each run in its own process of a pool of ``workers`` (default: one per core).

    On Ctrl-C the running runs stop after their current update and save a checkpoint,
    the queued ones are not started, and KeyboardInterrupt is raised once every outcome is in
    (see :func:`_gather_after_interrupt` for runs that do not stop). A worker that dies (killed, out
    of memory) fails the runs it was running; the runs not yet begun go on in a fresh pool.
    """
    queue = list(tasks)
    while queue:
        never_started: list[RunTask] = []
        yield from _run_pool(queue, min(_default_workers(workers), len(queue)), never_started)
        if len(never_started) == len(queue):  # a fresh pool started none of them: it would not start them again
            yield from (_crashed(task, BrokenProcessPool("no worker could start the run"), "not started")
                        for task in never_started)  # fmt: skip
            return
        queue = never_started


def _run_pool(tasks: list[RunTask], workers: int, never_started: list[RunTask]) -> Iterator[Outcome]:
    """One process pool for ``tasks``: yields their outcomes, except for runs no worker had begun when a
    worker died (killed, out of memory): the pool is broken then, and those go to ``never_started`` for a
    fresh pool, instead of being recorded as failed runs that never ran."""
    context = _process_context()
    stop, started = context.Event(), context.SimpleQueue()
    begun: set[str] = set()
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_local_worker,
                             initargs=(stop, started)) as pool:  # fmt: skip
        futures = {pool.submit(_execute_unless_stopped, task): task for task in tasks}
        pending = set(futures)
        try:
            for future in as_completed(futures):
                pending.discard(future)
                task = futures[future]
                if not future.cancelled() and isinstance(future.exception(), BrokenProcessPool):
                    while not started.empty():
                        begun.add(started.get())
                    if str(task.run_dir) not in begun:
                        never_started.append(task)
                        continue
                yield _outcome(future, task)
        except KeyboardInterrupt:
            _stop_starting(stop, pending)
            yield from _gather_after_interrupt(pool, futures, pending)
            raise
        finally:  # also when the caller stops iterating early: never run the rest behind its back
            _stop_starting(stop, pending)


def _gather_after_interrupt(
    pool: ProcessPoolExecutor, futures: dict[Future, RunTask], pending: set[Future]
) -> list[Outcome]:
    """Every pending run's outcome after Ctrl-C, gathered before any is yielded.

    The running runs got the same Ctrl-C: they save and return soon. A further Ctrl-C, or a run still
    running STOP_GRACE_S after it (stuck in its environment), has the workers killed: every child is
    reaped, the run is recorded as interrupted and keeps its last checkpoint.
    """
    outcomes, remaining, deadline = [], set(pending), None
    while remaining:
        try:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, _ = wait(remaining, timeout=timeout, return_when=FIRST_COMPLETED)
        except KeyboardInterrupt:
            if deadline is not None:
                break  # a third Ctrl-C: at once
            deadline = time.monotonic() + STOP_GRACE_S
            continue
        if not done:
            break
        for future in done:
            remaining.discard(future)
            task = futures[future]
            outcomes.append(
                Outcome.of(task, "interrupted", "not started") if future.cancelled() else _outcome(future, task)
            )
    if remaining:
        for process in list(pool._processes.values()):  # the pool's own workers: no public handle on a stuck one
            process.kill()
        reason = "its worker was killed: the run did not stop after Ctrl-C (stuck?); its last checkpoint is kept"
        outcomes += [Outcome.of(futures[f], "interrupted", _action(futures[f]), error=reason) for f in remaining]
    return outcomes


def _action(task: RunTask) -> str:
    return "resumed" if task.resume else "started"


def _stop_starting(stop: Any, pending: set[Future]) -> None:
    stop.set()
    for future in pending:
        future.cancel()


def _process_context() -> Any:
    """'forkserver' with the training code preloaded, where the platform has it; else 'spawn'.

    Both start workers from a clean process (forking a process that has run torch can deadlock).
    The fork server imports torch once and forks every worker from that state, so a worker starts
    in milliseconds instead of paying torch's imports (seconds) again.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["pglab.lab.preload"])  # what every run imports, then gc.freeze()
    return context


def warm_up(engine: str) -> None:
    """Start the local engine's fork server now, so that its imports (torch and the training code: seconds)
    run on another core while this process still checks and plans the grid, not after it.

    Every grid waits for them once before its first run starts, with one worker as with sixteen: the
    shorter that wait, the closer a grid comes to scaling with its workers. The server ends with this process.
    """
    if engine != "local":
        return
    context = _process_context()
    if context.get_start_method() != "forkserver":
        return
    from multiprocessing import forkserver

    if threading.current_thread() is not threading.main_thread():  # signal handlers are the main thread's
        forkserver.ensure_running()
        return
    # The server ignores Ctrl-C only once its imports are done: started with SIGINT ignored (which a new
    # process inherits), a Ctrl-C during them leaves no traceback of its own. The runs are unaffected:
    # each worker ignores SIGINT until pglab.core.train installs its graceful handler for a run.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGINT, previous)


def _default_workers(workers: int | None) -> int:
    """``workers`` if given, else the cores this process may run on."""
    if workers is not None:
        return workers
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("the ray engine needs Ray: pip install 'pglab[ray]'") from None
    return ray


def run_ray(tasks: Sequence[RunTask], workers: int | None = None, address: str | None = None) -> Iterator[Outcome]:
    """Each run a Ray task holding one CPU, on the cluster at ``address`` or on a local Ray instance.

    The runs write their directories where the workers run: on a cluster of several machines the
    grid's --out must be a filesystem they all share. ``workers`` caps the runs in flight (default:
    the cluster's CPUs). On Ctrl-C the running tasks are cancelled; they keep their last checkpoint.
    """
    ray = _import_ray()
    if not tasks:
        return
    started_here = not ray.is_initialized()
    if started_here:
        env_vars = dict.fromkeys(THREAD_VARIABLES, "1")
        if address is None:
            ray.init(num_cpus=_default_workers(workers), runtime_env={"env_vars": env_vars}, include_dashboard=False)
        else:
            ray.init(address=address, runtime_env={"env_vars": env_vars})
    remote_execute = ray.remote(num_cpus=1, max_retries=0)(execute)
    limit = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    queue = list(tasks)
    in_flight: dict[Any, RunTask] = {}
    try:
        while queue or in_flight:
            while queue and len(in_flight) < limit:
                task = queue.pop(0)
                in_flight[remote_execute.remote(task)] = task
            (ref,), _ = ray.wait(list(in_flight), num_returns=1)
            task = in_flight.pop(ref)
            try:
                yield ray.get(ref)
            except Exception as exc:
                yield _crashed(task, exc, _action(task))
    except KeyboardInterrupt:
        for ref in in_flight:
            ray.cancel(ref)
        for task in [*in_flight.values(), *queue]:
            yield Outcome.of(task, "interrupted", "cancelled")
        raise
    finally:
        if started_here:
            ray.shutdown()


def get_engine(name: str, workers: int | None = None, address: str | None = None) -> Engine:
    """The engine called ``name``, once its options are known to be valid and its package installed."""
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1; got {workers}")
    if name == "local":
        if address is not None:
            raise ConfigError("--ray-address is for --engine ray; the local engine runs on this machine")
        return run_local
    if name == "ray":
        _import_ray()
        return run_ray
    raise ConfigError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
