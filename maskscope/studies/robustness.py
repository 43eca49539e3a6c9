"""The robustness study (G-removal, Agarwal & Nguyen 2020, Table S3): how much a method's map
changes across runs that should agree, with and without an inpainter as the filler.

Each *variant* is a method with fixed parameters and one parameter varied over k runs (5 in
the paper):

* SP vs SP-G: the patch size p ∈ {5, 17, 29, 41, 53} (stride 3; mean colour vs inpainter);
* LIME vs LIME-G: the seed ∈ {0, …, 4}, with S ∈ {50, 150} superpixels and N = 500 samples;
* MP vs MP-G: the seed of the random U(0, 1) initialisation ∈ {0, …, 4} (300 steps).

Every run's map (at image size: each method upsamples its own) is compared with every other
run's of the same image by SSIM, HOG-Pearson and Spearman
(:func:`maskscope.metrics.robustness.pairwise_robustness`, k·(k − 1)/2 = 10 pairs), and the
per-image means are averaged over the images with a 95% bootstrap interval. The paper's SSIM
(ImageNet-S): SP 0.698 vs SP-G 0.781; LIME(50) 0.553 vs 0.647; LIME(150) 0.163 vs 0.371;
MP 0.673 vs MP-G 0.356 — the inpainter steadies SP and LIME but unsteadies MP.

A run writes one record per (image, variant, run) to ``OUT/records.jsonl``
(:class:`~maskscope.bench.records.RecordLog`) and its map to
``OUT/maps/<variant>/<run>/<image>.npy``, then one ``robustness`` record per (image,
variant) once all runs are there; the same command resumes an interrupted run. The
configuration (every variant's parameters and runs) is kept in ``OUT/config.json`` and a
different one in the same folder is refused (:func:`~maskscope.bench.config.write_or_check`).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from maskscope.bench.config import BenchConfig, write_or_check
from maskscope.bench.records import RecordLog
from maskscope.bench.summary import mean_interval
from maskscope.core.model.classifier import Classifier
from maskscope.core.model.spec import ModelSpec
from maskscope.core.progress import progress_bar
from maskscope.data.dataset import Dataset, Sample
from maskscope.data.images import ImageLoadError, load_image
from maskscope.errors import MaskscopeValueError
from maskscope.methods.registry import get_method
from maskscope.metrics.robustness import SIMILARITIES, pairwise_robustness

ROBUSTNESS = "robustness"
PATCH_SIZES = (5, 17, 29, 41, 53)
SEEDS = (0, 1, 2, 3, 4)
SEGMENTS = (50, 150)
FAMILIES = ("sp", "sp-g", "lime", "lime-g", "mp", "mp-g")

#: G-removal Table S3, SSIM across 5 runs on ImageNet-S
PAPER_SSIM = {
    "sp": 0.698, "sp-g": 0.781, "lime-50": 0.553, "lime-g-50": 0.647,
    "lime-150": 0.163, "lime-g-150": 0.371, "mp": 0.673, "mp-g": 0.356,
}


@dataclass(frozen=True)
class StudyVariant:
    """A method with fixed parameters, run once per value of one varied parameter.

    Attributes:
        name: the variant's name in records and tables (``sp-g``, ``lime-50``, …).
        method: the method's registry name.
        params: the fixed parameters.
        vary: ``"seed"`` (the seed passed to the method) or the name of a parameter.
        values: one value per run.
    """

    name: str
    method: str
    params: dict = field(default_factory=dict)
    vary: str = "seed"
    values: tuple = SEEDS

    def run_key(self, value) -> str:
        return f"run:{self.vary}={value}"

    def method_for(self, value):
        """The method of the run with ``value``, and the seed to pass it."""
        params = dict(self.params)
        if self.vary != "seed":
            params[self.vary] = value
        return get_method(self.method, **params), value if self.vary == "seed" else 0


def protocol_variants(
    families: Sequence[str] = FAMILIES,
    patch_sizes: Sequence[int] = PATCH_SIZES,
    stride: int = 3,
    samples: int = 500,
    segments: Sequence[int] = SEGMENTS,
    steps: int = 300,
    seeds: Sequence[int] = SEEDS,
    inpainter: str = "inpaint",
) -> list[StudyVariant]:
    """The G-removal protocol's variants (its defaults), or a cheaper one.

    Args:
        families: any of ``sp``, ``sp-g``, ``lime``, ``lime-g``, ``mp``, ``mp-g``.
        patch_sizes: SP's runs (stride ``stride``).
        samples: LIME's N; ``segments``: one LIME variant per S.
        steps: MP's and MP-G's optimisation steps.
        seeds: the runs of LIME and MP.
        inpainter: the filler of the G variants (``inpaint`` = Navier–Stokes, ``telea``, ``biharmonic``).
    """
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise MaskscopeValueError(f"unknown method family {unknown}; choose from {', '.join(FAMILIES)}")
    variants = []
    for family in families:
        filler = inpainter if family.endswith("-g") else None
        if family.startswith("sp"):
            params = {"stride": stride, "filler": filler or "mean"}
            variants.append(StudyVariant(family, "sliding_patch", params, "window", tuple(patch_sizes)))
        elif family.startswith("lime"):
            for count in segments:
                params = {"samples": samples, "segments": count, "filler": filler or "mean"}
                variants.append(StudyVariant(f"{family}-{count}", "lime", params, "seed", tuple(seeds)))
        elif family == "mp":
            variants.append(StudyVariant("mp", "mp", {"steps": steps, "init": "uniform"}, "seed", tuple(seeds)))
        else:
            params = {"steps": steps, "filler": inpainter}
            variants.append(StudyVariant("mp-g", "mp-g", params, "seed", tuple(seeds)))
    return variants


def study_config(dataset: str, variants: Sequence[StudyVariant], model: ModelSpec | None = None,
                 images_per_batch: int = 1) -> BenchConfig:
    """The configuration kept in ``OUT/config.json``: each variant's method, parameters and runs, the
    classifier (``model``; ``None``: the default one) and the images per call of a method."""
    params = {v.name: {"method": v.method, **v.params, "vary": v.vary, "values": list(v.values)} for v in variants}
    spec = model or ModelSpec()
    return BenchConfig(dataset, [v.name for v in variants], list(SIMILARITIES), params,
                       images_per_batch=images_per_batch, **BenchConfig.model_fields(spec))


def select_samples(dataset: Dataset, limit: int | None = None, names: Sequence[str] | None = None) -> list[Sample]:
    """The photos named in ``names`` (in that order), else the first ``limit`` of the dataset."""
    if names:
        by_name = {sample.name: sample for sample in dataset}
        missing = [name for name in names if name not in by_name]
        if missing:
            raise MaskscopeValueError(f"no image named {', '.join(missing)} in {dataset.name}")
        return [by_name[name] for name in names]
    return list(dataset.limit(limit))


def run_robustness_study(
    classifier: Classifier,
    samples: Sequence[Sample],
    variants: Sequence[StudyVariant],
    config: BenchConfig,
    out: str | os.PathLike,
    force: bool = False,
    progress: bool = True,
) -> RecordLog:
    """Explain every photo with every run of every variant, then score each variant's runs pairwise."""
    out = Path(out)
    write_or_check(config, out, force, classifier.name)
    log = RecordLog(out / "records.jsonl")
    done = log.done
    total = len(samples) * sum(len(v.values) for v in variants)
    bar = progress_bar(total=total, desc="robustness", unit="run", disable=not progress)
    for start in range(0, len(samples), config.images_per_batch):
        chunk = list(samples[start : start + config.images_per_batch])
        names, images, failures = _load(classifier, chunk)
        log.append([_record(name, v.name, ROBUSTNESS, None, "failed", reason=reason)
                    for name, reason in failures for v in variants if (name, v.name, ROBUSTNESS) not in done])
        targets = []
        if names:
            with torch.no_grad():
                targets = classifier.probabilities(images).argmax(1).tolist()
        for variant in variants:
            for value in variant.values:
                log.append(_explain_run(classifier, variant, value, names, images, targets, out, done))
                bar.update(len(chunk))
            log.append(_score_variant(variant, names, targets, out, done))
    bar.close()
    return log


