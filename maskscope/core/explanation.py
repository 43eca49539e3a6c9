"""The result every method returns, and how it is written to and read from disk.

One convention for all methods: ``saliency`` is B×H×W at the classifier's input size and
higher means more important for the target, so metrics never need to know which method
made a map. On disk an explanation of one image is three files: ``NAME.npy`` (saliency),
``NAME.json`` (the record) and ``NAME.png`` (an overlay on the photo), plus
``NAME_mask.npy`` when the method has a raw mask.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch


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
        kept_area: the share of the image the final mask keeps (B), for mask optimisations.
        goal_met: whether the optimisation met its game's goal (B bool, see
            :func:`maskscope.core.games.goal_met`); ``None`` for methods that play no game.
        names: a name per image (file stems), used when saving.
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
    kept_area: torch.Tensor | None = None
    goal_met: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.saliency.dim() != 3:
            raise ValueError(f"saliency must be B×H×W, got shape {tuple(self.saliency.shape)}")
        if len(self.targets) != len(self.saliency):
            raise ValueError(f"{len(self.targets)} targets for {len(self.saliency)} saliency maps")
        if not self.names:
            self.names = [f"image_{i}" for i in range(len(self.saliency))]

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
            kept_area=take(self.kept_area),
            goal_met=take(self.goal_met),
        )

    def record(self, index: int = 0) -> dict[str, Any]:
        """A JSON-ready summary of image ``index``."""

        def number(value):
            return None if value is None else float(value[index])

        return {
            "name": self.names[index],
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
        }

    def save(self, directory: str | Path, images: list[torch.Tensor] | None = None, view=None) -> list[Path]:
        """Write ``.npy``, ``.json`` and (given the original ``images``) overlay ``.png`` files.

        Args:
            directory: output folder (created).
            images: the original photos (3×H×W each); without them no overlay is drawn.
            view: the ``ClassifierView`` that made the classifier's input from each photo,
                used to place the saliency back on the whole photo.
        Returns: the paths written.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for index, name in enumerate(self.names):
            saliency = self.saliency[index].detach().cpu().float().numpy()
            np.save(directory / f"{name}.npy", saliency)
            written.append(directory / f"{name}.npy")
            if self.mask is not None:
                np.save(directory / f"{name}_mask.npy", self.mask[index].detach().cpu().float().numpy())
            (directory / f"{name}.json").write_text(json.dumps(self.record(index), indent=2))
            written.append(directory / f"{name}.json")
            if images is not None:
                from maskscope.plotting.overlay import save_overlay

                save_overlay(directory / f"{name}.png", images[index], self.saliency[index], self.title(index), view)
                written.append(directory / f"{name}.png")
        return written

    def title(self, index: int = 0) -> str:
        names = self.target_names[index] if self.target_names else [str(c) for c in self.targets[index]]
        label = " + ".join(names)
        score = "" if self.scores_before is None else f" (p = {float(self.scores_before[index]):.2f})"
        unmet = " — goal NOT met, map not meaningful" if self.goal_met is not None and not self.goal_met[index] else ""
        return f"{self.method}: {label}{score}{unmet}"

    @classmethod
    def load(cls, directory: str | Path, names: list[str]) -> "Explanation":
        """Read explanations written by :meth:`save` back as one batch."""
        directory = Path(directory)
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
            names=list(names),
            kept_area=_optional_tensor([r.get("kept_area") for r in records]),
            goal_met=_optional_tensor([r.get("goal_met") for r in records]),
        )


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
    return repr(value)
