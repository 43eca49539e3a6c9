"""Run methods × metrics over a dataset, or score maps already on disk, writing records as it goes.

Images go in batches of ``config.batch_size``. For each batch and method the maps are read
from ``OUT/maps/<method>/<image>.npy`` when cached, else computed in one batched call and
cached (temp file + rename); then every metric scores the batch at once, and the batch's
records are appended and synced. (image, method, metric) triples already in the records are
skipped, so an interrupted run resumes where it stopped. A failing image is recorded as
``failed`` with the reason; an image without usable ground truth as ``skipped``. A batch goes
through :func:`maskscope.bench.batch.batch_records`, which the Ray runner's workers share.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from maskscope.bench.batch import MapSource, batch_records, parse_shard, pending, select_samples
from maskscope.bench.config import BenchConfig, write_or_check
from maskscope.bench.maps import MapFolder, computed_maps
from maskscope.bench.records import RecordLog
from maskscope.bench.scoring import Item, check_metric
from maskscope.core.classifier import Classifier
from maskscope.core.progress import progress_bar
from maskscope.data.dataset import Dataset
from maskscope.methods.registry import get_method


def run_bench(classifier: Classifier, dataset: Dataset, config: BenchConfig, out: str | os.PathLike,
              force: bool = False, progress: bool = True) -> RecordLog:
    """Explain every image with every method and score it by every metric; returns the records."""
    out = Path(out)
    methods = check_run(config)
    write_or_check(config, out, force, classifier.name)
    source = computed_maps(classifier, methods, config.seed, MapFolder(out / "maps"))
    return _run(classifier, dataset, config, out, source, progress)


def check_run(config: BenchConfig) -> dict:
    """The configuration's methods by name; ValueError for an unknown metric, method or parameter."""
    for spec in config.metrics:
        check_metric(spec)
    if config.shard:
        parse_shard(config.shard)
    return {name: get_method(name, **config.params.get(name, {})) for name in config.methods}


def evaluate_maps(classifier: Classifier, dataset: Dataset, maps_dir: str | os.PathLike, config: BenchConfig,
                  out: str | os.PathLike, force: bool = False, progress: bool = True) -> RecordLog:
    """Score the maps ``maps_dir/<image>.npy`` (crop×crop, or the photo's H×W) as method ``config.methods[0]``."""
    out, maps_dir = Path(out), Path(maps_dir)
    if not maps_dir.is_dir():
        raise ValueError(f"{maps_dir}: no such folder of maps")
    for spec in config.metrics:
        check_metric(spec)
    write_or_check(config, out, force, classifier.name)
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

    return _run(classifier, dataset, config, out, read, progress)


def _run(classifier: Classifier, dataset: Dataset, config: BenchConfig, out: Path, source: MapSource,
         progress: bool) -> RecordLog:
    log = RecordLog(out / "records.jsonl")
    done = log.done
    samples, with_objects = select_samples(dataset, config)
    bar = progress_bar(total=len(samples) * len(config.methods), desc="bench", unit="map", disable=not progress)
    for start in range(0, len(samples), config.batch_size):
        chunk = samples[start : start + config.batch_size]
        for records in batch_records(classifier, dataset, pending(chunk, config, done), config, with_objects, done,
                                     source):
            log.append(records)
        bar.update(len(chunk) * len(config.methods))
    bar.close()
    return log