def _load(classifier: Classifier, samples: Sequence[Sample]):
    names, images, failures = [], [], []
    for sample in samples:
        try:
            images.append(classifier.view(load_image(sample.path, name=sample.name)))
            names.append(sample.name)
        except ImageLoadError as error:
            failures.append((sample.name, f"cannot read the image: {error}"))
    batch = torch.stack(images).to(classifier.device) if images else None
    return names, batch, failures


def map_path(out: Path, variant: str, key: str, image: str) -> Path:
    return out / "maps" / variant / key.removeprefix("run:") / f"{image}.npy"


def _explain_run(classifier, variant, value, names, images, targets, out, done) -> list[dict]:
    key = variant.run_key(value)
    todo = [i for i, name in enumerate(names) if (name, variant.name, key) not in done]
    if not todo:
        return []
    started = time.perf_counter()
    try:
        method, seed = variant.method_for(value)
        saliency = method.explain(classifier, images[todo], target=[targets[i] for i in todo], seed=seed).saliency
        maps = [s.detach().float().cpu() for s in saliency]
    except Exception as error:  # one failing run must not end a long study
        maps = [f"{variant.name} {key} failed: {type(error).__name__}: {error}"] * len(todo)
    seconds = round((time.perf_counter() - started) / len(todo), 4)
    records = []
    for index, saliency in zip(todo, maps):
        if isinstance(saliency, torch.Tensor) and not torch.isfinite(saliency).all():
            saliency = "saliency contains NaN or infinite values"
        if isinstance(saliency, str):
            records.append(_record(names[index], variant.name, key, targets[index], "failed", seconds, reason=saliency))
        else:
            path = map_path(out, variant.name, key, names[index])
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, saliency.numpy())
            records.append(_record(names[index], variant.name, key, targets[index], "ok", seconds))
        done.add((names[index], variant.name, key))
    return records


