"""Run methods × metrics over a dataset, or score maps already on disk, writing records as it goes.

Images go in batches of ``config.images_per_batch``. For each batch and method the maps are read
from ``OUT/maps/<method>/<image>.npy`` when cached, else computed in one batched call and
cached (temp file + rename); then every metric scores the batch at once, and the batch's
records are appended and synced. (image, method, metric) triples already in the records are
skipped, so an interrupted run resumes where it stopped. A failing image is recorded as
``failed`` with the reason and whose failure it was; an image without usable ground truth as
``skipped``. A resumed run makes the environment's failures again (all failures with
``retry_failed``). A batch goes through :func:`maskscope.bench.batch.batch_records`, which the
Ray runner's workers share.

With ``workers`` above 1 the batches run in worker processes on this machine
(:mod:`maskscope.bench.workers`), as on Ray (:mod:`maskscope.bench.tasks`): the same batches and
records, written by this process only, so a killed worker loses no record already written.

A run holds its folder's lock (:func:`maskscope.bench.folder.locked`) while it writes, and a
full disk stops it with :class:`~maskscope.bench.folder.RunStopped`, the records written
before kept.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from maskscope.bench.batch import MapSource, batch_records, select_samples
from maskscope.bench.config import BenchConfig, check_claim, write_or_check
from maskscope.bench.folder import RunFolderError, is_disk_full, locked, stopped
from maskscope.bench.maps import MapFolder, computed_maps
from maskscope.bench.records import RecordLog
from maskscope.bench.scoring import Item, check_metric
from maskscope.bench.tasks import BenchWorker, check_run, plan_tasks, task_inputs, write_task
from maskscope.bench.workers import WorkerPool, worker_plan
from maskscope.core.model.classifier import Classifier
from maskscope.core.progress import kept_alive, progress_bar
from maskscope.data.dataset import Dataset
from maskscope.errors import MaskscopeValueError


def run_bench(classifier: Classifier, dataset: Dataset, config: BenchConfig, out: str | os.PathLike,
              force: bool = False, progress: bool = True, retry_failed: bool = False, workers: int | None = 1,
              worker_threads: int | None = None, make_classifier: Callable[[], Classifier] | None = None) -> RecordLog:
    """Explain every image with every method and score it by every metric; returns the records.

    ``workers`` processes of ``worker_threads`` torch threads each run the batches (``None``:
    :func:`~maskscope.bench.workers.worker_plan`'s default from the cores and the batches
    pending); one worker is this process (at ``worker_threads`` threads when given). Each
    worker calls ``make_classifier()`` once, or gets a pickled copy of ``classifier`` without it
    (a TorchScript module does not pickle: pass e.g.
    ``functools.partial(Classifier.from_torchscript, path)``).

    Raises:
        RunLocked: another run writes ``out``.
        ConfigMismatch, RunFolderError: ``out`` holds another run (and not ``force``), or is no run's.
        RunStopped: the disk filled up; the records written before are kept.
        WorkerDied: a worker process died; the records written before are kept.
    """
    out = Path(out)
    methods = check_run(config)
    check_claim(config, out, force)  # a folder that is no run's gets no lock file
    with locked(out):
        _claim(config, out, force, classifier.name, "bench")
        source = computed_maps(classifier, methods, config.seed, MapFolder(out / "maps"))
        make = make_classifier or functools.partial(_same, classifier)
        return _run(classifier, dataset, config, out, source, progress, retry_failed, (workers, worker_threads, make))


def _claim(config: BenchConfig, out: Path, force: bool, model_name: str, command: str) -> None:
    """Make ``out`` the run's (see :func:`~maskscope.bench.config.write_or_check`); a full disk stops it."""
    try:
        write_or_check(config, out, force, model_name, command)
    except OSError as error:
        if not is_disk_full(error):
            raise
        raise stopped(out, error) from error


