"""The result every method returns, and how it is written to and read from disk.

One convention for all methods: ``saliency`` is B×H×W at the classifier's input size and
higher means more important for the target, so metrics never need to know which method
made a map. What a method returns beyond the map has its own declared field (the raw mask,
per-window maps, per-area masks, superpixel weights, signed attributions, class masks, the
λ and goal flags, the completeness gap), the same name whichever method fills it; a field a
method does not fill is ``None``. On disk an explanation of one image is three files:
``NAME.npy`` (saliency), ``NAME.json`` (the record: the photo's name and source path and the
per-image numbers) and ``NAME.png`` (an overlay on the photo), plus ``NAME_<field>.npy`` for
each array field the method filled. ``NAME`` is the photo's name (a name with ``/`` makes
sub-folders).

Saving never replaces a file silently: where ``NAME`` already holds another method's
explanation, or a file that is not an explanation (the photo itself, say), the files are
called ``NAME_<method>``; where it holds the same method's complete explanation, saving
refuses unless ``overwrite=True``. :meth:`Explanation.load` finds the records of a folder by
itself.

Saving is interruptible: each file is written atomically (:func:`~maskscope.core.atomic.atomic_path`),
a *pending* record (``{"name", "method", "pending": true}``) is written before the other files
and the full record after them, so a save cut short (a killed process, a full disk) leaves
either nothing or a pending record, never a record whose files are missing or half written.
:func:`saved_record` tells a complete explanation from an interrupted one; the interrupted one
is replaced by the next save without ``overwrite``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from maskscope.core.atomic import atomic_path, remove_leftovers
from maskscope.errors import MaskscopeError, MissingFileError

#: most images drawn by an explanation's HTML view in a notebook
HTML_IMAGES = 8

#: per-image array fields, saved as ``NAME_<field>.npy``
ARRAY_FIELDS = (
    "mask", "history", "attributions", "window_maps", "window_drops", "area_masks", "superpixels",
    "superpixel_weights", "class_masks", "coarse_map",
)
#: per-image numbers, saved in the record
NUMBER_FIELDS = (
    "scores_before", "scores_after", "kept_area", "goal_met", "completeness_gap", "chosen_l1_weight", "decision_changed",
    "samples_used",
)
#: the number fields that are flags
FLAG_FIELDS = ("goal_met", "decision_changed")
#: a per-image record names the batch's scores in the singular
RECORD_KEYS = {"scores_before": "score_before", "scores_after": "score_after"}


#: parameters that change how a method reports progress, not what it computes
UNRECORDED_PARAMS = ("progress",)


class ExistingFilesError(MaskscopeError, FileExistsError):
    """Saving would replace files it must not (another explanation, or files that are not one)."""


class SaveError(MaskscopeError):
    """Writing an explanation failed (a full disk, a read-only folder); the files saved before
    it are complete, the one being written is left pending. A failed run: exit status 1."""

    exit_status = 1


@dataclass
class Explanation:
    """Saliency maps and everything needed to reproduce and judge them.

    Attributes:
        saliency: B×H×W, higher = more important for the target.
        targets: class indices per image (a set is explained jointly).
        method: the method's short name.
        target_names: their names.
        score: what ``scores_before``/``scores_after`` (and a read-out method's map) measure:
            ``"probability"`` or ``"logit"``, the method's ``score``.
        scores_before: summed target score on the original images (B).
        scores_after: the same on the perturbed images ``Φ(x, m)``, where it applies.
        params: the method's parameters.
        seconds: wall time of the whole call.
        names: a name per image (the photos' file stems), used when saving.
        sources: where each image came from (its path), or ``None``; recorded when saving.
        engine: where the classifier's forward passes ran (``Classifier.engine_record``).
        run: how the run that made it was asked for, beyond the method's parameters (the
            command line's ``target`` and ``seed``); recorded when not empty.
        asked_as: the name the method was asked for by, when that is an alias (``lime-g``,
            ``sp``, ``sp-g``: see :data:`maskscope.methods.registry.ALIASES`) or a name in
            other case; recorded as ``asked_as`` (the method's own name when empty), so that
            a report tells ``lime`` from ``lime-g``.
        pixel_level: whether the map varies pixel by pixel (gradients, FGVis), set by the
            method and recorded: figures and the report clip such a map at a percentile.
        images: the images explained, B×3×H×W in [0, 1] as the classifier saw them (on the
            CPU), kept so that a notebook draws each map over its photo; not saved.

    Method-specific results, ``None`` where the method has none:
        mask: the optimised mask at its own resolution, B×C×h×w, 1 = keep (MP, MP-G, I-GOS,
            iGOS++ with its two masks as channels, FGVis with one per colour channel).
        history: the objective per step, B×steps (optimisation methods).
        attributions: signed per-channel attributions B×3×H×W (gradient: ``∂S/∂x``;
            Integrated Gradients: ``IG``).
        window_maps: occlusion's coverage-normalised map per window size, B×P×H×W.
        window_drops: sliding patch's score drop at each patch position, B×rows×cols.
        area_masks: EP's mask parameter per requested area, B×A×h×w (areas in order).
        superpixels: LIME's superpixel labels B×H×W.
        superpixel_weights: LIME's weight per superpixel, B×S (NaN past an image's own count).
        class_masks: the explainer's mask of every class, B×C×h×w.
        coarse_map: Grad-CAM's map on the layer's grid before upsampling, B×1×h×w (with
            several layers, each layer's map at the image size, B×L×H×W).
        kept_area: the share of the image the final mask keeps (B), for mask optimisations.
        goal_met: whether the optimisation met its game's goal (B bool, see
            :func:`maskscope.core.optimisation.games.goal_met`).
        completeness_gap: Integrated Gradients' ``Σ IG − (S(x) − S(x'))`` (B).
        chosen_l1_weight: FGVis' λ each image ended with (B).
        decision_changed: FGVis: whether the search's top-1 rule was met (B bool).
        samples_used: the samples a sampling method scored per image (B): RISE's masks, LIME's
            subsets, the sliding patch's positions; fewer than asked where its convergence stop ended it.
    """

    saliency: torch.Tensor
    targets: list[list[int]]
    method: str
    target_names: list[list[str]] = field(default_factory=list)
    score: str = "probability"
    scores_before: torch.Tensor | None = None
    scores_after: torch.Tensor | None = None
    params: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    names: list[str] = field(default_factory=list)
    sources: list[str | None] = field(default_factory=list)
    engine: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)
    asked_as: str = ""
    pixel_level: bool = False
    mask: torch.Tensor | None = None
    history: torch.Tensor | None = None
    attributions: torch.Tensor | None = None
    window_maps: torch.Tensor | None = None
    window_drops: torch.Tensor | None = None
    area_masks: torch.Tensor | None = None
    superpixels: torch.Tensor | None = None
    superpixel_weights: torch.Tensor | None = None
    class_masks: torch.Tensor | None = None
    coarse_map: torch.Tensor | None = None
    kept_area: torch.Tensor | None = None
    goal_met: torch.Tensor | None = None
    completeness_gap: torch.Tensor | None = None
    chosen_l1_weight: torch.Tensor | None = None
    decision_changed: torch.Tensor | None = None
    samples_used: torch.Tensor | None = None
    images: torch.Tensor | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.saliency.dim() != 3:
            raise ValueError(f"saliency must be B×H×W, got shape {tuple(self.saliency.shape)}")
        if len(self.targets) != len(self.saliency):
            raise ValueError(f"{len(self.targets)} targets for {len(self.saliency)} saliency maps")
        if not self.names:
            self.names = [f"image_{i}" for i in range(len(self.saliency))]
        if not self.sources:
            self.sources = [None] * len(self.saliency)

    def __len__(self) -> int:
        return self.saliency.shape[0]

    def __getitem__(self, index: int) -> "Explanation":
        """The explanation of one image, as a batch of one, every per-image field with it."""
        pick = slice(index, index + 1) if index >= 0 else slice(index, index + 1 or None)
        return replace(self._sliced(pick), seconds=self.seconds / max(len(self), 1))

    def _sliced(self, rows: slice) -> "Explanation":
        """The explanation of the images ``rows``, every per-image field sliced alike."""
        per_image = {
            name: value[rows]
            for name in ("saliency", "targets", "target_names", "names", "sources", "images", *ARRAY_FIELDS,
                         *NUMBER_FIELDS)
            if (value := getattr(self, name)) is not None and len(value)
        }
        return replace(self, **per_image)

    @property
    def asked_method(self) -> str:
        """The name the method was asked for by (``lime-g``), else the method's own (``lime``):
        what titles show, and what tells two runs' files apart in one folder."""
        return self.asked_as or self.method

    def record(self, index: int = 0) -> dict[str, Any]:
        """A JSON-ready summary of image ``index``."""

        def number(value):
            return None if value is None else float(value[index])

        record: dict[str, Any] = {
            "name": self.names[index],
            "source": self.sources[index],
            "method": self.method,
            "asked_as": self.asked_method,
            "targets": self.targets[index],
            "target_names": self.target_names[index] if self.target_names else [],
            "score": self.score,
            "pixel_level": self.pixel_level,
        }
        for name in NUMBER_FIELDS:
            value = getattr(self, name)
            kind = bool if name in FLAG_FIELDS else float
            record[RECORD_KEYS.get(name, name)] = None if value is None else kind(value[index])
        record.update(
            saliency_shape=list(self.saliency.shape[1:]),
            arrays={name: list(value.shape[1:]) for name in ARRAY_FIELDS if (value := getattr(self, name)) is not None},
            seconds=self.seconds / max(len(self), 1),
            params=_jsonable(self.params),
            engine=_jsonable(self.engine),
        )
        if self.run:
            record["run"] = _jsonable(self.run)
        return record

    def save(
        self, directory: str | Path, images: list[torch.Tensor] | None = None, view=None, overwrite: bool = False
    ) -> list[Path]:
        """Write ``.npy``, ``.json`` and (given the original ``images``) overlay ``.png`` files.

        Args:
            directory: output folder (created).
            images: the original photos (3×H×W each); without them no overlay is drawn.
            view: the ``ClassifierView`` that made the classifier's input from each photo,
                used to place the saliency back on the whole photo.
            overwrite: replace the files of an earlier explanation by the same method
                instead of refusing (other files are never replaced).
        Returns: the paths written (``.npy``, ``.png`` and ``.json`` of each image).
        Raises:
            FileExistsError: a file would be replaced and ``overwrite`` is false (nothing is written).
            SaveError: a file could not be written (a full disk, a read-only folder); the images
                saved before it are complete.
        """
        directory = Path(directory)
        stems = file_stems(directory, self.names, self.asked_method, overwrite)
        written = []
        for index, name in enumerate(stems):
            written += self._save_one(directory, name, index, images, view)
        return written

    def _save_one(self, directory: Path, name: str, index: int, images, view) -> list[Path]:
        """Image ``index``'s files under ``name``: the pending record, the arrays, the overlay, the record."""
        from maskscope.plotting.overlay import save_overlay

        record = {**self.record(index), "overlay": images is not None}
        pending = {"name": record["name"], "method": self.method, "asked_as": self.asked_method, "pending": True}
        arrays = {"": self.saliency[index].detach().cpu().float().numpy()}
        arrays.update({f"_{f}": value[index].detach().cpu().numpy() for f in ARRAY_FIELDS
                       if (value := getattr(self, f)) is not None})  # fmt: skip
        path = directory / f"{name}.json"
        for file in (f"{name}.json", f"{name}.png", *(f"{name}{suffix}.npy" for suffix in arrays)):
            remove_leftovers(directory / file)  # a killed run's half-written files of this photo
        try:
            _write_text(path, json.dumps(pending))
            for suffix, array in arrays.items():
                path = directory / f"{name}{suffix}.npy"
                with atomic_path(path) as temporary:
                    np.save(temporary, array)
            if images is not None:
                path = directory / f"{name}.png"
                with atomic_path(path) as temporary:
                    save_overlay(temporary, images[index], self.saliency[index], self.title(index), view,
                                 pixel_level=self.pixel_level)  # fmt: skip
            path = directory / f"{name}.json"
            _write_text(path, json.dumps(record, indent=2))
        except OSError as error:
            reason = error.strerror or str(error)
            raise SaveError(f"cannot write {path}: {reason}") from error
        files = [directory / f"{name}.npy", directory / f"{name}.png", path]
        return files if images is not None else [files[0], files[2]]

    def title(self, index: int = 0) -> str:
        names = self.target_names[index] if self.target_names else [str(c) for c in self.targets[index]]
        label = " + ".join(names)
        symbol = "p" if self.score == "probability" else "logit"
        score = "" if self.scores_before is None else f" ({symbol} = {float(self.scores_before[index]):.2f})"
        unmet = " — goal NOT met, map not meaningful" if self.goal_met is not None and not self.goal_met[index] else ""
        return f"{self.asked_method}: {label}{score}{unmet}"

    def plot(self, index: int = 0, image: torch.Tensor | None = None, view=None, ax=None):
        """A matplotlib ``Figure`` of image ``index``'s map over its photo; a notebook shows it inline.

        ``image`` is the photo (3×H×W: the classifier's view, or the whole photo with ``view``);
        by default the image the method explained (:attr:`images`), if the explanation holds it.
        See :func:`maskscope.plotting.figures.plot_explanation`.
        """
        from maskscope.plotting.figures import plot_explanation

        return plot_explanation(self, index, image, view, ax)

    def _repr_html_(self) -> str:
        """Jupyter's view: the maps over their photos (at most ``HTML_IMAGES``; the photos when
        the explanation holds them, see :attr:`images`) and a table of class, scores and time."""
        import base64
        import html
        import io

        from maskscope.plotting.figures import plot_explanations

        shown = min(len(self), HTML_IMAGES)
        buffer = io.BytesIO()
        first = self._first(shown)
        plot_explanations([first], first.images, size=2.6).savefig(buffer, format="png", dpi=80)
        picture = base64.b64encode(buffer.getvalue()).decode()
        rows = "".join(
            f"<tr><td>{html.escape(r['name'])}</td><td>{html.escape(' + '.join(r['target_names']))}</td>"
            f"<td>{_number(r['score_before'])}</td><td>{_number(r['score_after'])}</td><td>{r['seconds']:.2f}</td></tr>"
            for r in (self.record(i) for i in range(len(self)))
        )
        return (f"<div><b>{html.escape(self.asked_method)}</b>: {len(self)} image(s)"
                f"{'' if shown == len(self) else f', the first {shown} shown'}<br>"
                f'<img src="data:image/png;base64,{picture}" alt="saliency maps">'
                "<table><tr><th>image</th><th>class</th><th>p before</th><th>p after</th><th>s</th></tr>"
                f"{rows}</table></div>")

    def _first(self, count: int) -> "Explanation":
        """The first ``count`` images' explanation."""
        return self if count == len(self) else self._sliced(slice(0, count))

    @classmethod
    def load(cls, directory: str | Path, names: list[str] | None = None, method: str | None = None) -> "Explanation":
        """Read explanations written by :meth:`save` back as one batch.

        Args:
            directory: the folder :meth:`save` wrote to, or one photo's record (``NAME.json``)
                or map (``NAME.npy``) in it, which reads that photo's explanation alone.
            names: the file names (without suffix) to read; ``None`` reads every record in
                the folder and its sub-folders, sorted by file name.
            method: with ``names=None``, only this method's records, by the name it was asked
                for by (``lime-g``) or its own (``lime``); needed when the folder holds several
                methods' explanations.
        """
        directory = Path(directory)
        if directory.suffix in (".json", ".npy") and not directory.is_dir():
            if not directory.is_file():
                raise MissingFileError(f"{directory}: no such file")
            directory, names = directory.parent, [directory.stem]
        if names is None:
            names = saved_stems(directory, method)
        records, maps = [], []
        for name in names:
            path = directory / f"{name}.json"
            if not path.is_file():
                raise MissingFileError(f"{path}: no explanation record")
            records.append(json.loads(path.read_text()))
            maps.append(torch.from_numpy(np.load(directory / f"{name}.npy")))
        arrays = {}
        for field_name in ARRAY_FIELDS:
            paths = [directory / f"{name}_{field_name}.npy" for name in names]
            if all(path.is_file() for path in paths):
                arrays[field_name] = _stack_padded([torch.from_numpy(np.load(path)) for path in paths])
        numbers = {
            field_name: _optional_tensor([r.get(RECORD_KEYS.get(field_name, field_name)) for r in records])
            for field_name in NUMBER_FIELDS
        }
        return cls(
            saliency=torch.stack(maps),
            targets=[r["targets"] for r in records],
            method=records[0]["method"],
            target_names=[r["target_names"] for r in records],
            score=records[0].get("score", "probability"),
            params=records[0]["params"],
            seconds=sum(r["seconds"] for r in records),
            names=[r["name"] for r in records],
            sources=[r.get("source") for r in records],
            engine=records[0].get("engine", {}),
            run=records[0].get("run", {}),
            asked_as=records[0].get("asked_as", ""),
            pixel_level=bool(records[0].get("pixel_level", False)),
            **arrays,
            **numbers,
        )


