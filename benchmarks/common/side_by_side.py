"""Two libraries explaining the same photos with the same model, timed side by side.

Two libraries driving the same model through the same number of forward passes differ in
what they do around those passes and in how they batch and run them. :class:`SideBySide`
runs each on each photo, rotating which goes first so that load on the machine hits all
alike, and times each run in total and inside the model's forward passes
(:class:`ModelClock`); the rest is the library's own overhead, reported beside the totals.
"""

from __future__ import annotations

import copy
import time
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from maskscope import Classifier
from maskscope.metrics import spearman


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

    def timed(self, function: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
        """``function`` (a classifier's ``logits``) with its wall time added to ``seconds``."""

        def run(inputs: torch.Tensor) -> torch.Tensor:
            start = time.perf_counter()
            out = function(inputs)
            self.seconds += time.perf_counter() - start
            return out

        return run

    def lap(self) -> float:
        """Seconds since the last lap (or since the start), and start a new lap."""
        seconds, self.seconds = self.seconds, 0.0
        return seconds


class SideBySide:
    """Times the runs of ``theirs`` and of each of ``ours`` photo by photo, on a classifier
    whose model it clocks.

    ``ours`` names one run or several (:meth:`at_engines`: maskscope on several engines and
    precisions).
    """

    def __init__(self, classifier: Classifier, ours: str | Sequence[str], theirs: str) -> None:
        self.classifier = classifier
        self.clock = ModelClock(classifier.model)
        classifier.model = self.clock
        self.ours = [ours] if isinstance(ours, str) else list(ours)
        self.theirs = theirs
        self.names = [*self.ours, theirs]
        self.seconds: dict[str, list[float]] = {name: [] for name in self.names}
        self.model_seconds: dict[str, list[float]] = {name: [] for name in self.names}
        self.warmed: list[Classifier] = [classifier]

    @classmethod
    def at_engines(
        cls, classifier: Classifier, runs: Sequence[str], theirs: str
    ) -> tuple["SideBySide", dict[str, Classifier]]:
        """Runs ``maskscope-<engine>-<precision>`` for each ``ENGINE:PRECISION`` of ``runs`` against
        ``theirs`` (who runs ``classifier``'s torch module), and the classifier of each run: a copy
        of ``classifier`` on that engine whose forward passes (torch or compiled) the same clock times."""
        pairs = [run.split(":") if ":" in run else ("torch", run) for run in runs]
        timing = cls(classifier, [f"maskscope-{engine}-{precision}" for engine, precision in pairs], theirs)
        classifiers = {}
        for name, (engine, precision) in zip(timing.ours, pairs):
            ours = copy.copy(classifier)
            ours.model = timing.clock.model
            ours.set_engine(engine, precision)
            ours.logits = timing.clock.timed(ours.logits)
            classifiers[name] = ours
        timing.warmed.extend(classifiers.values())
        return timing, classifiers

    def warm_up(self, size: int, batch_sizes: set[int]) -> None:
        """One forward pass of every classifier at each batch size the runs will use, so that no
        run pays for the first pass at a new shape (oneDNN prepares its kernels per shape)."""
        with torch.no_grad():
            for classifier in self.warmed:
                for batch in sorted(b for b in batch_sizes if b > 0):
                    classifier.probabilities(classifier.mean_colour.expand(batch, 3, size, size))
        self.clock.lap()

    def run(self, index: int, runs: dict[str, Callable[[], Any]]) -> dict[str, Any]:
        """Call every run of photo ``index`` (the order rotates from photo to photo) and return their results."""
        shift = index % len(self.names)
        order = self.names[shift:] + self.names[:shift]
        results = {}
        for name in order:
            self.clock.lap()
            start = time.perf_counter()
            results[name] = runs[name]()
            self.seconds[name].append(time.perf_counter() - start)
            self.model_seconds[name].append(self.clock.lap())
        return results

    def photo_line(self, agreement: "Agreement", ours: dict[str, torch.Tensor], theirs: torch.Tensor) -> str:
        """The last photo's seconds of every run, each of ours with its Spearman correlation to
        the peer's map (added to ``agreement``)."""
        shown = ", ".join(f"{name} {self.seconds[name][-1]:.1f} s "
                          f"(Spearman {agreement.add(name, ours[name], theirs):.4f})" for name in self.ours)
        return f"{self.theirs} {self.seconds[self.theirs][-1]:.1f} s, {shown}"

    def engines_record(self, classifiers: dict[str, Classifier]) -> dict:
        """Each run's engine (the peer's: eager torch float32) and the :meth:`summary` of the times."""
        engines = {name: classifier.engine_record() for name, classifier in classifiers.items()}
        return {"engine": {**engines, self.theirs: "torch float32"}, **self.summary()}

    def release(self) -> None:
        """Give the classifier its own model back."""
        self.classifier.model = self.clock.model

    def summary(self) -> dict:
        """Seconds per photo of each, inside the model and outside it, and the ratios theirs/ours."""
        seconds = {name: float(np.mean(values)) for name, values in self.seconds.items()}
        model = {name: float(np.mean(values)) for name, values in self.model_seconds.items()}
        overhead = {name: seconds[name] - model[name] for name in seconds}
        theirs = self.theirs
        record = {f"{name}_seconds_per_image": seconds[name] for name in self.names}
        for ours in self.ours:
            record[f"speed_ratio_{theirs}_over_{ours}"] = seconds[theirs] / seconds[ours]
        record["model_seconds_per_image"] = model
        record["overhead_seconds_per_image"] = overhead
        for ours in self.ours:
            record[f"overhead_ratio_{theirs}_over_{ours}"] = overhead[theirs] / overhead[ours]
        record["per_image_seconds"] = self.seconds
        return record



class Agreement:
    """How well each of our runs' maps agree with the peer's, photo by photo: Spearman
    correlation and largest absolute difference."""

    def __init__(self, names: Sequence[str]) -> None:
        self.correlations: dict[str, list[float]] = {name: [] for name in names}
        self.differences: dict[str, list[float]] = {name: [] for name in names}

    def add(self, name: str, ours: torch.Tensor, theirs: torch.Tensor) -> float:
        """Record one photo's pair of maps; returns their Spearman correlation."""
        self.correlations[name].append(float(spearman(ours[None], theirs[None])[0]))
        self.differences[name].append(float((ours - theirs).abs().max()))
        return self.correlations[name][-1]

    def summary(self) -> tuple[dict, dict]:
        """Per run: Spearman (mean and per photo), and the largest absolute difference."""
        spearmans = {name: {"mean": float(np.mean(values)), "per_image": values} for name, values in self.correlations.items()}
        return spearmans, {name: max(values) for name, values in self.differences.items()}