def evaluate_maps(classifier: Classifier, dataset: Dataset, maps_dir: str | os.PathLike, config: BenchConfig,
                  out: str | os.PathLike, force: bool = False, progress: bool = True,
                  retry_failed: bool = False) -> RecordLog:
    """Score the maps ``maps_dir/<image>.npy`` (crop×crop, or the photo's H×W) as method ``config.methods[0]``;
    the folder rules and errors of :func:`run_bench`."""
    out, maps_dir = Path(out), Path(maps_dir)
    if not maps_dir.is_dir():
        raise RunFolderError(f"{maps_dir}: no such folder of maps")
    for spec in config.metrics:
        check_metric(spec)
    crop = classifier.view.size

    def read(name: str, items: list[Item], images: torch.Tensor) -> list:
        maps: list[torch.Tensor | str] = []
        for item in items:
            path = maps_dir / f"{item.sample.name}.npy"
            if not path.exists():
                maps.append(f"no map {path.name} in {maps_dir}")
                continue
            try:
                array = np.load(path)
            except (OSError, ValueError) as error:
                maps.append(f"cannot read {path}: {error}")
                continue
            if array.shape == crop:
                maps.append(torch.from_numpy(array.astype(np.float32)))
            elif array.shape == tuple(item.size):
                maps.append(classifier.view(torch.from_numpy(array.astype(np.float32))[None])[0])
            else:
                expected = f"expected {crop} or the photo's {tuple(item.size)}"
                maps.append(f"map {path.name} has shape {array.shape}; {expected}")
        return maps

    check_claim(config, out, force)
    with locked(out):
        _claim(config, out, force, classifier.name, "evaluate")
        return _run(classifier, dataset, config, out, read, progress, retry_failed)


def _run(classifier: Classifier, dataset: Dataset, config: BenchConfig, out: Path, source: MapSource,
         progress: bool, retry_failed: bool, pool: tuple[int | None, int | None, Callable | None] = (1, None, None)
         ) -> RecordLog:
    log = RecordLog(out / "records.jsonl")
    done = log.settled(retry_failed)
    samples, with_objects = select_samples(dataset, config)
    tasks = plan_tasks(samples, config, done)
    workers, threads = worker_plan(pool[0], pool[1], len(tasks), config.device)
    bar = progress_bar(total=sum(len(task.indices) for task in tasks) * len(config.methods), desc="bench",
                       unit="map", disable=not progress)
    try:
        with kept_alive(bar):
            _run_tasks(classifier, dataset, config, out, (log, done), samples, with_objects, tasks, (workers, threads),
                       source, pool[2], bar)
    except OSError as error:  # a full disk (batch_records records the images' and environment's errors)
        if not is_disk_full(error):
            raise
        raise stopped(out, error) from error
    finally:
        bar.close()
    return log


def _run_tasks(classifier, dataset, config, out, run, samples, with_objects, tasks, pool, source, make_classifier,
               bar) -> None:  # fmt: skip
    """The tasks here, one after the other, or on ``pool`` = (workers, threads) processes."""
    (log, done), (workers, threads) = run, pool
    if workers > 1:
        _run_on_workers(make_classifier, dataset, config, out, run, samples, tasks, pool, bar)
        return
    if threads is not None:
        torch.set_num_threads(threads)
    for task in tasks:
        chunk = [samples[i] for i in task.indices]
        for records in batch_records(classifier, dataset, chunk, config, with_objects, done, source):
            log.append(records)
        bar.update(len(chunk) * len(config.methods))


def _run_on_workers(make_classifier, dataset, config, out, run, samples, tasks, pool, bar) -> None:
    """The tasks on ``pool`` = (workers, threads) processes, each calling ``make_classifier()``;
    this process writes every result (:func:`~maskscope.bench.tasks.write_task`)."""
    (log, done), (workers, threads), folder = run, pool, MapFolder(out / "maps")
    with WorkerPool(workers, threads, BenchWorker, make_classifier, dataset, config, threads) as processes:
        for task, (records, maps) in processes.results(
                _run_task, tasks, lambda task: task_inputs(task, samples, config, done, folder)):
            write_task(folder, log, done, records, maps)
            bar.update(len(task.indices) * len(config.methods))


def _same(classifier: Classifier) -> Classifier:
    """``classifier`` itself: a worker's copy, unpickled."""
    return classifier


def _run_task(worker: BenchWorker, indices: list[int], done: list, cached: dict) -> tuple[list[dict], dict]:
    """One task in a worker process (:meth:`~maskscope.bench.tasks.BenchWorker.run`)."""
    if worker.error:
        raise MaskscopeValueError(f"a bench worker could not start: {worker.error}")
    return worker.run(indices, done, cached)
