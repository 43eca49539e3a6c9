"""The result every method returns, and how it is written to and read from disk.

One convention for all methods: ``saliency`` is B×H×W at the classifier's input size and
higher means more important for the target, so metrics never need to know which method
made a map. On disk an explanation of one image is three files: ``NAME.npy`` (saliency),
``NAME.json`` (the record, with the photo's name and source path) and ``NAME.png`` (an
overlay on the photo), plus ``NAME_mask.npy`` when the method has a raw mask. ``NAME`` is
the photo's name (a name with ``/`` makes sub-folders).

Saving never replaces a file silently: where ``NAME`` already holds another method's
explanation, or a file that is not an explanation (the photo itself, say), the files are
called ``NAME_<method>``; where it holds the same method's explanation, saving refuses unless
``overwrite=True``. :meth:`Explanation.load` finds the records of a folder by itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: most images drawn by an explanation's HTML view in a notebook
HTML_IMAGES = 8


@dataclass
class Explanation:
    """Saliency maps and everything needed to reproduce and judge them.

    Attributes:
        saliency: B×H×W, higher = more important for the target.
        mask: the method's raw mask at its own resolution (B×C×h×w) or ``None``.
        targets: class indices per image (a set is explained jointly).
        target_names: their names.
        scores_before: summed target probability on the original images (B).
        scores_after: the same on the perturbed images ``Φ(x, m)``, where it applies.
        method: the method's short name.
        params: the method's parameters.
        seconds: wall time of the whole call.
        history: per-step objective (B×steps) for optimisation methods.
        names: a name per image (the photos' file stems), used when saving.
        sources: where each image came from (its path), or ``None``; recorded when saving.
        kept_area: the share of the image the final mask keeps (B), for mask optimisations.
        goal_met: whether the optimisation met its game's goal (B bool, see
            :func:`maskscope.core.games.goal_met`); ``None`` for methods that play no game.
        names: a name per image (file stems), used when saving.
        engine: where the classifier's forward passes ran (``Classifier.engine_record``).
    """

    saliency: torch.Tensor
    targets: list[list[int]]
    method: str
    mask: torch.Tensor | None = None
    target_names: list[list[str]] = field(default_factory=list)
    scores_before: torch.Tensor | None = None
    scores_after: torch.Tensor | None = None
    params: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    history: torch.Tensor | None = None
    names: list[str] = field(default_factory=list)
    sources: list[str | None] = field(default_factory=list)
    engine: dict[str, Any] = field(default_factory=dict)
    kept_area: torch.Tensor | None = None
    goal_met: torch.Tensor | None = None

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
        """The explanation of one image, as a batch of one."""
        pick = slice(index, index + 1) if index >= 0 else slice(index, index + 1 or None)

        def take(value):
            return value[pick] if isinstance(value, torch.Tensor) else value

        return Explanation(
            saliency=self.saliency[pick],
            targets=self.targets[pick],
            method=self.method,
            mask=take(self.mask),
            target_names=self.target_names[pick],
            scores_before=take(self.scores_before),
            scores_after=take(self.scores_after),
            params=self.params,
            seconds=self.seconds / max(len(self), 1),
            history=take(self.history),
            names=self.names[pick],
            sources=self.sources[pick],
            engine=self.engine,
            kept_area=take(self.kept_area),
            goal_met=take(self.goal_met),
        )

    def record(self, index: int = 0) -> dict[str, Any]:
        """A JSON-ready summary of image ``index``."""

        def number(value):
            return None if value is None else float(value[index])

        return {
            "name": self.names[index],
            "source": self.sources[index],
            "method": self.method,
            "targets": self.targets[index],
            "target_names": self.target_names[index] if self.target_names else [],
            "score_before": number(self.scores_before),
            "score_after": number(self.scores_after),
            "kept_area": number(self.kept_area),
            "goal_met": None if self.goal_met is None else bool(self.goal_met[index]),
            "saliency_shape": list(self.saliency.shape[1:]),
            "mask_shape": None if self.mask is None else list(self.mask.shape[1:]),
            "seconds": self.seconds / max(len(self), 1),
            "params": _jsonable(self.params),
            "engine": _jsonable(self.engine),
        }

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
        Returns: the paths written.
        Raises:
            FileExistsError: a file would be replaced and ``overwrite`` is false (nothing is written).
        """
        directory = Path(directory)
        stems = file_stems(directory, self.names, self.method, overwrite)
        written = []
        for index, name in enumerate(stems):
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            saliency = self.saliency[index].detach().cpu().float().numpy()
            np.save(directory / f"{name}.npy", saliency)
            written.append(directory / f"{name}.npy")
            if self.mask is not None:
                np.save(directory / f"{name}_mask.npy", self.mask[index].detach().cpu().float().numpy())
            (directory / f"{name}.json").write_text(json.dumps(self.record(index), indent=2))
            written.append(directory / f"{name}.json")
            if images is not None:
                from maskscope.plotting.overlay import save_overlay
                from maskscope.plotting.scaling import is_pixel_level

                save_overlay(directory / f"{name}.png", images[index], self.saliency[index], self.title(index), view,
                             pixel_level=is_pixel_level(self.method))
                written.append(directory / f"{name}.png")
        return written

    def title(self, index: int = 0) -> str:
        names = self.target_names[index] if self.target_names else [str(c) for c in self.targets[index]]
        label = " + ".join(names)
        score = "" if self.scores_before is None else f" (p = {float(self.scores_before[index]):.2f})"
        unmet = " — goal NOT met, map not meaningful" if self.goal_met is not None and not self.goal_met[index] else ""
        return f"{self.method}: {label}{score}{unmet}"

    def plot(self, index: int = 0, image: torch.Tensor | None = None, view=None, ax=None):
        """A matplotlib ``Figure`` of image ``index``'s map, over ``image`` when given.

        ``image`` is the photo (3×H×W: the classifier's view, or the whole photo with ``view``).
        See :func:`maskscope.plotting.figures.plot_explanation`.
        """
        from maskscope.plotting.figures import plot_explanation

        return plot_explanation(self, index, image, view, ax)

    def _repr_html_(self) -> str:
        """Jupyter's view: the maps (at most ``HTML_IMAGES``) and a table of class, scores and time."""
        import base64
        import html
        import io

        from maskscope.plotting.figures import plot_explanations

        shown = min(len(self), HTML_IMAGES)
        buffer = io.BytesIO()
        plot_explanations([self._first(shown)], size=2.4).savefig(buffer, format="png", dpi=80)
        picture = base64.b64encode(buffer.getvalue()).decode()
        rows = "".join(
            f"<tr><td>{html.escape(r['name'])}</td><td>{html.escape(' + '.join(r['target_names']))}</td>"
            f"<td>{_number(r['score_before'])}</td><td>{_number(r['score_after'])}</td><td>{r['seconds']:.2f}</td></tr>"
            for r in (self.record(i) for i in range(len(self)))
        )
        return (f"<div><b>{html.escape(self.method)}</b>: {len(self)} image(s)"
                f"{'' if shown == len(self) else f', the first {shown} shown'}<br>"
                f'<img src="data:image/png;base64,{picture}" alt="saliency maps">'
                "<table><tr><th>image</th><th>class</th><th>p before</th><th>p after</th><th>s</th></tr>"
                f"{rows}</table></div>")

    def _first(self, count: int) -> "Explanation":
        return self if count == len(self) else Explanation(
            saliency=self.saliency[:count], targets=self.targets[:count], method=self.method,
            target_names=self.target_names[:count], names=self.names[:count],
            scores_before=None if self.scores_before is None else self.scores_before[:count],
            scores_after=None if self.scores_after is None else self.scores_after[:count])

    @classmethod
    def load(cls, directory: str | Path, names: list[str] | None = None, method: str | None = None) -> "Explanation":
        """Read explanations written by :meth:`save` back as one batch.

        Args:
            directory: the folder :meth:`save` wrote to.
            names: the file names (without suffix) to read; ``None`` reads every record in
                the folder and its sub-folders, sorted by file name.
            method: with ``names=None``, only this method's records (needed when the folder
                holds several methods' explanations).
        """
        directory = Path(directory)
        if names is None:
            names = saved_stems(directory, method)
        records, maps, masks = [], [], []
        for name in names:
            path = directory / f"{name}.json"
            if not path.is_file():
                raise FileNotFoundError(f"{path}: no explanation record")
            records.append(json.loads(path.read_text()))
            maps.append(torch.from_numpy(np.load(directory / f"{name}.npy")))
            mask_path = directory / f"{name}_mask.npy"
            masks.append(torch.from_numpy(np.load(mask_path)) if mask_path.is_file() else None)
        has_masks = all(m is not None for m in masks)
        return cls(
            saliency=torch.stack(maps),
            targets=[r["targets"] for r in records],
            method=records[0]["method"],
            mask=torch.stack(masks) if has_masks else None,
            target_names=[r["target_names"] for r in records],
            scores_before=_optional_tensor([r["score_before"] for r in records]),
            scores_after=_optional_tensor([r["score_after"] for r in records]),
            params=records[0]["params"],
            seconds=sum(r["seconds"] for r in records),
            names=[r["name"] for r in records],
            sources=[r.get("source") for r in records],
            engine=records[0].get("engine", {}),
            kept_area=_optional_tensor([r.get("kept_area") for r in records]),
            goal_met=_optional_tensor([r.get("goal_met") for r in records]),
        )


