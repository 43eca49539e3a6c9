"""One batch of images through every method and metric: its records, stage by stage.

The local runner and the Ray workers share this. A batch is loaded and given its targets in
one classifier pass, then each method's maps come from a :data:`MapSource` and every metric
scores them at once. (image, method, metric) triples in ``done`` are skipped and each new one
is added to it, so a record is never made twice. A stage that raises on a batch of several
images is run again one image at a time, so the one image that raises is recorded as
``failed`` with the reason and the others go on.

A failed record names whose failure it was (``"failure"``, see :func:`failure_of`): the
image's, made again only when asked, or the environment's, made again by any resumed run. A
full disk (``ENOSPC``, ``EDQUOT``) is nobody's failure: it stops the run, so that the images
it hit are made when the run resumes.
"""

from __future__ import annotations

import time
from typing import Callable, Iterator, NamedTuple

import torch

from maskscope.bench.config import BenchConfig
from maskscope.bench.folder import is_disk_full
from maskscope.bench.scoring import Item, score
from maskscope.core.model.classifier import Classifier
from maskscope.data.dataset import Dataset, Sample
from maskscope.data.images import ImageLoadError
from maskscope.errors import MaskscopeError, MaskscopeValueError


class Failure(NamedTuple):
    """Why an image has no map or score, and whose failure it is (``"image"`` or ``"environment"``)."""

    reason: str
    kind: str = "image"


#: (method name, items, images B×3×crop×crop) → a crop×crop map, a failure reason (the image's)
#: or a :class:`Failure` per image
MapSource = Callable[[str, list[Item], torch.Tensor], list]
Triple = tuple[str, str, str]


def failure_of(error: BaseException, prefix: str = "") -> Failure:
    """``error`` as a failure: the environment's for an ``OSError`` that is no user error, memory
    running out (``MemoryError``, a CUDA out-of-memory error), else the image's. A full disk
    is re-raised: it stops the run."""
    if is_disk_full(error):
        raise error
    environment = not isinstance(error, MaskscopeError) and (
        isinstance(error, (OSError, MemoryError))
        or (isinstance(error, RuntimeError) and "out of memory" in str(error).lower()))
    return Failure(f"{prefix}{type(error).__name__}: {error}", "environment" if environment else "image")


def parse_shard(spec: str) -> tuple[int, int]:
    """``"K/N"`` as (K, N) with 0 ≤ K < N, else MaskscopeValueError."""
    offset, slash, count = spec.partition("/")
    if slash and offset.isdigit() and count.isdigit() and int(offset) < int(count):
        return int(offset), int(count)
    raise MaskscopeValueError(f"--shard {spec!r}: use K/N with 0 <= K < N, e.g. 0/4")


def select_samples(dataset: Dataset, config: BenchConfig) -> tuple[list[Sample], bool]:
    """The run's images (the first ``limit``, then every N-th from K for shard ``K/N``) and whether
    the dataset has object annotations (then images whose target class has no object are skipped)."""
    samples = list(dataset.limit(config.limit))
    with_objects = any(sample.boxes or sample.has_masks for sample in samples)
    if config.shard:
        offset, count = parse_shard(config.shard)
        samples = samples[offset::count]
    return samples, with_objects


def pending(samples: list[Sample], config: BenchConfig, done: set[Triple]) -> list[Sample]:
    """The samples with at least one (image, method, metric) triple not in ``done``."""
    return [s for s in samples if any((s.name, m, k) not in done for m in config.methods for k in config.metrics)]


def batch_records(classifier: Classifier, dataset: Dataset, samples: list[Sample], config: BenchConfig,
                  with_objects: bool, done: set[Triple], source: MapSource) -> Iterator[list[dict]]:
    """The records of ``samples``: first those of images that cannot be scored, then each method's."""
    if not samples:
        return
    try:
        records, items, images = _prepare(classifier, dataset, samples, config, with_objects, done)
    except Exception as error:  # a classifier that raises on one image must not fail its batch
        if is_disk_full(error):
            raise
        if len(samples) > 1:
            for sample in samples:
                yield from batch_records(classifier, dataset, [sample], config, with_objects, done, source)
        else:
            yield all_failed(samples[0].name, config, done, failure_of(error))
        return
    mark_done(done, records)
    yield records
    if items:
        for method in config.methods:
            yield _score_method(classifier, method, items, images, config, source, done)


