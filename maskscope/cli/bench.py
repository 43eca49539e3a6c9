"""``maskscope bench``: methods × metrics over a dataset, resumable, with a summary at the end.

Records go to ``OUT/records.jsonl`` as they are made; running the same command again resumes
an interrupted run. ``--summarise OUT`` only rewrites the summary of an existing run.
``--ray`` runs the images on Ray workers with the same records; ``--shard K/N`` runs a
part of them, and ``--merge DIR...`` combines the parts into ``--out``.
"""

from __future__ import annotations

import argparse
import functools
import sys

from maskscope.bench.batch import parse_shard
from maskscope.bench.config import BenchConfig
from maskscope.bench.ray_runner import RayOptions, run_bench_ray
from maskscope.bench.runner import run_bench
from maskscope.bench.scoring import DEFAULT_PROTOCOL, check_metric
from maskscope.bench.shards import merge_shards
from maskscope.bench.summary import summarise
from maskscope.cli.errors import CommandError
from maskscope.cli.options import add_model_options, load_classifier, parse_params
from maskscope.core.classifier import Classifier
from maskscope.data.dataset import Dataset, DatasetError
from maskscope.data.registry import open_dataset
from maskscope.methods import METHODS, get_method, method_names
from maskscope.metrics import PROTOCOLS


def add_shared_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="imagenet-samples, coco128 or a dataset folder")
    parser.add_argument("--metrics", help="comma-separated: deletion:<protocol>, insertion:<protocol> (protocols: "
                        f"{', '.join(PROTOCOLS)}; bare deletion or insertion: {DEFAULT_PROTOCOL}), pointing, "
                        "weak_localisation, segmentation")
    parser.add_argument("--limit", type=int, help="the first N images")
    parser.add_argument("--target", choices=("top1", "label"), help="top1 (default) or the dataset's label")
    parser.add_argument("--batch-size", type=int, help="images per batch (default 4)")
    parser.add_argument("--score-batch-size", type=int, help="perturbed images per forward pass when scoring (default 8)")
    parser.add_argument("--seed", type=int, help="seed (default 0)")
    parser.add_argument("--out", help="output folder")
    parser.add_argument("--config", help="a JSON file with the same keys (options given here win)")
    parser.add_argument("--force", action="store_true", help="start afresh even if OUT holds another run")
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
    cluster = parser.add_argument_group("Ray cluster")
    cluster.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                         help="run on Ray workers: no ADDRESS starts Ray on this machine, 'auto' joins the cluster "
                         "this machine is in, or HOST:6379 / ray://HOST:10001")
    cluster.add_argument("--workers", type=int, help="Ray workers (default: as many as the cluster's CPUs, or GPUs, allow)")
    cluster.add_argument("--worker-threads", type=int, default=1, help="torch threads per Ray worker (default: %(default)s)")
    cluster.add_argument("--gpus-per-worker", type=float, default=0.0,
                         help="GPUs per Ray worker, with --device cuda; fractions share a GPU (default: %(default)s)")


def build_config(args: argparse.Namespace, methods: list[str] | None, params: dict | None) -> BenchConfig:
    model = None if args.model == "default" and args.config else args.model
    overrides = dict(dataset=args.data, methods=methods, params=params, seed=args.seed, limit=args.limit,
                     target=args.target, model=model, batch_size=args.batch_size,
                     score_batch_size=args.score_batch_size,
                     metrics=args.metrics.split(",") if args.metrics else None,
                     device=None if args.device == "cpu" and args.config else args.device,
                     precision=None if args.precision == "float32" and args.config else args.precision,
                     shard=getattr(args, "shard", None),
                     engine=None if args.engine == "auto" and args.config else args.engine)
    try:
        if args.config:
            config = BenchConfig.from_file(args.config, **overrides)
        else:
            given = (("--data", args.data), ("--metrics", args.metrics), ("--methods", methods))
            missing = [option for option, value in given if not value]
            if missing:
                raise CommandError(f"{', '.join(missing)} required (or --config)")
            config = BenchConfig(**{k: v for k, v in overrides.items() if v is not None})
    except (ValueError, TypeError) as error:
        raise CommandError(str(error)) from error
    if config.batch_size < 1 or config.score_batch_size < 1:
        raise CommandError("--batch-size and --score-batch-size must be at least 1")
    if config.seed < 0:
        raise CommandError(f"--seed must be at least 0, got {config.seed}")
    try:  # checked before the model and the data are opened
        for spec in config.metrics:
            check_metric(spec)
    except ValueError as error:
        raise CommandError(str(error)) from error
    if config.shard:
        try:
            parse_shard(config.shard)
        except ValueError as error:
            raise CommandError(f"--{error}") from error
    return config


