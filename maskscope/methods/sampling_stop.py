"""A convergence stop for the sampling methods (RISE, LIME, sliding patch).

A sampling method estimates its map from N samples (RISE's masks, LIME's superpixel subsets,
the sliding patch's positions). With a stop, the map is re-estimated from the samples scored
so far every ``interval`` samples, and an image stops drawing samples once ``checks``
successive estimates in a row each agree with the one before by Spearman's rank correlation

    ρ(E_k, E_{k−1}) ≥ tolerance,     E_k = the estimate after k·interval samples,

or when its N samples are spent: never more than N. Each image stops on its own (the images
still sampling are scored together), so an image's map does not depend on the others of its
batch, and the samples an image used are recorded (``Explanation.samples_used``).
:func:`stream_until_stable` scores the samples, chunk by chunk, for the images still going.
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch

from maskscope.core.model.classifier import DEFAULT_SCORE, Classifier
from maskscope.core.perturbation.fillers import Filler
from maskscope.core.progress import progress_bar
from maskscope.core.scoring.perturbations import default_batch_size, score_perturbations
from maskscope.errors import MaskscopeValueError
from maskscope.metrics.robustness import spearman


class SamplingStop:
    """The stopping state of a batch of B images that draw up to ``count`` samples each.

    Args:
        images: B.
        count: N, the samples an image may use.
        tolerance: the Spearman ρ successive estimates must reach; ``None``: never stop early.
        interval: samples between two estimates.
        checks: successive agreeing estimates needed to stop.
    """

    def __init__(self, images: int, count: int, tolerance: float | None, interval: int, checks: int) -> None:
        if tolerance is not None and not -1 <= tolerance <= 1:
            raise MaskscopeValueError(f"stop_tolerance must be a Spearman ρ in [-1, 1] or None, got {tolerance}")
        if interval < 1 or checks < 1:
            raise MaskscopeValueError(f"stop_interval and stop_checks must be at least 1, got {interval} and {checks}")
        self.count = count
        self.tolerance = tolerance
        self.interval = interval
        self.checks = checks
        #: which images still draw samples
        self.active = torch.ones(images, dtype=torch.bool)
        #: samples each image has used
        self.used = torch.zeros(images, dtype=torch.long)
        self._agreeing = torch.zeros(images, dtype=torch.long)
        self._previous: torch.Tensor | None = None

    @property
    def enabled(self) -> bool:
        return self.tolerance is not None

    def next_boundary(self, done: int) -> int:
        """Where the chunk starting after ``done`` samples must end: the next check, or N."""
        if not self.enabled:
            return self.count
        return min(self.count, (done // self.interval + 1) * self.interval)

    def due(self, done: int) -> bool:
        """Whether the images still going are estimated after ``done`` samples."""
        return self.enabled and done % self.interval == 0 and done < self.count

    def update(self, done: int, estimates: torch.Tensor) -> None:
        """Record the estimates (A×…, one per active image, in order) after ``done`` samples and
        stop the images whose last ``checks`` estimates each agreed with the one before."""
        assert self.tolerance is not None
        active = self.active.nonzero().flatten()
        current = estimates.detach().float().cpu().flatten(1)
        if self._previous is not None:
            agree = spearman(current[:, None], self._previous[active][:, None]) >= self.tolerance
            self._agreeing[active] = torch.where(agree, self._agreeing[active] + 1, 0)
            stopped = active[self._agreeing[active] >= self.checks]
            self.active[stopped] = False
            self.used[stopped] = done
        if self._previous is None:
            self._previous = torch.zeros(len(self.active), current.shape[1])
        self._previous[active] = current

    def finish(self) -> torch.Tensor:
        """Samples used per image (B); the images still going used all N."""
        self.used[self.active] = self.count
        return self.used.clone()


def stream_until_stable(
    classifier: Classifier,
    images: torch.Tensor,
    stop: SamplingStop,
    masks_of: Callable[[slice, torch.Tensor], torch.Tensor],
    filler: Filler,
    target_weights: torch.Tensor,
    batch_size: int | None = None,
    progress: bool = False,
    description: str = "scoring",
    score: str = DEFAULT_SCORE,
) -> Iterator[tuple[slice, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Score samples ``0 … N − 1`` of the images ``stop`` keeps active, a chunk at a time.

    Yields ``(chunk, active, masks, scores)``: the chunk's slice of ``range(N)``, the indices of
    the images scored (A), their masks ``masks_of(chunk, active)`` (n×h×w shared, or A×n×h×w)
    and their summed target scores A×n (``target_weights``: B×C, multi-hot). Chunks end at
    every check, where the caller estimates the active images' maps and calls
    :meth:`SamplingStop.update` before the next chunk is drawn; the stream ends when N samples
    are scored or no image is active.
    """
    batch_size = default_batch_size(batch_size, images.device)
    done = 0
    bar = progress_bar(total=stop.count, desc=description, disable=not progress, leave=False)
    try:
        while done < stop.count and bool(stop.active.any()):
            active = stop.active.nonzero().flatten()
            per_chunk = max(1, batch_size // len(active))
            chunk = slice(done, min(done + per_chunk, stop.next_boundary(done)))
            masks = masks_of(chunk, active)
            picked = active.to(images.device)
            scores = score_perturbations(
                classifier, images[picked], masks, filler, target_weights[picked], batch_size, score=score
            )
            done = chunk.stop
            bar.update(chunk.stop - chunk.start)
            yield chunk, active, masks, scores
    finally:
        bar.close()
