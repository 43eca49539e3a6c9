"""``maskscope explain``: explain images with a method and write saliency, overlay and record.

Images are explained in batches of ``--images-per-batch``, one batched call of the method
each (its perturbed images per forward pass is its ``batch_size``: ``--param batch_size=N``).
A folder is searched with its sub-folders, and each photo is named by its path inside the
folder (``cats/tabby``), so the output mirrors the input. An image that cannot be read, or
whose model output is unusable, gets a one-line error and the others are still explained;
the exit status is 1 when any image failed. Files are never replaced silently (see
:meth:`~maskscope.core.explanation.Explanation.save`); ``--overwrite`` replaces the same
method's earlier files.

The batches run in ``--workers`` processes of ``--worker-threads`` torch threads each, by
default one per core (:func:`~maskscope.bench.workers.worker_plan`): the same batches, seeds
and files as one process, which prints every photo's line as its batch finishes.

A run resumes: the photos whose explanation in ``--out`` is complete (saved with the same
parameters, target and seed) are skipped, so after an interruption the same command explains
only the others; an interrupted photo's files are rewritten. The arguments that need no model
(``--seed``, ``--images-per-batch``, ``--out``) are checked before the model is loaded.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import numpy as np
import torch

from maskscope.bench.workers import WorkerPool, worker_plan
from maskscope.cli.errors import CommandError
from maskscope.cli.options import (
    add_model_options,
    add_renamed_option,
    check_method_fits,
    images_per_batch_option,
    load_classifier,
    model_spec,
    parse_params,
)
from maskscope.core.explanation import SaveError, file_stems, saved_record, settings_differences
from maskscope.core.model.classifier import Classifier, ModelOutputError
from maskscope.core.model.targets import map_names, map_rows
from maskscope.core.progress import progress_bar
from maskscope.data.images import ImageLoadError, list_images, load_image, unique_names
from maskscope.methods import get_method, method_names, resolve_method
from maskscope.methods.base import prepare_images
from maskscope.methods.explainer.checkpoint import classifier_for_checkpoint
from maskscope.methods.parameters import check_layer_names

DEFAULT_PHOTO = "chelsea"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="explain images (default: a bundled photo of a cat)",
        description="Explain each IMAGE (files or folders) and write NAME.npy, NAME.png and NAME.json to --out.",
    )
    parser.add_argument("images", nargs="*", help="image files or folders (default: scikit-image's chelsea photo)")
    parser.add_argument("--method", default="mp", help=f"one of: {', '.join(method_names())} (default: %(default)s)")
    parser.add_argument("--target", default="top1", help="top1, topk:K, a class index or a class name (default: %(default)s)")
    add_model_options(parser)
    parser.add_argument("--out", default="results", help="output folder (default: %(default)s)")
    images_per_batch_option(parser, 8, "images explained together, in one call of the method")
    add_renamed_option(parser, "--batch-size", "--images-per-batch (images per call; a method's perturbed images "
                       "per forward pass is --param batch_size=N)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument("--param", action="append", metavar="KEY=VALUE", help="a method parameter, e.g. steps=100")
    parser.add_argument("--checkpoint", help="a trained explainer (--method explainer); the model is fed as in its training")
    parser.add_argument("--overwrite", action="store_true", help="replace the files of an earlier run of this method")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--workers", type=int, help="worker processes, each explaining whole batches (default: one "
                        "per core, at most one per batch, 1 for a single batch or --device cuda)")
    parser.add_argument("--worker-threads", type=int, help="torch threads per worker (default: the cores shared out "
                        "among the workers, torch's own count for one)")


def run(args: argparse.Namespace) -> int:
    check_arguments(args)
    params = parse_params(args.param)
    if args.checkpoint:
        params["checkpoint"] = args.checkpoint
    method_class = resolve_method(args.method)[0]
    if "progress" in method_class.defaults():
        params.setdefault("progress", not args.quiet)
    method = get_method(args.method, **params)
    sources = collect_sources(args.images)
    out = output_folder(args.out)
    classifier = method_classifier(args, method)
    run_settings = {"target": args.target, "seed": args.seed}
    asked = args.method.lower()
    sources, renamed, skipped = still_to_explain(sources, out, method, asked, run_settings, args.overwrite)
    if skipped:
        print(f"{skipped} photo(s) already explained in {out}/, skipped (--overwrite recomputes them)", file=sys.stderr)
    if renamed:
        print(f"note: {len(renamed)} name(s) in {out}/ are taken by other files; "
              f"{asked}'s explanations are saved as {renamed[0]} and so on", file=sys.stderr)
    failures = 0
    photos, names, paths = [], [], []
    side = classifier.view.decode_side
    for source, name in sources:
        try:
            photos.append(load_image(source, name=None if isinstance(source, Path) else name, min_side=side))
            names.append(name)
            paths.append(str(source) if isinstance(source, Path) else None)
        except ImageLoadError as error:
            print(f"error: {error}", file=sys.stderr)
            failures += 1
    bar = progress_bar(total=len(photos), desc=f"explain ({asked})", unit="image", disable=args.quiet)
    size = args.images_per_batch
    chunks = [(photos[start : start + size], names[start : start + size], paths[start : start + size])
              for start in range(0, len(photos), size)]
    workers, threads = worker_plan(args.workers, args.worker_threads, len(chunks), model_spec(args).device)
    written = 0
    try:
        for chunk, failed in explained_chunks(chunks, method, classifier, args, out, run_settings, workers, threads):
            failures += failed
            written += len(chunk[0]) - failed
            bar.update(len(chunk[0]))
    except SaveError as error:
        raise SaveError(f"{error}; the {written + skipped} photo(s) saved before it are complete: "
                        "rerun the same command to explain the others") from error  # fmt: skip
    bar.close()
    if written == 0 and failures:
        which = f"the {len(sources)} image(s) not explained yet" if skipped else f"all {len(sources)} image(s)"
        print(f"nothing written: {which} failed", file=sys.stderr)
    elif sources:
        failed_note = f" ({failures} image(s) failed)" if failures else ""
        print(f"wrote {written} explanation(s) to {out}/{failed_note}", file=sys.stderr)
    return 1 if failures else 0


def method_classifier(args: argparse.Namespace, method) -> Classifier:
    """The classifier of ``--model`` as ``method`` needs it: fed as its ``--checkpoint``'s training
    fed it (``--method explainer``), with the layer the method names, gradients where it needs
    them and layer hooks where it sets them."""
    classifier = load_classifier(model_spec(args))
    if args.method.lower() == "explainer":
        classifier = classifier_for_checkpoint(args.checkpoint, classifier)
    layer = getattr(method, "layer", None)  # Grad-CAM's and MP's: named by the user, checked before running
    if layer is not None and classifier.differentiable:
        check_layer_names(classifier.module, layer)
    check_method_fits(classifier, method)
    return classifier


#: the largest ``--seed``: every generator the methods seed takes it
MAX_SEED = 2**32 - 1


def check_arguments(args: argparse.Namespace) -> None:
    """The arguments that need no model or photo, checked before anything is loaded."""
    if args.images_per_batch < 1:
        raise CommandError(f"--images-per-batch must be at least 1, got {args.images_per_batch}")
    worker_plan(args.workers, args.worker_threads, 1)  # a count under 1 is refused here
    if not 0 <= args.seed <= MAX_SEED:
        raise CommandError(f"--seed must be between 0 and {MAX_SEED}, got {args.seed}")
    if args.checkpoint and args.method.lower() != "explainer":
        raise CommandError("--checkpoint is for --method explainer")
    if args.method.lower() == "explainer" and not args.checkpoint:
        raise CommandError("--method explainer needs --checkpoint (train one with maskscope train-explainer)")
    if args.checkpoint and not Path(args.checkpoint).is_file():
        raise CommandError(f"--checkpoint {args.checkpoint}: no such explainer checkpoint")


def output_folder(out: str) -> Path:
    """``--out`` as a path, refused before anything is computed when it names a file, or a folder
    that cannot be written or made (the folder is made when the first explanation is saved, so a
    refused run leaves nothing behind)."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise CommandError(f"--out {out}: is a file, not a folder")
    existing = next(path for path in (folder.absolute(), *folder.absolute().parents) if path.exists())
    if not existing.is_dir():
        raise CommandError(f"--out {out}: cannot make the folder, {existing} is a file")
    try:  # the one sure test (a read-only mount, a permission, root on a system folder): write, and remove
        with tempfile.TemporaryDirectory(prefix=".maskscope-probe-", dir=existing):
            pass
    except OSError as error:
        reason = error.strerror or str(error)
        if existing == folder.absolute():
            raise CommandError(f"--out {out}: the folder is not writable ({reason})") from error
        raise CommandError(f"--out {out}: cannot make the folder in {existing} ({reason})") from error
    return folder


