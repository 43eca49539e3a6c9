"""Integrated Gradients (Sundararajan, Taly, Yan, "Axiomatic Attribution for Deep Networks", ICML 2017).

For an input ``x`` and a baseline ``x'`` the attribution of input ``i`` is

    IG_i(x) = (x_i − x'_i) · ∫_0^1 ∂F(x' + α(x − x'))/∂x_i dα
            ≈ (x_i − x'_i) · (1/m) · Σ_{k=1..m} ∂F(x' + (k/m)(x − x'))/∂x_i

(the paper's Riemann sum, m = ``points`` = 50 by default; it suggests 20–300). Completeness,
``Σ_i IG_i(x) = F(x) − F(x')``, holds up to the sum's error. The baseline is the black
image by default, or any filler spec applied to ``x`` (``"mean"``: the classifier's mean
colour, the zero image of its normalised space). ``F`` is the target probability (or the
logit with ``score="logit"``). All ``B·m`` path points are evaluated ``batch_size`` at a
time.

Output: ``saliency = Σ_channels |IG|``; ``attributions`` holds the signed attributions
B×3×H×W and ``completeness_gap`` the gap ``Σ_i IG_i − (F(x) − F(x'))`` per image (B).
"""

from __future__ import annotations

import torch

from maskscope.core.explanation import Explanation
from maskscope.core.model.classifier import DEFAULT_SCORE, SCORES
from maskscope.core.perturbation.filler_specs import resolve_filler
from maskscope.core.progress import progress_bar
from maskscope.core.scoring.perturbations import default_batch_size
from maskscope.methods.base import Method
from maskscope.methods.gradient import chunks, input_gradients, target_score
from maskscope.methods.parameters import OneOf, at_least
from maskscope.methods.registry import register


@register
class IntegratedGradients(Method):
    """Integrated Gradients along the straight path from a baseline to the image.

    Args:
        points: path points m of the Riemann sum.
        baseline: ``"black"``, ``"mean"`` (the classifier's mean colour) or another filler spec.
        score: ``"probability"`` or ``"logit"``.
        batch_size: path points per forward/backward pass (default: 8 on a CPU, 64 on a GPU).
        progress: show a progress bar.
    """

    name = "integrated_gradients"
    constraints = {"points": at_least(1), "score": OneOf(*SCORES), "batch_size": at_least(1)}
    pixel_level = True

    def __init__(
        self,
        points: int = 50,
        baseline: str = "black",
        score: str = DEFAULT_SCORE,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> None:
        self.points = points
        self.baseline = baseline
        self.score = score
        self.batch_size = batch_size
        self.progress = progress

    def _explain(self, classifier, images, targets, target_weights, target_scores, seed):
        batch = images.shape[0]
        references = resolve_filler(self.baseline, classifier.mean_colour)(images)
        difference = images - references
        alphas = torch.arange(1, self.points + 1, device=images.device, dtype=images.dtype) / self.points
        total = torch.zeros_like(images)
        pairs = torch.arange(batch * self.points, device=images.device)
        size = default_batch_size(self.batch_size, images.device)
        parts = pairs.split(size)
        for chunk in progress_bar(parts, desc="integrated gradients", disable=not self.progress, leave=False):
            image_index, step_index = chunk // self.points, chunk % self.points
            alpha = alphas[step_index].view(-1, 1, 1, 1)
            points = references[image_index] + alpha * difference[image_index]
            gradients = input_gradients(classifier, points, target_weights[image_index], self.score)
            total.index_add_(0, image_index, gradients)
        attributions = difference * total / self.points

        @torch.no_grad()
        def scores(inputs: torch.Tensor) -> torch.Tensor:
            parts = chunks(batch, size, images.device, False, "")
            return torch.cat([target_score(classifier, inputs[p], target_weights[p], self.score) for p in parts])

        gap = attributions.sum((1, 2, 3)) - (scores(images) - scores(references))
        return Explanation(
            saliency=attributions.abs().sum(1).cpu(),
            targets=targets,
            method=self.name,
            attributions=attributions.cpu(),
            completeness_gap=gap.cpu(),
        )
