"""Run methods × metrics over a dataset, or score maps already on disk, writing records as it goes.

Images go in batches of ``config.batch_size``. For each batch and method the maps are read
from ``OUT/maps/<method>/<image>.npy`` when cached, else computed in one batched call and
cached (temp file + rename); then every metric scores the batch at once, and the batch's
records are appended and synced. (image, method, metric) triples already in the records are
skipped, so an interrupted run resumes where it stopped. A failing image is recorded as
``failed`` with the reason and whose failure it was; an image without usable ground truth as
``skipped``. A resumed run makes the environment's failures again (all failures with
``retry_failed``). A batch goes through :func:`maskscope.bench.batch.batch_records`, which the
Ray runner's workers share.

A run holds its folder's lock (:func:`maskscope.bench.folder.locked`) while it writes, and a
full disk stops it with :class:`~maskscope.bench.folder.RunStopped`, the records written
before kept.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from maskscope.bench.batch import MapSource, batch_records, parse_shard, pending, select_samples
from maskscope.bench.config import BenchConfig, check_claim, write_or_check
from maskscope.bench.folder import RunFolderError, is_disk_full, locked, stopped
from maskscope.bench.maps import MapFolder, computed_maps
from maskscope.bench.records import RecordLog
from maskscope.bench.scoring import Item, check_metric
from maskscope.core.classifier import Classifier
from maskscope.core.progress import progress_bar
from maskscope.data.dataset import Dataset
from maskscope.methods.registry import get_method


def run_bench(classifier: Classifier, dataset: Dataset, config: BenchConfig, out: str | os.PathLike,
              force: bool = False, progress: bool = True, retry_failed: bool = False) -> RecordLog:
    """Explain every image with every method and score it by every metric; returns the records.

    Raises:
        RunLocked: another run writes ``out``.
        ConfigMismatch, RunFolderError: ``out`` holds another run (and not ``force``), or is no run's.
        RunStopped: the disk filled up; the records written before are kept.
    """
    out = Path(out)
    methods = check_run(config)
    check_claim(config, out, force)  # a folder that is no run's gets no lock file
    with locked(out):
        _claim(config, out, force, classifier.name, "bench")
        source = computed_maps(classifier, methods, config.seed, MapFolder(out / "maps"))
        return _run(classifier, dataset, config, out, source, progress, retry_failed)


def _claim(config: BenchConfig, out: Path, force: bool, model_name: str, command: str) -> None:
    """Make ``out`` the run's (see :func:`~maskscope.bench.config.write_or_check`); a full disk stops it."""
    try:
        write_or_check(config, out, force, model_name, command)
    except OSError as error:
        if not is_disk_full(error):
            raise
        raise stopped(out, error) from error


def check_run(config: BenchConfig) -> dict:
    """The configuration's methods by name; MaskscopeValueError for an unknown metric, method or parameter."""
    for spec in config.metrics:
        check_metric(spec)
    if config.shard:
        parse_shard(config.shard)
    return {name: get_method(name, **config.params.get(name, {})) for name in config.methods}


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
    crop = classifier.view.crop

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
            if array.shape == (crop, crop):
                maps.append(torch.from_numpy(array.astype(np.float32)))
            elif array.shape == tuple(item.size):
                maps.append(classifier.view(torch.from_numpy(array.astype(np.float32))[None])[0])
            else:
                expected = f"expected {(crop, crop)} or the photo's {tuple(item.size)}"
                maps.append(f"map {path.name} has shape {array.shape}; {expected}")
        return maps

    check_claim(config, out, force)
    with locked(out):
        _claim(config, out, force, classifier.name, "evaluate")
        return _run(classifier, dataset, config, out, read, progress, retry_failed)


def _run(classifier: Classifier, dataset: Dataset, config: BenchConfig, out: Path, source: MapSource,
         progress: bool, retry_failed: bool) -> RecordLog:
    log = RecordLog(out / "records.jsonl")
    done = log.settled(retry_failed)
    samples, with_objects = select_samples(dataset, config)
    bar = progress_bar(total=len(samples) * len(config.methods), desc="bench", unit="map", disable=not progress)
    try:
        for start in range(0, len(samples), config.batch_size):
            chunk = samples[start : start + config.batch_size]
            for records in batch_records(classifier, dataset, pending(chunk, config, done), config, with_objects,
                                         done, source):
                log.append(records)
            bar.update(len(chunk) * len(config.methods))
    except OSError as error:  # a full disk (batch_records records the images' and environment's errors)
        if not is_disk_full(error):
            raise
        raise stopped(out, error) from error
    finally:
        bar.close()
    return log