def file_stems(
    directory: str | Path, names: list[str], method: str, overwrite: bool = False, keep_complete: bool = False
) -> list[str]:
    """The file names (without suffix) under which ``method``'s explanations of ``names`` are saved.

    ``method`` is the name the method was asked for by (:attr:`Explanation.asked_method`), so
    that ``lime`` and ``lime-g`` keep their own files in one folder. ``NAME`` when it is free or
    holds an interrupted save of ``method`` (a pending record);
    ``NAME_<method>`` when ``NAME`` holds another method's explanation or files that are not an
    explanation. Raises FileExistsError, naming the file and ``--overwrite``, when the chosen
    name holds this method's complete explanation and neither ``overwrite`` nor
    ``keep_complete`` (the caller skips those, see :func:`saved_record`), or holds files that
    are not an explanation.
    """
    directory = Path(directory)
    stems = []
    for name in names:
        stem = name
        held = _saved_method(directory, stem)
        if held not in (None, method):
            stem = f"{name}_{method}"
            held = _saved_method(directory, stem)
        complete = held == method and saved_record(directory, stem) is not None
        if held == "" or (complete and not (overwrite or keep_complete)):
            what = f"a {held} explanation" if held else "files that are not an explanation"
            raise ExistingFilesError(
                f"{directory / stem}.* already holds {what}; pass overwrite=True (--overwrite) to replace it"
            )
        stems.append(stem)
    return stems