def file_stems(directory: str | Path, names: list[str], method: str, overwrite: bool = False) -> list[str]:
    """The file names (without suffix) under which ``method``'s explanations of ``names`` are saved.

    ``NAME`` when it is free; ``NAME_<method>`` when ``NAME`` holds another method's explanation
    or files that are not an explanation. Raises FileExistsError, naming the file and
    ``--overwrite``, when the chosen name holds this method's explanation and not ``overwrite``,
    or holds files that are not an explanation.
    """
    directory = Path(directory)
    stems = []
    for name in names:
        stem = name
        held = _saved_method(directory, stem)
        if held not in (None, method):
            stem = f"{name}_{method}"
            held = _saved_method(directory, stem)
        if held == "" or (held is not None and not overwrite):
            what = f"a {held} explanation" if held else "files that are not an explanation"
            raise FileExistsError(
                f"{directory / stem}.* already holds {what}; pass overwrite=True (--overwrite) to replace it"
            )
        stems.append(stem)
    return stems


def saved_stems(directory: Path, method: str | None = None) -> list[str]:
    """File names (without suffix) of the explanation records in ``directory`` and its sub-folders."""
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such folder")
    found: dict[str, list[str]] = {}
    for path in sorted(directory.rglob("*.json")):
        held = _record_method(path)
        if held and (method is None or held == method):
            found.setdefault(held, []).append(path.relative_to(directory).with_suffix("").as_posix())
    if not found:
        which = f" by {method}" if method else ""
        raise FileNotFoundError(f"{directory}: no explanation records{which}")
    if len(found) > 1:
        raise ValueError(f"{directory} holds explanations by {', '.join(sorted(found))}; pass method= to pick one")
    return next(iter(found.values()))


def _saved_method(directory: Path, stem: str) -> str | None:
    """The method whose explanation is saved as ``stem``, ``""`` for other files of that name, ``None`` if free."""
    record = directory / f"{stem}.json"
    if record.is_file():
        return _record_method(record)
    others = (directory / f"{stem}{suffix}" for suffix in (".npy", ".png", "_mask.npy"))
    return "" if any(path.exists() for path in others) else None


def _record_method(path: Path) -> str:
    """The ``method`` of an explanation record, ``""`` when the JSON file is something else."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return ""
    is_record = isinstance(record, dict) and {"name", "method", "saliency_shape"} <= set(record)
    return str(record["method"]) if is_record else ""
def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _optional_tensor(values: list) -> torch.Tensor | None:
    return None if any(v is None for v in values) else torch.tensor(values)


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
