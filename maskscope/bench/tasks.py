"""The tasks a pool of bench workers shares: the local runner's batches, run in another process.

A driver (the Ray runner's, or the local worker pool's of :mod:`maskscope.bench.workers`)
splits the pending images into :class:`Task` s of ``config.images_per_batch`` images, the local
runner's batches (:func:`plan_tasks`), and hands each to a :class:`BenchWorker` with the
triples already done and the cached maps of its images (:func:`task_inputs`). The worker
explains and scores the batch with the local runner's code and returns its records and new
maps; only the driver writes (:func:`write_task`): the maps first, then the records that are
not in the run yet, so a record written by a worker is the one the local runner writes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from maskscope.bench.batch import Triple, batch_records, mark_done, parse_shard, pending, select_samples
from maskscope.bench.config import BenchConfig
from maskscope.bench.maps import MapFolder, MapsInMemory, computed_maps
from maskscope.bench.records import RecordLog
from maskscope.bench.scoring import check_metric
from maskscope.core.model.classifier import Classifier
from maskscope.data.dataset import Dataset, Sample
from maskscope.methods.registry import get_method

MapKey = tuple[str, str]  # (method, image)


def check_run(config: BenchConfig) -> dict:
    """The configuration's methods by name; MaskscopeValueError for an unknown metric, method or parameter."""
    for spec in config.metrics:
        check_metric(spec)
    if config.shard:
        parse_shard(config.shard)
    return {name: get_method(name, **config.params.get(name, {})) for name in config.methods}


@dataclass
class Task:
    """A batch of the run's images, by their index in the run's samples, and the workers it has lost."""

    indices: list[int]
    attempts: int = 0


class BenchWorker:
    """A worker: one classifier, the methods and the run's images; explains and scores tasks.

    ``threads`` torch threads; ``make_classifier`` is called once, here. A classifier or method
    that cannot be made is kept as :attr:`error` (one line) for the driver to report.
    """

    def __init__(self, make_classifier: Callable[[], Classifier], dataset: Dataset, config: BenchConfig,
                 threads: int) -> None:
        torch.set_num_threads(threads)
        self.error = None
        try:
            self.classifier = make_classifier()
            self.methods = check_run(config)
        except Exception as error:  # reported by describe() as one line, not as a dead worker
            self.error = f"{type(error).__name__}: {error}"
        self.dataset, self.config = dataset, config
        self.samples, self.with_objects = select_samples(dataset, config)

    def describe(self) -> dict:
        """The classifier's name and this process's id, or the error that stopped the worker."""
        if self.error:
            return {"error": self.error}
        return {"model_name": self.classifier.name, "pid": os.getpid()}

    def run(self, indices: list[int], done: list, cached: dict) -> tuple[list[dict], dict]:
        """Records of the images ``indices`` (triples in ``done`` skipped), and the maps made here."""
        store = MapsInMemory(cached)
        source = computed_maps(self.classifier, self.methods, self.config.seed, store)
        samples = [self.samples[i] for i in indices]
        stages = batch_records(self.classifier, self.dataset, samples, self.config, self.with_objects,
                               set(map(tuple, done)), source)
        return [record for stage in stages for record in stage], store.new


def plan_tasks(samples: list[Sample], config: BenchConfig, done: set[Triple]) -> list[Task]:
    """The local runner's batches, each cut to its pending images."""
    index = {sample.name: i for i, sample in enumerate(samples)}
    tasks = []
    for start in range(0, len(samples), config.images_per_batch):
        todo = pending(samples[start : start + config.images_per_batch], config, done)
        if todo:
            tasks.append(Task([index[s.name] for s in todo]))
    return tasks


def task_inputs(task: Task, samples: list[Sample], config: BenchConfig, done: set[Triple],
                folder: MapFolder) -> tuple[list[int], list[Triple], dict[MapKey, np.ndarray]]:
    """The arguments of :meth:`BenchWorker.run` for ``task``: its images, their triples already
    done, and their maps cached in ``folder`` for the methods still to score."""
    names = [samples[i].name for i in task.indices]
    cached = {}
    for name in names:
        for method in config.methods:
            if any((name, method, k) not in done for k in config.metrics):
                array = folder.get(method, name)
                if array is not None:
                    cached[(method, name)] = array
    return task.indices, sorted(done_of(names, config, done)), cached


def done_of(names: list[str], config: BenchConfig, done: set[Triple]) -> set[Triple]:
    """The triples of the images ``names`` that are in ``done``."""
    return {(n, m, k) for n in names for m in config.methods for k in config.metrics if (n, m, k) in done}


def write_task(folder: MapFolder, log: RecordLog, done: set[Triple], records: list[dict],
               maps: dict[MapKey, np.ndarray]) -> None:
    """A finished task's results into the run: its new maps, then its records not in ``done`` yet
    (added to it), appended and synced."""
    for (method, image), array in maps.items():
        folder.put(method, image, array)
    fresh = [r for r in records if (r["image"], r["method"], r["metric"]) not in done]
    log.append(mark_done(done, fresh))