def saved_stems(directory: Path, method: str | None = None) -> list[str]:
    """File names (without suffix) of the explanation records in ``directory`` and its sub-folders."""
    if not directory.is_dir():
        raise MissingFileError(f"{directory}: no such folder")
    found: dict[str, list[str]] = {}
    for path in sorted(directory.rglob("*.json")):
        held = _record_methods(path)
        if held and (method is None or method in held):
            found.setdefault(held[0], []).append(path.relative_to(directory).with_suffix("").as_posix())
    if not found:
        which = f" by {method}" if method else ""
        raise MissingFileError(f"{directory}: no explanation records{which}")
    if len(found) > 1:
        raise ValueError(f"{directory} holds explanations by {', '.join(sorted(found))}; pass method= to pick one")
    return next(iter(found.values()))


def saved_record(directory: str | Path, stem: str) -> dict[str, Any] | None:
    """The record of the complete explanation saved as ``stem`` in ``directory``, else ``None``
    (no record, a pending one, or one whose files are not all there)."""
    directory = Path(directory)
    record = _read_record(directory / f"{stem}.json")
    if record is None or record.get("pending"):
        return None
    files = [f"{stem}.npy", *(f"{stem}_{name}.npy" for name in record.get("arrays", {}))]
    if record.get("overlay", True):
        files.append(f"{stem}.png")
    return record if all((directory / file).is_file() for file in files) else None