def still_to_explain(sources: list, out: Path, method, asked: str, run_settings: dict,
                     overwrite: bool) -> tuple[list, list[str], int]:  # fmt: skip
    """The sources whose explanation by ``asked`` (the method's name as the user gave it) is not
    complete in ``out`` yet, the file names their maps take in place of names held by other
    files, and how many sources were skipped. A source is complete when every one of its maps
    is (``NAME_top1`` … for ``topk:K``); a complete map made with other settings is an error
    (without ``overwrite``)."""
    maps = [map_names([name], map_rows(run_settings["target"], 1)) for _, name in sources]
    stems = file_stems(out, [name for names in maps for name in names], asked, overwrite, keep_complete=True)
    renamed = [stem for stem, name in zip(stems, (name for names in maps for name in names)) if stem != name]
    if overwrite:
        return sources, renamed, 0
    kept, start = [], 0
    for (source, name), names in zip(sources, maps):
        records = [saved_record(out, stem) for stem in stems[start : start + len(names)]]
        for stem, record in zip(stems[start : start + len(names)], records):
            changed = [] if record is None else settings_differences(
                record, method.get_params(), str(source) if isinstance(source, Path) else None, run_settings)
            if changed:
                raise CommandError(f"{out / stem}.* holds a {asked} explanation made otherwise "
                                   f"({'; '.join(changed[:3])}): pass --overwrite to replace it, "
                                   "or choose another --out")  # fmt: skip
        if any(record is None for record in records):
            kept.append((source, name))
        start += len(names)
    return kept, renamed, len(sources) - len(kept)


