"""Worker processes on this machine: ``explain`` and the local ``bench`` on N processes of T torch threads.

Torch's intra-op threads use the small batches of a mask optimisation poorly: on 2 cores, two
processes of one thread each made 1.9× the photos a second of one process of two threads
(``benchmarks/results/speed/ray_scaling.json``). A :class:`WorkerPool` starts ``workers`` processes
with the ``spawn`` start method (a forked torch is unsafe), each sets
``torch.set_num_threads(threads)`` and builds its state once (a classifier, pickled to it, and
the methods); the parent hands out the same batches the single process runs, one at a time,
and is the only one to write: the results arrive in the order the batches finish.

The default (:func:`worker_plan`): one worker per usable core (``os.sched_getaffinity`` where
the system has it, else ``os.cpu_count()``), no more workers than batches, the cores shared
out as threads (``cores // workers``); one worker, with torch's own thread count, when there
is a single batch of work or the model is not on the CPU.

A worker that dies (killed, out of memory) stops the run with :class:`WorkerDied`; what the
parent wrote before is complete, so the same command resumes with the rest. A worker whose
parent dies ends too.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterable, Iterator, TypeVar

import torch

from maskscope.errors import MaskscopeError, MaskscopeValueError

Job = TypeVar("Job")

#: jobs queued per worker, so that none waits for the parent
JOBS_PER_WORKER = 2

_state: Any = None  # a worker process's state, made by the pool's setup


class WorkerDied(MaskscopeError, RuntimeError):
    """A worker process ended without finishing its batch (killed, or out of memory)."""

    exit_status = 1

    def __init__(self) -> None:
        super().__init__("a worker process died (killed, or out of memory) before its batch was done; what was "
                         "written before is complete: run the same command again to make the rest")


def usable_cores() -> int:
    """The cores this process may run on: its affinity where the system tells it, else the CPU count."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return os.cpu_count() or 1


def worker_plan(workers: int | None, threads: int | None, batches: int, device: str = "cpu",
                cores: int | None = None) -> tuple[int, int | None]:
    """``(workers, threads)`` for a run of ``batches`` batches; ``None`` threads: torch's own count.

    Without ``workers``: one per core, no more than there are batches; one when there is a
    single batch or ``device`` is not the CPU. Without ``threads``: the cores shared out,
    ``max(1, cores // workers)``, or torch's own count for one worker. A given ``workers`` is
    kept but never more than the batches. MaskscopeValueError for a count under 1.
    """
    for option, count in (("--workers", workers), ("--worker-threads", threads)):
        if count is not None and count < 1:
            raise MaskscopeValueError(f"{option} must be at least 1, got {count}")
    cores = cores or usable_cores()
    if workers is None:
        workers = cores if str(device) == "cpu" else 1
    workers = max(1, min(workers, batches))
    if threads is None and workers > 1:
        threads = max(1, cores // workers)
    return workers, threads


class WorkerPool:
    """``workers`` spawned processes of ``threads`` torch threads, each holding ``setup(*args)``.

    Use it as a context manager; :meth:`results` runs a function on every job and yields the
    results as they finish. Leaving the context stops the workers (queued jobs are dropped).
    """

    def __init__(self, workers: int, threads: int, setup: Callable[..., Any], *args: Any) -> None:
        self.workers = workers
        self._executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start, initargs=(threads, setup, args))

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def results(self, run: Callable[..., Any], jobs: Iterable[Job],
                arguments: Callable[[Job], tuple] = lambda job: (job,)) -> Iterator[tuple[Job, Any]]:
        """``(job, run(state, *arguments(job)))`` for every job, in the order they finish.

        ``arguments(job)`` is called when the job is handed out (at most
        :data:`JOBS_PER_WORKER` a worker wait), so it sees what the results before it wrote.
        An exception raised by ``run`` is raised here; a worker that dies raises :class:`WorkerDied`.
        """
        queue = iter(jobs)
        running: dict[Future, Job] = {}
        while True:
            while len(running) < self.workers * JOBS_PER_WORKER:
                job = next(queue, None)
                if job is None:
                    break
                running[self._submit(run, arguments(job))] = job
            if not running:
                return
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            broken = [future for future in finished if isinstance(future.exception(), BrokenProcessPool)]
            for future in finished:  # the results that came back are used before a lost worker stops the run
                job = running.pop(future)
                if future not in broken:
                    yield job, future.result()
            if broken:
                raise WorkerDied() from broken[0].exception()

    def _submit(self, run: Callable[..., Any], arguments: tuple) -> Future:
        try:
            return self._executor.submit(_call, run, *arguments)
        except BrokenProcessPool as error:
            raise WorkerDied() from error


def _start(threads: int, setup: Callable[..., Any], args: tuple) -> None:
    """A worker's first act: a watch on its parent, its thread count, then its state."""
    global _state
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_end_with, args=(parent,), daemon=True).start()
    torch.set_num_threads(threads)
    _state = setup(*args)


def _end_with(parent: multiprocessing.process.BaseProcess) -> None:
    """End this worker once ``parent`` has ended (a killed parent leaves no worker behind)."""
    parent.join()
    os._exit(1)


def _call(run: Callable[..., Any], *arguments: Any) -> Any:
    return run(_state, *arguments)