def _score_variant(variant, names, targets, out, done) -> list[dict]:
    """The pairwise similarities of each photo whose runs are all done and none failed."""
    log_keys = [variant.run_key(value) for value in variant.values]
    records = []
    for index, name in enumerate(names):
        if (name, variant.name, ROBUSTNESS) in done:
            continue
        paths = [map_path(out, variant.name, key, name) for key in log_keys]
        missing = [key for key, path in zip(log_keys, paths) if not path.exists()]
        if missing:
            reason = f"runs without a map: {', '.join(missing)}"
            records.append(_record(name, variant.name, ROBUSTNESS, targets[index], "failed", reason=reason))
        else:
            scores = pairwise_robustness(torch.stack([torch.from_numpy(np.load(p)) for p in paths]))
            values = {metric: round(result.mean, 6) for metric, result in scores.items()}
            values["pairs"] = len(next(iter(scores.values())).pairs)
            records.append({**_record(name, variant.name, ROBUSTNESS, targets[index], "ok"), "values": values})
        done.add((name, variant.name, ROBUSTNESS))
    return records


def _record(image, variant, metric, target, status, seconds=0.0, reason=None) -> dict:
    record = {"image": image, "method": variant, "metric": metric, "target": target, "status": status,
              "seconds": seconds}
    if reason is not None:
        record["reason"] = reason
    return record


def summarise_robustness(out: str | os.PathLike, images: Sequence[str] | None = None) -> list[dict]:
    """Per variant: mean [95% bootstrap interval] of each similarity over the photos, the
    paper's SSIM, and the measured seconds per photo (all runs); then, per G variant, its paired
    differences to the same variant without the inpainter (:func:`paired_differences`). Writes
    ``OUT/robustness.json`` and ``OUT/robustness.md``. ``images`` restricts the tables to those photos."""
    out = Path(out)
    if not (out / "records.jsonl").exists() or not (out / "config.json").exists():
        raise MaskscopeValueError(f"{out}: no study run (records.jsonl and config.json) to summarise")
    config = json.loads((out / "config.json").read_text())
    records = RecordLog(out / "records.jsonl").records
    wanted = set(images) if images else None
    rows = []
    for variant in config["methods"]:
        mine = [r for r in records if r["method"] == variant and (wanted is None or r["image"] in wanted)]
        scored = [r for r in mine if r["metric"] == ROBUSTNESS and r["status"] == "ok"]
        runs = [r for r in mine if r["metric"] != ROBUSTNESS and r["status"] == "ok"]
        per_image: dict[str, float] = {}
        for record in runs:
            per_image[record["image"]] = per_image.get(record["image"], 0.0) + record["seconds"]
        params = config["params"][variant]
        row = {"variant": variant, "method": params["method"], "vary": params["vary"], "values": params["values"],
               "n": len(scored), "failed": sum(r["status"] == "failed" for r in mine if r["metric"] == ROBUSTNESS),
               "seconds_per_image": float(np.mean(list(per_image.values()))) if per_image else None,
               "paper_ssim": PAPER_SSIM.get(variant)}
        for metric in SIMILARITIES:
            values = np.asarray([r["values"][metric] for r in scored], dtype=float)
            row[metric] = mean_interval(values) if len(values) else None
        rows.append(row)
    differences = paired_differences(records, generative_pairs(config["methods"]), wanted)
    summary = {"config": config, "images": sorted({r["image"] for r in records if wanted is None or r["image"] in wanted}),
               "summary": rows, "paired_differences": differences}
    (out / "robustness.json").write_text(json.dumps(summary, indent=1) + "\n")
    (out / "robustness.md").write_text(markdown_table(rows) + "\n" + differences_table(differences))
    return rows


