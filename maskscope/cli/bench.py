"""``maskscope bench``: methods × metrics over a dataset, resumable, with a summary at the end.

Records go to ``OUT/records.jsonl`` as they are made; running the same command again resumes
an interrupted run, making again the records that failed for the environment's sake
(``--retry-failed``: every failed record). ``--summarise OUT`` only rewrites the summary of an
existing run. The batches run in ``--workers`` processes of ``--worker-threads`` torch threads
(by default one per core, see :func:`~maskscope.bench.workers.worker_plan`), or with ``--ray``
on Ray workers, with the same records; ``--shard K/N``
runs a part of them, and ``--merge DIR...`` combines the parts into ``--out``.

A run owns its ``--out`` (its ``config.json`` says so) and holds its lock while it runs; the
arguments, the folder and the dataset are checked before the model is loaded. Exit status: 0
for a finished run, 2 for an error in the arguments, 1 for a run that failed (a full disk,
every record failed).
"""

from __future__ import annotations

import argparse
import functools
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from maskscope.bench.batch import parse_shard
from maskscope.bench.config import IMAGES_PER_BATCH, BenchConfig, check_claim
from maskscope.bench.folder import RunFolderError, check_apart, locked, read_run_config
from maskscope.bench.ray_runner import RayOptions, require_ray, run_bench_ray
from maskscope.bench.records import RecordLog, failure_kind
from maskscope.bench.runner import run_bench
from maskscope.bench.scoring import DEFAULT_PROTOCOL, check_metric
from maskscope.bench.shards import merge_shards
from maskscope.bench.summary import summarise
from maskscope.cli.errors import CommandError
from maskscope.cli.options import (
    add_model_options,
    add_renamed_option,
    given_model_options,
    images_per_batch_option,
    load_classifier,
    parse_params,
)
from maskscope.core.model.classifier import Classifier
from maskscope.core.scoring.perturbations import CPU_BATCH_SIZE, GPU_BATCH_SIZE
from maskscope.data.dataset import Dataset
from maskscope.data.registry import NAMED, data_root, open_dataset
from maskscope.errors import MaskscopeError
from maskscope.methods import METHODS, get_method, method_names
from maskscope.methods.registry import resolve_method
from maskscope.metrics import PROTOCOLS

#: the largest --seed (methods seed NumPy's RandomState, which takes 32 bits)
MAX_SEED = 2**32 - 1


class RunFailed(MaskscopeError):
    """The run finished but made no record: every one failed (exit status 1)."""

    exit_status = 1


def add_shared_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="imagenet-samples, coco128 or a dataset folder")
    parser.add_argument("--metrics", help="comma-separated: deletion:<protocol>, insertion:<protocol> (protocols: "
                        f"{', '.join(PROTOCOLS)}; bare deletion or insertion: {DEFAULT_PROTOCOL}), pointing, "
                        "weak_localisation, segmentation")
    parser.add_argument("--limit", type=int, help="the first N images")
    parser.add_argument("--target", choices=("top1", "label"), help="top1 (default) or the dataset's label")
    images_per_batch_option(parser, None, f"images explained and scored together (default: {IMAGES_PER_BATCH})")
    parser.add_argument("--batch-size", type=int, help="perturbed images per forward pass when scoring (default: "
                        f"{CPU_BATCH_SIZE} on a CPU, {GPU_BATCH_SIZE} on a GPU)")
    add_renamed_option(parser, "--score-batch-size", "--batch-size")
    parser.add_argument("--seed", type=int, help="seed (default 0)")
    parser.add_argument("--out", help="output folder")
    parser.add_argument("--config", help="a JSON file with the same keys (options given here win)")
    parser.add_argument("--force", action="store_true", help="start afresh even if OUT holds a run of other settings "
                        "(deletes that run's records, summaries, curves and maps, nothing else)")
    parser.add_argument("--retry-failed", action="store_true", help="make every failed record again on resume "
                        "(without it only the environment's failures: a lost worker, memory, an OSError)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model_options(parser)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="benchmark methods × metrics over a dataset",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--methods", help="comma-separated names, or 'all' (every method that needs no trained checkpoint): "
                        + ", ".join(method_names()))
    parser.add_argument("--param", action="append", metavar="METHOD.KEY=VALUE", help="e.g. mp.steps=150")
    parser.add_argument("--summarise", metavar="OUT", help="only write the summary of the run in OUT")
    parser.add_argument("--no-report", action="store_true", help="do not write the HTML report OUT/report/ at the end")
    parser.add_argument("--shard", metavar="K/N", help="only every N-th image from the K-th (from 0), for one job "
                        "of a scheduler's array, each with its own --out; combine them with --merge")
    parser.add_argument("--merge", nargs="+", metavar="DIR", help="combine the --shard runs in DIR... into --out")
    add_shared_options(parser)
    cluster = parser.add_argument_group("worker processes and Ray cluster")
    cluster.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                         help="run on Ray workers: no ADDRESS starts Ray on this machine, 'auto' joins the cluster "
                         "this machine is in, or HOST:6379 / ray://HOST:10001")
    cluster.add_argument("--workers", type=int, help="worker processes, each running whole batches (default: one per "
                         "core, at most one per batch, 1 for a single batch or --device cuda; with --ray: as many as "
                         "the cluster's CPUs, or GPUs, allow)")
    cluster.add_argument("--worker-threads", type=int, help="torch threads per worker (default: the cores shared out "
                         "among the workers, torch's own count for one; with --ray: 1)")
    cluster.add_argument("--gpus-per-worker", type=float, default=0.0,
                         help="GPUs per Ray worker, with --device cuda; fractions share a GPU (default: %(default)s)")