Chunk = tuple[list, list, list]  # photos, names, paths


def explained_chunks(chunks: list[Chunk], method, classifier, args, out: Path, run_settings: dict, workers: int,
                     threads: int | None) -> Iterator[tuple[Chunk, int]]:
    """``(chunk, failures)`` for each chunk ``(photos, names, paths)`` once it is explained and saved:
    here, in order, for one worker (at ``threads`` torch threads when given); else as they finish
    in ``workers`` processes of ``threads`` threads, each with a copy of the method and classifier
    and without the method's own progress bar, whose lines this process prints."""
    if workers == 1:
        if threads is not None:
            torch.set_num_threads(threads)
        for chunk in chunks:
            yield chunk, explain_chunk(method, classifier, *chunk, args, out, run_settings)
        return
    if "progress" in type(method).defaults():  # one bar for the run, this process's
        method = copy.copy(method)
        method.progress = False
    with WorkerPool(workers, threads or 1, _explainer, method, args, out, run_settings) as pool:
        for chunk, (failed, printed, warned, error) in pool.results(_explain_in_worker, chunks):
            print(printed, end="")
            print(warned, end="", file=sys.stderr)
            if error is not None:
                raise error
            yield chunk, failed


class _Explainer(NamedTuple):
    """What a worker of ``explain`` holds: :func:`explain_chunk`'s arguments but the photos."""

    method: Any
    classifier: Classifier
    args: argparse.Namespace
    out: Path
    run_settings: dict


