"""``bench`` on a Ray cluster, with the local runner's records, map cache, resume and failure rules.

The driver (the process that calls :func:`run_bench_ray`) splits the pending images into
tasks of ``config.images_per_batch`` images, the local runner's batches, and hands them to a pool
of actors (:class:`~maskscope.bench.tasks.BenchWorker`), each holding its own classifier and
methods. A worker explains and scores a task with the local runner's code
(:func:`~maskscope.bench.batch.batch_records`) and returns its records and new maps; only the
driver writes: first the maps into ``OUT/maps``, then the records into ``OUT/records.jsonl``
(:mod:`maskscope.bench.tasks`, which the local worker pool shares). So ``--summarise``, resume and
every reader of a run folder see no difference.

Faults:

- **Driver killed**: records are written only for finished tasks, after their maps, so running
  the same command again resumes where it stopped, as the local runner does.
- **Worker process killed, or its node lost**, mid-task: the task goes back to the queue and runs
  on another worker, and a new worker is started in place of the lost one. Records come only
  from finished tasks and a triple already written is never written again, so each
  (image, method, metric) is in the records exactly once. A task that has lost
  :data:`ATTEMPTS` workers is split into single images; an image that loses a worker
  :data:`ATTEMPTS` times is recorded as failed.
- **Worker raising on an image**: that image is recorded as failed with the reason and the
  others go on (the batch is retried image by image).

An image that lost its workers is an environment's failure, which a resumed run makes again,
as it does the local runner's. The driver holds the run folder's lock for the whole run, and
a full disk stops the run as it does the local one.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from maskscope.bench.batch import Failure, all_failed, failure_of, select_samples
from maskscope.bench.config import BenchConfig, check_claim, write_or_check
from maskscope.bench.folder import check_unclaimed, is_disk_full, locked, read_run_config, stopped
from maskscope.bench.maps import MapFolder
from maskscope.bench.records import RecordLog
from maskscope.bench.tasks import BenchWorker, Task, check_run, done_of, plan_tasks, task_inputs, write_task
from maskscope.core.model.classifier import Classifier
from maskscope.core.progress import progress_bar
from maskscope.data.dataset import Dataset
from maskscope.errors import MaskscopeError, MaskscopeValueError

#: workers a task (or an image) may lose before it is split (or recorded as failed)
ATTEMPTS = 3
#: tasks queued on each worker, so that it never waits for the driver
TASKS_PER_WORKER = 2


class RayMissing(MaskscopeError, ImportError):
    """Ray is not installed; the message names the extra that installs it."""


class RayUnavailable(MaskscopeError, RuntimeError):
    """Ray cannot be started or joined, or its workers die before they start."""


def require_ray():
    """The ``ray`` module, or :class:`RayMissing` naming the extra that installs it."""
    try:
        import ray
    except ImportError as error:
        raise RayMissing("--ray needs Ray: pip install 'maskscope[ray]'") from error
    return ray


@dataclass
class RayOptions:
    """Where and how the workers run.

    Attributes:
        address: ``None`` starts a Ray instance on this machine; ``"auto"`` joins the cluster
            this machine belongs to; ``"ray://HOST:10001"`` or ``"HOST:6379"`` a given one.
            Ignored when Ray is already initialised in this process.
        workers: actors to start; ``None``: as many as the cluster's CPUs (or GPUs) allow.
        worker_threads: torch threads (and CPUs reserved) per worker.
        gpus_per_worker: GPUs reserved per worker (fractions share a GPU); give the
            configuration ``device="cuda"`` with it.
    """

    address: str | None = None
    workers: int | None = None
    worker_threads: int = 1
    gpus_per_worker: float = 0.0


@dataclass
class RayRun:
    """What a Ray run did: its records, and the figures of the driver and its workers."""

    log: RecordLog | None  #: the records; None only until the first worker of a fresh run is ready
    workers: int = 0
    tasks: int = 0
    images: int = 0
    lost_workers: int = 0
    seconds: float = 0.0  #: from Ray being up (started or joined) to the last record
    driver_seconds: float = 0.0  #: the driver's own work (not waiting for workers)
    ready_at: list[float] = field(default_factory=list)  #: seconds at which each worker had loaded its classifier
    finished_at: list[tuple[float, int]] = field(default_factory=list)  #: (seconds, images) of each finished task

    def images_per_second(self, after: float) -> float:
        """Images of the tasks finished after ``after`` seconds per second from then to the end."""
        images = sum(count for at, count in self.finished_at if at > after)
        return images / (self.seconds - after) if self.seconds > after else 0.0


@dataclass
class _Pool:
    """The actors: starting (their describe() call), ready, and the tasks each runs."""

    spawn: Callable
    starting: dict = field(default_factory=dict)  # describe ref → actor
    ready: list = field(default_factory=list)
    running: dict = field(default_factory=dict)  # run ref → (actor, task)
    lost: set = field(default_factory=set)  # id() of the actors lost

    def start(self) -> None:
        actor = self.spawn()
        self.starting[actor.describe.remote()] = actor

    def load(self, actor) -> int:
        return sum(1 for a, _ in self.running.values() if a is actor)


def run_bench_ray(make_classifier: Callable[[], Classifier], dataset: Dataset, config: BenchConfig,
                  out: str | os.PathLike, options: RayOptions | None = None, force: bool = False,
                  progress: bool = True, retry_failed: bool = False) -> RayRun:
    """:func:`~maskscope.bench.runner.run_bench` on Ray workers, each calling ``make_classifier()`` once.

    Every node must see the dataset's files at the same paths (a shared filesystem) and have
    maskscope installed. Raises the errors of :func:`~maskscope.bench.runner.run_bench`,
    MaskscopeValueError for a worker that cannot load the classifier, :class:`RayMissing`
    without Ray and :class:`RayUnavailable` when Ray cannot start.
    """
    ray = require_ray()
    options = options or RayOptions()
    out = Path(out)
    check_run(config)
    check_claim(config, out, force)  # a folder that is no run's gets no lock file
    with locked(out):
        try:
            return _locked_run(ray, make_classifier, dataset, config, out, options, force, progress, retry_failed)
        except OSError as error:
            if not is_disk_full(error):
                raise
            raise stopped(out, error) from error


def _locked_run(ray, make_classifier, dataset, config, out, options, force, progress, retry_failed) -> RayRun:
    previous = read_run_config(out)
    resuming = previous is not None and not force
    if resuming:
        write_or_check(config, out)  # a different run is refused before anything starts
    elif previous is None:
        check_unclaimed(out)
    samples, _ = select_samples(dataset, config)
    started_ray = not ray.is_initialized()
    if started_ray:
        local = {"include_dashboard": False} if options.address is None else {}
        try:
            ray.init(address=options.address, logging_level="WARNING", **local)
        except (ConnectionError, ValueError, RuntimeError) as error:
            raise RayUnavailable(f"cannot start or join Ray at {options.address or 'this machine'}: {error}") from error
    clock = time.perf_counter()
    try:
        return _drive(ray, make_classifier, dataset, config, out, options, (force, retry_failed), progress, samples,
                      resuming, clock)
    finally:
        if started_ray:
            ray.shutdown()


def _drive(ray, make_classifier, dataset, config, out, options, flags, progress, samples, resuming, clock) -> RayRun:
    force, retry_failed = flags
    log = RecordLog(out / "records.jsonl") if resuming else None
    done = log.settled(retry_failed) if log else set()
    tasks = deque(plan_tasks(samples, config, done))
    run = RayRun(log)
    if resuming and not tasks:
        return run
    count = options.workers or _fitting_workers(ray, options)
    remote = ray.remote(BenchWorker).options(num_cpus=options.worker_threads, num_gpus=options.gpus_per_worker,
                                             max_restarts=0, max_task_retries=0)
    shared = ray.put(dataset)
    pool = _Pool(lambda: remote.remote(make_classifier, shared, config, options.worker_threads))
    for _ in range(max(1, min(count, len(tasks) or 1))):
        pool.start()
    folder = MapFolder(out / "maps")
    bar = progress_bar(total=sum(len(t.indices) for t in tasks) * len(config.methods), desc="bench", unit="map",
                       disable=not progress)
    waited = 0.0
    while tasks or pool.running or (log is None and pool.starting):
        _dispatch(pool, tasks, samples, config, done, folder)
        started = time.perf_counter()
        (ref,), _ = ray.wait(list(pool.running) + list(pool.starting), num_returns=1)
        waited += time.perf_counter() - started
        if ref in pool.starting:
            actor = pool.starting.pop(ref)
            try:
                info = ray.get(ref)
            except ray.exceptions.RayActorError as error:
                run.lost_workers += 1
                if not pool.ready and run.lost_workers >= ATTEMPTS * count:
                    raise RayUnavailable(f"Ray workers keep dying before they start: {error}") from error
                pool.start()
                continue
            if "error" in info:
                raise MaskscopeValueError(f"a Ray worker could not start: {info['error']}")
            pool.ready.append(actor)
            run.ready_at.append(time.perf_counter() - clock)
            if log is None:  # a fresh run: its config.json names the workers' classifier
                write_or_check(config, out, force, info["model_name"])
                log = run.log = RecordLog(out / "records.jsonl")
                done.update(log.settled(retry_failed))
            continue
        actor, task = pool.running.pop(ref)
        assert log is not None  # tasks run on ready workers only, and the first one ready opened the log
        try:
            records, maps = ray.get(ref)
        except ray.exceptions.RayActorError:
            _lose(pool, actor, run)
            _retry(task, tasks, samples, config, done, log)
            continue
        except ray.exceptions.RayTaskError as error:
            if len(task.indices) > 1:  # raised outside the per-image guards: run its images one by one
                tasks.extendleft(Task([i]) for i in reversed(task.indices))
                continue
            cause = getattr(error, "cause", error)
            name = samples[task.indices[0]].name
            records, maps = all_failed(name, config, done_of([name], config, done), failure_of(cause)), {}
        write_task(folder, log, done, records, maps)
        run.tasks += 1
        run.images += len(task.indices)
        run.finished_at.append((time.perf_counter() - clock, len(task.indices)))
        bar.update(len(task.indices) * len(config.methods))
    bar.close()
    run.workers = len(pool.ready) + run.lost_workers
    run.seconds = time.perf_counter() - clock
    run.driver_seconds = run.seconds - waited
    return run


def _fitting_workers(ray, options: RayOptions) -> int:
    """As many workers as the cluster's CPUs (and, with ``gpus_per_worker``, its GPUs) hold; at least 1."""
    resources = ray.cluster_resources()
    count = int(resources.get("CPU", 1) // max(options.worker_threads, 1))
    if options.gpus_per_worker > 0:
        count = min(count, int(resources.get("GPU", 0) // options.gpus_per_worker))
    return max(count, 1)


def _dispatch(pool: _Pool, tasks: deque, samples, config, done, folder: MapFolder) -> None:
    """Give queued tasks to ready workers, with the triples already done and the cached maps."""
    for actor in pool.ready:
        while tasks and pool.load(actor) < TASKS_PER_WORKER:
            task = tasks.popleft()
            pool.running[actor.run.remote(*task_inputs(task, samples, config, done, folder))] = (actor, task)


def _lose(pool: _Pool, actor, run: RayRun) -> None:
    """A worker died: drop it and start another in its place (once per lost worker)."""
    key = id(actor)
    if key in pool.lost:
        return
    pool.lost.add(key)
    pool.ready = [a for a in pool.ready if a is not actor]
    run.lost_workers += 1
    pool.start()


def _retry(task: Task, tasks: deque, samples, config, done, log: RecordLog) -> None:
    """Queue a task whose worker died first; after ATTEMPTS losses split it, or fail its one image."""
    task.attempts += 1
    if task.attempts < ATTEMPTS:
        tasks.appendleft(task)
    elif len(task.indices) > 1:
        tasks.extendleft(Task([i]) for i in reversed(task.indices))
    else:
        name = samples[task.indices[0]].name
        log.append(all_failed(name, config, done,
                              Failure(f"the worker died on this image {ATTEMPTS} times", "environment")))