def settings_differences(record: dict[str, Any], params: dict[str, Any], source: str | None,
                         run: dict[str, Any]) -> list[str]:  # fmt: skip
    """What differs between a saved ``record`` and a run with the method's ``params``, the photo's
    ``source`` and the ``run`` settings: ``["steps: 3 → 5", …]``, empty when it is the same
    explanation (parameters in :data:`UNRECORDED_PARAMS` do not count)."""
    wanted = {key: value for key, value in _jsonable(params).items() if key not in UNRECORDED_PARAMS}
    saved = {key: value for key, value in record.get("params", {}).items() if key not in UNRECORDED_PARAMS}
    pairs = {**{f"params.{k}": (saved.get(k), wanted.get(k)) for k in {*saved, *wanted}},
             "source": (record.get("source"), source),
             **{k: (record.get("run", {}).get(k), v) for k, v in _jsonable(run).items()}}  # fmt: skip
    return [f"{key.removeprefix('params.')}: {old!r} → {new!r}" for key, (old, new) in sorted(pairs.items()) if old != new]


def _write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(text)


def _saved_method(directory: Path, stem: str) -> str | None:
    """The method whose explanation (complete or pending) is saved as ``stem``, by the name it was
    asked for by; ``""`` for other files of that name, ``None`` if free."""
    path = directory / f"{stem}.json"
    if path.is_file():
        record = _read_record(path)
        return "" if record is None else str(record.get("asked_as") or record["method"])
    suffixes = (".npy", ".png", *(f"_{name}.npy" for name in ARRAY_FIELDS))
    others = (directory / f"{stem}{suffix}" for suffix in suffixes)
    return "" if any(path.exists() for path in others) else None