def _explainer(method, args: argparse.Namespace, out: Path, run_settings: dict) -> _Explainer:
    """A worker's :class:`_Explainer`, its classifier loaded there (a TorchScript model does not pickle)."""
    return _Explainer(method, method_classifier(args, method), args, out, run_settings)


def _explain_in_worker(explainer: _Explainer, chunk: Chunk) -> tuple[int, str, str, SaveError | None]:
    """:func:`explain_chunk` in a worker: its failures, what it printed on stdout and stderr, and
    the :class:`SaveError` that stopped it, if one did."""
    printed, warned = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(warned):
        try:
            failed = explain_chunk(explainer.method, explainer.classifier, *chunk, explainer.args, explainer.out,
                                   explainer.run_settings)
        except SaveError as error:
            return 0, printed.getvalue(), warned.getvalue(), error
    return failed, printed.getvalue(), warned.getvalue(), None


def explain_chunk(method, classifier, photos, names, paths, args, out: Path, run_settings: dict) -> int:
    """Explain one batch; when the model fails on it, retry image by image. Returns failures."""
    try:
        batch = prepare_images(photos, classifier)
        explanation = method.explain(classifier, batch, target=args.target, seed=args.seed)
    except ModelOutputError as error:
        if len(photos) == 1:
            print(f"error: {names[0]}: {error}", file=sys.stderr)
            return 1
        return sum(
            explain_chunk(method, classifier, [p], [n], [s], args, out, run_settings)
            for p, n, s in zip(photos, names, paths)
        )
    rows = map_rows(args.target, len(photos))  # topk:K gives K maps a photo, NAME_top1 … NAME_topK
    explanation.names, explanation.sources = map_names(names, rows), [paths[row] for row in rows]
    explanation.run = run_settings
    explanation.asked_as = args.method.lower()  # the record keeps "lime-g", not only "lime" (a report groups by it)
    # still_to_explain left out complete photos and refused maps made otherwise, so a complete map
    # here is one of a photo whose other maps were not saved, made with these settings: replaced
    explanation.save(out, images=[photos[row] for row in rows], view=classifier.view, overwrite=True)
    for index in range(len(explanation)):
        print(photo_line(explanation.record(index)))
    warn_unmet_goals(explanation)
    return 0


def photo_line(record: dict) -> str:
    """``NAME: CLASS, p BEFORE → AFTER, S s``: one line per explained photo (``logit`` for ``p``
    when the method explained the logit)."""
    after = "" if record["score_after"] is None else f" → {record['score_after']:.3f}"
    score = "p" if record.get("score", "probability") == "probability" else "logit"
    return (f"{record['name']}: {' + '.join(record['target_names'])}, {score} {record['score_before']:.3f}{after}, "
            f"{record['seconds']:.1f} s")


def warn_unmet_goals(explanation) -> None:
    """One line on stderr per image whose optimisation did not meet its game's goal: its map
    shows where the mask happened to stop, not evidence (the overlay's title says so too)."""
    if explanation.goal_met is None:
        return
    for index in torch.nonzero(~explanation.goal_met)[:, 0].tolist():
        before, after = float(explanation.scores_before[index]), float(explanation.scores_after[index])
        print(
            f"warning: {explanation.names[index]}: {explanation.method} did not meet its goal "
            f"(p {before:.3f} → {after:.3f}, kept area {float(explanation.kept_area[index]):.2f}); "
            "its map is not meaningful",
            file=sys.stderr,
        )


def collect_sources(arguments: list[str]) -> list[tuple[Path | np.ndarray, str]]:
    """(source, name) pairs: files as given, folders searched with their sub-folders (a photo is
    named by its path inside the folder, without the suffix), the bundled photo by default."""
    if not arguments:
        from skimage import data

        return [(np.asarray(getattr(data, DEFAULT_PHOTO)()), DEFAULT_PHOTO)]
    sources: list[tuple[Path | np.ndarray, str]] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            files = list_images(path, recursive=True)
            sources.extend((file, file.relative_to(path).with_suffix("").as_posix()) for file in files)
        else:
            sources.append((path, path.stem))
    return list(zip([source for source, _ in sources], unique_names([name for _, name in sources])))
