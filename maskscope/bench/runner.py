"""Run methods × metrics over a dataset, or score maps already on disk, writing records as it goes.

Images go in batches of ``config.batch_size``. For each batch and method the maps are read
from ``OUT/maps/<method>/<image>.npy`` when cached, else computed in one batched call and
cached (temp file + rename); then every metric scores the batch at once, and the batch's
records are appended and synced. (image, method, metric) triples already in the records are
skipped, so an interrupted run resumes where it stopped. A failing image is recorded as
``failed`` with the reason; an image without usable ground truth as ``skipped``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from maskscope.core.progress import progress_bar

from maskscope.bench.config import BenchConfig, write_or_check
from maskscope.bench.records import RecordLog
from maskscope.bench.scoring import Item, check_metric, score
from maskscope.core.classifier import Classifier
from maskscope.data.dataset import Dataset
from maskscope.data.images import ImageLoadError, load_image
from maskscope.methods.registry import get_method

#: (method name, items, images B×3×crop×crop) → a crop×crop map or a failure reason per image
MapSource = Callable[[str, list[Item], torch.Tensor], list]


def run_bench(classifier: Classifier, dataset: Dataset, config: BenchConfig, out: str | os.PathLike,
              force: bool = False, progress: bool = True) -> RecordLog:
    """Explain every image with every method and score it by every metric; returns the records."""
    out = Path(out)
    for spec in config.metrics:
        check_metric(spec)
    methods = {name: get_method(name, **config.params.get(name, {})) for name in config.methods}
    write_or_check(config, out, force, classifier.name)

    def explain(name: str, items: list[Item], images: torch.Tensor) -> list:
        folder = out / "maps" / name
        maps: list = [None] * len(items)
        missing = []
        for index, item in enumerate(items):
            path = folder / f"{item.sample.name}.npy"
            if path.exists():
                maps[index] = torch.from_numpy(np.load(path))
            else:
                missing.append(index)
        if missing:
            explanation = methods[name].explain(
                classifier, images[missing], target=[items[i].target for i in missing], seed=config.seed
            )
            folder.mkdir(parents=True, exist_ok=True)
            for position, index in enumerate(missing):
                saliency = explanation.saliency[position].detach().float().cpu()
                _save_atomic(folder / f"{items[index].sample.name}.npy", saliency.numpy())
                maps[index] = saliency
        return maps

    return _run(classifier, dataset, config, out, explain, progress)


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
        maps = []
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
    samples = list(dataset.limit(config.limit))
    with_objects = any(sample.boxes or sample.has_masks for sample in samples)
    bar = progress_bar(total=len(samples) * len(config.methods), desc="bench", unit="map", disable=not progress)
    for start in range(0, len(samples), config.batch_size):
        chunk = samples[start : start + config.batch_size]
        todo = [s for s in chunk if any((s.name, m, k) not in done for m in config.methods for k in config.metrics)]
        bar.update((len(chunk) - len(todo)) * len(config.methods))
        if not todo:
            continue
        records, items, images = _prepare(classifier, dataset, todo, config, with_objects, done)
        log.append(records)
        bar.update((len(todo) - len(items)) * len(config.methods))
        for method in config.methods:
            log.append(_score_method(classifier, method, items, images, config, source, done))
            bar.update(len(items))
    bar.close()
    return log


def _prepare(classifier, dataset, samples, config, with_objects, done):
    """Load the photos and pick targets; records for images that cannot be scored at all."""
    records, items, images = [], [], []
    for sample in samples:
        try:
            photo = load_image(sample.path, name=sample.name)
        except ImageLoadError as error:
            records += _all(sample.name, config, done, "failed", f"cannot read the image: {error}")
            continue
        items.append(Item(sample, tuple(photo.shape[-2:]), -1, None))
        images.append(classifier.view(photo))
    if not items:
        return records, [], None
    batch = torch.stack(images).to(classifier.device)
    with torch.no_grad():
        top1 = classifier.probabilities(batch).argmax(1).tolist()
    kept = []
    for index, item in enumerate(items):
        if config.target == "label":
            item.label = item.sample.labels[0] if item.sample.labels else None
            item.target = classifier.class_index(item.label) if item.label else -1
        else:
            item.target = top1[index]
            item.label = dataset.label_of(item.target, classifier.class_names)
        item.class_name = classifier.class_names[item.target] if item.target >= 0 else None
        if item.target < 0:
            records += _all(item.sample.name, config, done, "skipped", "the image has no label")
        elif with_objects and item.label not in item.sample.labels:
            name = classifier.class_names[item.target]
            records += _all(item.sample.name, config, done, "skipped",
                            f"no object of the target class {name!r} in the image", item.target, name)
        else:
            kept.append(index)
    return records, [items[i] for i in kept], batch[kept] if kept else None


def _score_method(classifier, method, items, images, config, source, done) -> list[dict]:
    wanted = [i for i, item in enumerate(items) if any((item.sample.name, method, k) not in done
                                                       for k in config.metrics)]
    if not wanted:
        return []
    items, images = [items[i] for i in wanted], images[wanted]
    started = time.perf_counter()
    try:
        maps = source(method, items, images)
    except Exception as error:  # one batch's failure must not end a long run
        maps = [f"{method} failed: {type(error).__name__}: {error}"] * len(items)
    seconds = (time.perf_counter() - started) / len(items)
    records, good = [], []
    crop = images.shape[-1]
    for index, (item, saliency) in enumerate(zip(items, maps)):
        if isinstance(saliency, torch.Tensor):
            if tuple(saliency.shape) != (crop, crop):
                saliency = f"saliency has shape {tuple(saliency.shape)}, expected {(crop, crop)}"
            elif not torch.isfinite(saliency).all():
                saliency = "saliency contains NaN or infinite values"
        if isinstance(saliency, str):
            records += _for_metrics(item, method, config, done, "failed", saliency, seconds)
        else:
            good.append((index, saliency))
    if not good:
        return records
    chosen = [items[i] for i, _ in good]
    stacked = torch.stack([m for _, m in good]).to(images.device)
    batch = images[[i for i, _ in good]]
    for metric in config.metrics:
        need = [p for p, item in enumerate(chosen) if (item.sample.name, method, metric) not in done]
        if not need:
            continue
        started = time.perf_counter()
        try:
            results = score(
                metric, classifier, batch[need], stacked[need], [chosen[p] for p in need], config.score_batch_size
            )
        except ValueError as error:
            results = [RuntimeError(str(error))] * len(need)
        metric_seconds = (time.perf_counter() - started) / len(need)
        for position, result in zip(need, results):
            item = chosen[position]
            base = _record(item, method, metric, seconds + metric_seconds)
            if isinstance(result, dict):
                base.update(status="ok", values=result)
            elif isinstance(result, str):
                base.update(status="skipped", reason=result)
            else:
                base.update(status="failed", reason=str(result))
            records.append(base)
            done.add((item.sample.name, method, metric))
    return records


def _record(item: Item, method: str, metric: str, seconds: float) -> dict:
    return {"image": item.sample.name, "method": method, "metric": metric, "target": item.target,
            "target_name": item.class_name, "label": item.label, "seconds": round(seconds, 4)}


def _for_metrics(item, method, config, done, status, reason, seconds=0.0) -> list[dict]:
    records = []
    for metric in config.metrics:
        if (item.sample.name, method, metric) not in done:
            records.append({**_record(item, method, metric, seconds), "status": status, "reason": reason})
            done.add((item.sample.name, method, metric))
    return records


def _all(image, config, done, status, reason, target=None, target_name=None) -> list[dict]:
    records = []
    for method in config.methods:
        for metric in config.metrics:
            if (image, method, metric) not in done:
                records.append({"image": image, "method": method, "metric": metric, "target": target,
                                "target_name": target_name, "seconds": 0.0, "status": status, "reason": reason})
                done.add((image, method, metric))
    return records


def _save_atomic(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)  # sample names of sub-folders hold a "/"
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npy")
    np.save(temporary, array)
    os.replace(temporary, path)