def check_methods(config: BenchConfig) -> None:
    """Every method name and parameter of ``config``, checked before the model and the data are opened."""
    try:
        for name in config.methods:
            get_method(name, **config.params.get(name, {}))
    except ValueError as error:
        raise CommandError(str(error)) from error


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
        return _summary(args.summarise)
    if not args.out:
        raise CommandError("--out is required")
    if args.merge:
        return _merge(args, args.merge, args.out, args.force)
    methods = None
    if args.methods:
        methods = untrained_methods() if args.methods == "all" else [m.strip().lower() for m in args.methods.split(",")]
    config = build_config(args, methods, method_params(args.param, methods or []) if args.param else None)
    check_methods(config)
    if args.ray is not None:
        return _run_on_ray(args, config)
    dataset, classifier = open_dataset_and_model(args, config)
    try:
        run_bench(classifier, dataset, config, args.out, force=args.force, progress=not args.quiet)
    except ValueError as error:
        raise CommandError(str(error)) from error
    return _finish(args, args.out)


def open_dataset_and_model(args: argparse.Namespace, config: BenchConfig) -> tuple[Dataset, Classifier]:
    """The configuration's dataset and classifier; a dataset that cannot be opened is a one-line error."""
    args.model, args.device, args.precision, args.engine = config.model, config.device, config.precision, config.engine
    return _open_dataset(config), load_classifier(args)


def _open_dataset(config: BenchConfig) -> Dataset:
    try:
        return open_dataset(config.dataset)
    except DatasetError as error:
        raise CommandError(str(error)) from error


def _run_on_ray(args: argparse.Namespace, config: BenchConfig) -> int:
    """The run on Ray workers, each loading the classifier itself; the driver loads none."""
    if (args.workers is not None and args.workers < 1) or args.worker_threads < 1 or args.gpus_per_worker < 0:
        raise CommandError("--workers and --worker-threads must be at least 1, --gpus-per-worker at least 0")
    model = argparse.Namespace(model=config.model, device=config.device, precision=config.precision,
                               engine=config.engine)
    options = RayOptions(None if args.ray == "local" else args.ray, args.workers, args.worker_threads,
                         args.gpus_per_worker)
    try:
        run = run_bench_ray(functools.partial(load_classifier, model), _open_dataset(config), config, args.out,
                            options, force=args.force, progress=not args.quiet)
    except (ValueError, ImportError, RuntimeError) as error:
        raise CommandError(str(error)) from error
    if run.images:
        print(f"ray: {run.images} images in {run.tasks} tasks on {run.workers} workers ({run.lost_workers} lost "
              f"and replaced); the driver's own work {1000 * run.driver_seconds / run.images:.1f} ms per image",
              file=sys.stderr)
    return _finish(args, args.out)


def _merge(args: argparse.Namespace, folders: list[str], out: str, force: bool) -> int:
    try:
        missing = merge_shards(folders, out, force)
    except ValueError as error:
        raise CommandError(str(error)) from error
    if missing:
        print(f"merged {len(folders)} shards into {out}; shards {', '.join(map(str, missing))} are missing",
              file=sys.stderr)
    return _finish(args, out)


def _finish(args: argparse.Namespace, out: str) -> int:
    """The summary tables of the run in ``out`` and, unless ``--no-report``, its HTML report."""
    status = _summary(out)
    if not args.no_report:
        from maskscope.report import write_report

        print(f"wrote {write_report(out, progress=not args.quiet)}", file=sys.stderr)
    return status


def _summary(out: str) -> int:
    try:
        summarise(out)
    except ValueError as error:
        raise CommandError(str(error)) from error
    print(f"wrote {out}/summary.md, summary.csv and curves.png", file=sys.stderr)
    return 0