def build_config(args: argparse.Namespace, methods: list[str] | None, params: dict | None) -> BenchConfig:
    """The run's configuration from the options (and ``--config``), checked before any model is loaded.

    An option given (not ``None``) wins over the file's value, even when it gives the default."""
    overrides = dict(dataset=args.data, methods=methods, params=params, seed=args.seed, limit=args.limit,
                     target=args.target, images_per_batch=args.images_per_batch, batch_size=args.batch_size,
                     metrics=args.metrics.split(",") if args.metrics else None,
                     shard=getattr(args, "shard", None), **given_model_options(args))
    if args.config:
        config = BenchConfig.from_file(args.config, **overrides)
    else:
        given = (("--data", args.data), ("--metrics", args.metrics), ("--methods", methods))
        missing = [option for option, value in given if not value]
        if missing:
            raise CommandError(f"{', '.join(missing)} required (or --config)")
        config = BenchConfig(**{k: v for k, v in overrides.items() if v is not None})
    if config.images_per_batch < 1 or (config.batch_size is not None and config.batch_size < 1):
        raise CommandError("--images-per-batch and --batch-size must be at least 1")
    if not 0 <= config.seed <= MAX_SEED:
        raise CommandError(f"--seed must be between 0 and {MAX_SEED}, got {config.seed}")
    if config.limit is not None and config.limit < 1:
        raise CommandError(f"--limit must be at least 1, got {config.limit} (leave it out for every image)")
    if config.target not in ("top1", "label"):
        raise CommandError(f"target {config.target!r}: use top1 or label")
    for spec in config.metrics:
        check_metric(spec)
    if config.shard:
        parse_shard(config.shard)
    return config


def check_methods(config: BenchConfig) -> None:
    """Every method name and parameter of ``config``, checked before the model and the data are opened:
    a known name, named once (an alias and its method are one), with a checkpoint where it needs one."""
    seen: dict[tuple, str] = {}
    for name in config.methods:
        if name.lower() not in method_names():
            raise CommandError(f"unknown method {name!r}; available: {', '.join(method_names())}")
        cls, preset = resolve_method(name)
        params = config.params.get(name, {})
        key = (cls.name, repr(sorted({**preset, **params}.items())))
        if key in seen:
            same = f"{name} is {seen[key]}" if name != seen[key] else f"{name} is named twice"
            raise CommandError(f"--methods: {same}; name each method once")
        seen[key] = name
        method = get_method(name, **params)
        checkpoint = getattr(method, "checkpoint", None)
        if cls.needs_checkpoint and checkpoint is None:
            raise CommandError(f"method {name} needs a trained checkpoint: --param {name}.checkpoint=PATH "
                               "(train one with maskscope train-explainer)")
        if cls.needs_checkpoint and not Path(str(checkpoint)).is_file():
            raise CommandError(f"method {name}: checkpoint {checkpoint}: no such file")


def untrained_methods() -> list[str]:
    """``--methods all``: every registered method that runs without a trained checkpoint."""
    return sorted(name for name, method in METHODS.items() if not method.needs_checkpoint)


def method_params(pairs: list[str] | None, methods: list[str]) -> dict:
    params: dict = {}
    for key, value in parse_params(pairs).items():
        method, dot, name = key.partition(".")
        if not dot or method not in methods:
            raise CommandError(f"--param {key}: use METHOD.KEY=VALUE with METHOD one of {', '.join(methods)}")
        params.setdefault(method, {})[name] = value
    return params


def run(args: argparse.Namespace) -> int:
    if args.summarise:
        return _summarise_only(args.summarise)
    if not args.out:
        raise CommandError("--out is required")
    if args.merge:
        return _merge(args, args.merge, args.out, args.force)
    methods = None
    if args.methods:
        methods = untrained_methods() if args.methods == "all" else [m.strip().lower() for m in args.methods.split(",")]
    config = build_config(args, methods, method_params(args.param, methods or []) if args.param else None)
    check_methods(config)
    check_worker_options(args)
    if args.ray is not None:
        require_ray()
    with claimed(config, args.out, args.force):
        dataset = open_checked_dataset(config)
        if args.ray is not None:
            return _run_on_ray(args, config, dataset)
        spec = config.model_spec()
        classifier = load_classifier(spec)
        run_bench(classifier, dataset, config, args.out, force=args.force, progress=not args.quiet,
                  retry_failed=args.retry_failed, workers=args.workers, worker_threads=args.worker_threads,
                  make_classifier=functools.partial(load_classifier, spec))
        return _finish(args, args.out)