def all_failed(image: str, config: BenchConfig, done: set[Triple], failure: Failure) -> list[dict]:
    """``failed`` records of ``image`` for every (method, metric) not in ``done`` (added to it)."""
    return mark_done(done, _all(image, config, done, "failed", failure.reason, failure=failure.kind))


def mark_done(done: set[Triple], records: list[dict]) -> list[dict]:
    """Add the triples of ``records`` to ``done``; returns ``records``."""
    done.update((r["image"], r["method"], r["metric"]) for r in records)
    return records


def _prepare(classifier, dataset, samples, config, with_objects, done):
    """Load the photos and pick targets; records (not yet in ``done``) for images that cannot be scored."""
    records, items, images = [], [], []
    for sample in samples:
        try:
            photo, size = sample.load(classifier.view.decode_side)  # reduced while decoded, as explain does
        except ImageLoadError as error:
            records += _all(sample.name, config, done, "failed", f"cannot read the image: {error}", failure="image")
            continue
        items.append(Item(sample, size, -1, None))
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


def _maps(source: MapSource, method: str, items: list[Item], images: torch.Tensor) -> list:
    """The source's maps for the batch; if it raises, image by image, each failure as a :class:`Failure`."""
    try:
        return source(method, items, images)
    except Exception as error:  # one image's failure must not end a long run; a full disk ends it
        if is_disk_full(error):
            raise
        if len(items) == 1:
            return [failure_of(error, f"{method} failed: ")]
    return [_maps(source, method, [item], images[i : i + 1])[0] for i, item in enumerate(items)]


def _score_method(classifier, method, items, images, config, source, done) -> list[dict]:
    wanted = [i for i, item in enumerate(items) if any((item.sample.name, method, k) not in done
                                                       for k in config.metrics)]
    if not wanted:
        return []
    items, images = [items[i] for i in wanted], images[wanted]
    started = time.perf_counter()
    maps = _maps(source, method, items, images)
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
            saliency = Failure(saliency)
        if isinstance(saliency, Failure):
            records += mark_done(done, _for_metrics(item, method, config, done, saliency, seconds))
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
                metric, classifier, batch[need], stacked[need], [chosen[p] for p in need], config.batch_size
            )
        except Exception as error:  # a bad value or the environment fails the batch's images; a bug raises
            failure = failure_of(error)
            if failure.kind == "image" and not isinstance(error, ValueError):
                raise
            results = [failure] * len(need)
        metric_seconds = (time.perf_counter() - started) / len(need)
        for position, result in zip(need, results):
            item = chosen[position]
            base = _record(item, method, metric, seconds + metric_seconds)
            if isinstance(result, dict):
                base.update(status="ok", values=result)
            elif isinstance(result, str):
                base.update(status="skipped", reason=result)
            else:
                base.update(status="failed", reason=result.reason, failure=result.kind)
            records.append(base)
            done.add((item.sample.name, method, metric))
    return records


def _record(item: Item, method: str, metric: str, seconds: float) -> dict:
    return {"image": item.sample.name, "method": method, "metric": metric, "target": item.target,
            "target_name": item.class_name, "label": item.label, "seconds": round(seconds, 4)}


def _for_metrics(item, method, config, done, failure: Failure, seconds=0.0) -> list[dict]:
    records = []
    for metric in config.metrics:
        if (item.sample.name, method, metric) not in done:
            records.append({**_record(item, method, metric, seconds), "status": "failed", "reason": failure.reason,
                            "failure": failure.kind})
    return records


def _all(image, config, done, status, reason, target=None, target_name=None, failure=None) -> list[dict]:
    records = []
    for method in config.methods:
        for metric in config.metrics:
            if (image, method, metric) not in done:
                record = {"image": image, "method": method, "metric": metric, "target": target,
                          "target_name": target_name, "seconds": 0.0, "status": status, "reason": reason}
                if failure is not None:
                    record["failure"] = failure
                records.append(record)
    return records
