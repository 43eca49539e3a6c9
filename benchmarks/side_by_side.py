"""Two libraries explaining the same photos with the same model, timed side by side.

Two libraries driving the same model through the same number of forward passes differ only
in what they do around those passes. :class:`SideBySide` runs both on each photo, alternating
which goes first so that load on the machine hits both alike, and times each run in total and
inside the model's forward passes (:class:`ModelClock`); the rest is the library's own
overhead, reported beside the totals.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from maskscope import Classifier


class ModelClock(nn.Module):
    """Wraps a model; adds the wall time of every forward pass to ``seconds``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.seconds = 0.0

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        out = self.model(inputs)
        self.seconds += time.perf_counter() - start
        return out

    def lap(self) -> float:
        """Seconds since the last lap (or since the start), and start a new lap."""
        seconds, self.seconds = self.seconds, 0.0
        return seconds


class SideBySide:
    """Times the runs of ``ours`` and ``theirs`` photo by photo on a classifier whose model it clocks."""

    def __init__(self, classifier: Classifier, ours: str, theirs: str) -> None:
        self.classifier = classifier
        self.clock = ModelClock(classifier.model)
        classifier.model = self.clock
        self.ours, self.theirs = ours, theirs
        self.seconds: dict[str, list[float]] = {ours: [], theirs: []}
        self.model_seconds: dict[str, list[float]] = {ours: [], theirs: []}

    def warm_up(self, size: int, batch_sizes: set[int]) -> None:
        """One forward pass at each batch size the runs will use, so that neither run pays for
        the first pass at a new shape (oneDNN prepares its kernels per shape)."""
        with torch.no_grad():
            for batch in sorted(b for b in batch_sizes if b > 0):
                self.classifier.scores(self.classifier.mean_colour.expand(batch, 3, size, size))
        self.clock.lap()

    def run(self, index: int, runs: dict[str, Callable[[], Any]]) -> dict[str, Any]:
        """Call both runs of photo ``index`` (ours first on even photos) and return their results."""
        order = [self.ours, self.theirs] if index % 2 == 0 else [self.theirs, self.ours]
        results = {}
        for name in order:
            self.clock.lap()
            start = time.perf_counter()
            results[name] = runs[name]()
            self.seconds[name].append(time.perf_counter() - start)
            self.model_seconds[name].append(self.clock.lap())
        return results

    def release(self) -> None:
        """Give the classifier its own model back."""
        self.classifier.model = self.clock.model

    def summary(self) -> dict:
        """Seconds per photo of each, inside the model and outside it, and the ratios theirs/ours."""
        seconds = {name: float(np.mean(values)) for name, values in self.seconds.items()}
        model = {name: float(np.mean(values)) for name, values in self.model_seconds.items()}
        overhead = {name: seconds[name] - model[name] for name in seconds}
        ours, theirs = self.ours, self.theirs
        return {
            f"{ours}_seconds_per_image": seconds[ours],
            f"{theirs}_seconds_per_image": seconds[theirs],
            f"speed_ratio_{theirs}_over_{ours}": seconds[theirs] / seconds[ours],
            "model_seconds_per_image": model,
            "overhead_seconds_per_image": overhead,
            f"overhead_ratio_{theirs}_over_{ours}": overhead[theirs] / overhead[ours],
            "per_image_seconds": self.seconds,
        }