def generative_pairs(variants: Sequence[str]) -> list[tuple[str, str]]:
    """``(G variant, the same variant with the mean colour)`` for each pair that ran:
    ``sp-g``/``sp``, ``lime-g-50``/``lime-50``, ``mp-g``/``mp``, …"""
    return [(name, name.replace("-g", "", 1)) for name in variants
            if "-g" in name and name.replace("-g", "", 1) in variants]


def paired_differences(records: Sequence[dict], pairs: Sequence[tuple[str, str]], wanted: set | None = None) -> list[dict]:
    """Per pair and similarity: the mean over the photos scored by both of (G variant − variant),
    its 95% bootstrap interval, and on how many photos the G variant was the steadier."""
    scores = {(r["method"], r["image"]): r["values"] for r in records
              if r["metric"] == ROBUSTNESS and r["status"] == "ok" and (wanted is None or r["image"] in wanted)}
    rows = []
    for variant, baseline in pairs:
        images = sorted(image for method, image in scores if method == variant and (baseline, image) in scores)
        row = {"variant": variant, "baseline": baseline, "n": len(images)}
        for metric in SIMILARITIES:
            values = np.asarray([scores[variant, i][metric] - scores[baseline, i][metric] for i in images], dtype=float)
            row[metric] = {**mean_interval(values), "steadier": int((values > 0).sum())} if len(values) else None
        rows.append(row)
    return rows


def markdown_table(rows: Sequence[dict]) -> str:
    lines = ["| variant | runs vary | SSIM ↑ | HOG-Pearson ↑ | Spearman ↑ | paper SSIM | images | s / image |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        cells = []
        for metric in SIMILARITIES:
            value = row[metric]
            cells.append("–" if value is None else f"{value['mean']:.3f} [{value['low']:.3f}, {value['high']:.3f}]")
        paper = "" if row["paper_ssim"] is None else f"{row['paper_ssim']:.3f}"
        seconds = "" if row["seconds_per_image"] is None else f"{row['seconds_per_image']:.0f}"
        varied = f"{row['vary']} ∈ {{{', '.join(map(str, row['values']))}}}"
        failed = f" ({row['failed']} failed)" if row["failed"] else ""
        lines.append(f"| {row['variant']} | {varied} | " + " | ".join(cells) + f" | {paper} | {row['n']}{failed} | {seconds} |")
    lines += ["", "Mean over the photos of each photo's mean over all pairs of runs [95% bootstrap interval, "
              "1000 resamples]; s / image: seconds of all runs of one photo."]
    return "\n".join(lines) + "\n"


def differences_table(rows: Sequence[dict]) -> str:
    """The paired differences of :func:`paired_differences` as Markdown (empty without pairs)."""
    if not rows:
        return ""
    lines = ["| G variant − variant | SSIM | HOG-Pearson | Spearman | images |", "|---|---|---|---|---|"]
    for row in rows:
        cells = []
        for metric in SIMILARITIES:
            value = row[metric]
            cells.append("–" if value is None else f"{value['mean']:+.3f} [{value['low']:+.3f}, {value['high']:+.3f}] "
                                                   f"(G steadier on {value['steadier']})")
        lines.append(f"| {row['variant']} − {row['baseline']} | " + " | ".join(cells) + f" | {row['n']} |")
    lines += ["", "Per photo, the G variant's similarity minus the variant's; mean over the photos scored by both "
              "[95% bootstrap interval]; > 0: the inpainter steadies the method."]
    return "\n".join(lines) + "\n"
