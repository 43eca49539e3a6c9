"""Where a run's saliency maps live, and the map source that computes only the missing ones.

The local runner caches maps in ``OUT/maps/<method>/<image>.npy`` (:class:`MapFolder`); a Ray
worker gets the driver's cached maps with its task and hands the new ones back
(:class:`MapsInMemory`), and the driver writes them into the same folder.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch

from maskscope.bench.batch import MapSource
from maskscope.bench.scoring import Item
from maskscope.core.atomic import atomic_path
from maskscope.core.model.classifier import Classifier

MapKey = tuple[str, str]  # (method, image)


class MapFolder:
    """Maps as ``root/<method>/<image>.npy``, each written to a temporary file and renamed."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def path(self, method: str, image: str) -> Path:
        return self.root / method / f"{image}.npy"

    def get(self, method: str, image: str) -> np.ndarray | None:
        path = self.path(method, image)
        return np.load(path) if path.exists() else None

    def put(self, method: str, image: str, array: np.ndarray) -> None:
        """Write the map; a full disk raises ``OSError`` with ``errno.ENOSPC`` (``np.save`` to a
        file would raise one without an errno), so that it stops the run."""
        buffer = io.BytesIO()
        np.save(buffer, array)
        with atomic_path(self.path(method, image)) as temporary:
            temporary.write_bytes(buffer.getvalue())


class MapsInMemory:
    """Maps handed over with a task (``cached``); ``new`` collects the ones computed here."""

    def __init__(self, cached: dict[MapKey, np.ndarray] | None = None) -> None:
        self.cached = dict(cached or {})
        self.new: dict[MapKey, np.ndarray] = {}

    def get(self, method: str, image: str) -> np.ndarray | None:
        return self.cached.get((method, image))

    def put(self, method: str, image: str, array: np.ndarray) -> None:
        self.new[(method, image)] = self.cached[(method, image)] = array


def computed_maps(classifier: Classifier, methods: dict, seed: int, store: MapFolder | MapsInMemory) -> MapSource:
    """A map source: each image's map from ``store`` when there, else all missing ones in one batched
    call of the method (``methods[name].explain``), each then put in ``store``."""

    def source(name: str, items: list[Item], images: torch.Tensor) -> list:
        maps: list = [None] * len(items)
        missing = []
        for index, item in enumerate(items):
            array = store.get(name, item.sample.name)
            if array is None:
                missing.append(index)
            else:
                maps[index] = torch.from_numpy(array)
        if missing:
            explanation = methods[name].explain(
                classifier, images[missing], target=[items[i].target for i in missing], seed=seed
            )
            for position, index in enumerate(missing):
                saliency = explanation.saliency[position].detach().float().cpu()
                store.put(name, items[index].sample.name, saliency.numpy())
                maps[index] = saliency
        return maps

    return source