@contextmanager
def claimed(config: BenchConfig, out: str, force: bool) -> Iterator[None]:
    """Hold ``out``'s lock (stopping at once if another run holds it) once ``config`` may run there:
    apart from the data, and the same settings or ``force``."""
    check_apart(dataset_folder(config.dataset), Path(out))
    check_claim(config, out, force)  # a folder that is no run's gets no lock file
    with locked(out):
        check_claim(config, out, force)
        yield


def dataset_folder(spec: str) -> Path:
    """The folder a dataset spec reads: a named set's folder in the data root, a path's folder."""
    name = spec.partition(":")[0]
    if name in NAMED and not Path(spec).exists():
        return data_root() / name
    path = Path(spec)
    return path if path.is_dir() or not path.exists() else path.parent


def open_checked_dataset(config: BenchConfig) -> Dataset:
    """The configuration's dataset; with ``target="label"`` it must label some of the run's images."""
    dataset = open_dataset(config.dataset)
    if config.target == "label" and not any(sample.labels for sample in dataset.limit(config.limit)):
        raise CommandError(f"--target label: {config.dataset} labels none of its images; use --target top1")
    return dataset


def open_dataset_and_model(config: BenchConfig) -> tuple[Dataset, Classifier]:
    """The configuration's dataset (checked) and classifier."""
    return open_checked_dataset(config), load_classifier(config.model_spec())


def check_worker_options(args: argparse.Namespace) -> None:
    """The worker options are sound (before the run folder is touched)."""
    if any(count is not None and count < 1 for count in (args.workers, args.worker_threads)) or args.gpus_per_worker < 0:
        raise CommandError("--workers and --worker-threads must be at least 1, --gpus-per-worker at least 0")


def _run_on_ray(args: argparse.Namespace, config: BenchConfig, dataset: Dataset) -> int:
    """The run on Ray workers, each loading the classifier itself; the driver loads none."""
    options = RayOptions(None if args.ray == "local" else args.ray, args.workers, args.worker_threads or 1,
                         args.gpus_per_worker)
    run = run_bench_ray(functools.partial(load_classifier, config.model_spec()), dataset, config, args.out, options,
                        force=args.force, progress=not args.quiet, retry_failed=args.retry_failed)
    if run.images:
        print(f"ray: {run.images} images in {run.tasks} tasks on {run.workers} workers ({run.lost_workers} lost "
              f"and replaced); the driver's own work {1000 * run.driver_seconds / run.images:.1f} ms per image",
              file=sys.stderr)
    return _finish(args, args.out)


def _merge(args: argparse.Namespace, folders: list[str], out: str, force: bool) -> int:
    missing = merge_shards(folders, out, force)
    if missing:
        print(f"merged {len(folders)} shards into {out}; shards {', '.join(map(str, missing))} are missing",
              file=sys.stderr)
    with locked(out):
        return _finish(args, out)


def _finish(args: argparse.Namespace, out: str) -> int:
    """The summary tables of the run in ``out``, unless ``--no-report`` its HTML report, and the
    run's outcome: :class:`RunFailed` when every record failed (then it is the one line on
    stderr), else the files written and a line on the failures."""
    summarise(out)
    written = [f"wrote {out}/summary.md, summary.csv and curves.png"]
    if not getattr(args, "no_report", True):
        from maskscope.report import write_report

        written.append(f"wrote {write_report(out, progress=not args.quiet)}")
    status = outcome(out)
    print("\n".join(written), file=sys.stderr)
    return status


def outcome(out: str) -> int:
    """0 when a record of the run in ``out`` is not a failure (with a line counting the failures);
    :class:`RunFailed` when every record is one."""
    records = RecordLog(Path(out) / "records.jsonl").records
    failed = [record for record in records if record["status"] == "failed"]
    if failed and len(failed) == len(records):
        first = failed[0]
        raise RunFailed(f"every record failed ({len(failed)}), e.g. {first['image']} with {first['method']}: "
                        f"{first.get('reason')}; records in {out}/records.jsonl")
    if failed:
        retried = sum(failure_kind(record) == "environment" for record in failed)
        print(f"{len(failed)} of {len(records)} records failed ({retried} for the environment's sake, made again "
              "by running the same command; the rest with --retry-failed)", file=sys.stderr)
    return 0


def _summarise_only(out: str) -> int:
    """``--summarise OUT``: the summary of the run in ``out``, which must be a run's folder not in use."""
    if read_run_config(out) is None:
        raise RunFolderError(f"{out}: not a bench run (no config.json)")
    with locked(out):
        summarise(out)
    print(f"wrote {out}/summary.md, summary.csv and curves.png", file=sys.stderr)
    return 0