def _record_methods(path: Path) -> tuple[str, ...]:
    """The names a complete explanation record answers to, the name its method was asked for by
    first (``("lime-g", "lime")``); empty when the JSON file is something else or a pending record."""
    record = _read_record(path)
    if record is None or record.get("pending"):
        return ()
    return tuple(dict.fromkeys((str(record.get("asked_as") or record["method"]), str(record["method"]))))


def _read_record(path: Path) -> dict[str, Any] | None:
    """The explanation record (complete or pending) in the JSON file ``path``, else ``None``."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not {"name", "method"} <= set(record):
        return None
    return record if "saliency_shape" in record or record.get("pending") is True else None
def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _optional_tensor(values: list) -> torch.Tensor | None:
    return None if any(v is None for v in values) else torch.tensor(values)


def _stack_padded(arrays: list[torch.Tensor]) -> torch.Tensor:
    """Stack per-image arrays, padding a last dimension that differs (LIME's superpixel
    weights) with NaN, or −1 for integers."""
    longest = max(array.shape[-1] for array in arrays)
    if all(array.shape[-1] == longest for array in arrays):
        return torch.stack(arrays)
    fill = float("nan") if arrays[0].is_floating_point() else -1
    return torch.stack([torch.nn.functional.pad(a, (0, longest - a.shape[-1]), value=fill) for a in arrays])


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, torch.nn.Module):
        return f"<{type(value).__name__} module>"
    return repr(value)
