"""Descent directions beyond the plain gradient, for :func:`~maskscope.core.optimisation.descent.optimise_masks`.

The integrated gradient (I-GOS) replaces the class term's gradient by its average along the
straight path from the fully removed image (mask 0) to the current mask. It is the exact
gradient of the *integrated objective*::

    F_IG(M) = Σ_t w_t·(1/S)·Σ_{s=1..S} ℓ(p_C(Φ_t(x, (s/S)·M) + n_{t,s})) + R(M),
    n ~ N(0, σ²) in ImageNet-normalised units (pixel noise σ·(0.229, 0.224, 0.225)),

with one term for I-GOS (``Φ`` the deletion composite, ``w = +1``) and four for iGOS++ (see
:mod:`maskscope.core.optimisation.paired_masks`), ``R`` the problem's regulariser, and the noise drawn
afresh at every iteration. The direction is ``c·∂(class part)/∂M + ∂R/∂M`` with ``c = 1``
(iGOS++ halves its four class terms, ``c = ½``, as its authors' code does). The noise's unit
is the authors': they add σ = 0.2 to ImageNet-normalised inputs, 0.045 in pixel values, and
so does ``noise=0.2`` here whatever the classifier's own normalisation.

A line search judges a step by one of two functions: :func:`end_point_objective`, the
paper's objective at the mask itself without noise (``F_end``, what the I-GOS paper's
Armijo condition and its original code use), or :meth:`IntegratedGradient.objective`,
``F_IG`` with the iteration's noise (what the iGOS++ authors' code uses).

Memory: the ``T·S·B`` path inputs go through the classifier ``batch_size`` at a time and the
gradient is accumulated chunk by chunk, so peak memory follows ``batch_size``, not the number
of images, path points or terms.
"""

from __future__ import annotations

from typing import Callable, Protocol

import numpy as np
import torch

from maskscope.core.model.classifier import IMAGENET_STD, Classifier
from maskscope.core.scoring.perturbations import default_batch_size


class PathProblem(Protocol):
    """What the integrated gradient needs of a problem (a game's ``MaskProblem``, iGOS++'s pair)."""

    classifier: Classifier
    images: torch.Tensor
    #: B×C target weights (multi-hot)
    target_weights: torch.Tensor
    #: number of class terms ``T`` integrated along the path
    terms: int

    def path_inputs(
        self, masks: torch.Tensor, image_index: torch.Tensor, term_index: torch.Tensor, fractions: torch.Tensor
    ) -> torch.Tensor:
        """Inputs N×3×H×W: term ``term_index[k]`` at ``fractions[k]·M`` for masks N×C×h×w of images ``image_index``."""
        ...

    def path_values(self, scores: torch.Tensor, term_index: torch.Tensor) -> torch.Tensor:
        """The signed class values ``w_t·ℓ(p)`` of target scores N."""
        ...

    def penalty(self, masks: torch.Tensor, image_index: torch.Tensor) -> torch.Tensor:
        """``R`` of masks N×C×h×w of the images ``image_index``, per mask."""
        ...


def score_path(
    problem: PathProblem,
    masks: torch.Tensor,
    image_index: torch.Tensor,
    rows: torch.Tensor,
    terms: torch.Tensor,
    fractions: torch.Tensor,
    batch_size: int,
    noise: Callable[[torch.Tensor], torch.Tensor] | None = None,
    gradient_weight: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Target scores of N path inputs, ``batch_size`` at a time.

    Entry ``k`` is term ``terms[k]`` at ``fractions[k]·masks[rows[k]]`` for image
    ``image_index[rows[k]]``, plus ``noise(chunk)`` (pixel space, a callable of the chunk's
    entry numbers) when ``noise`` is given. With ``gradient_weight`` it also returns the
    gradient w.r.t. ``masks`` of ``gradient_weight·Σ_k path_values(p_k)``, accumulated over
    the chunks (``masks`` must then require gradients).
    """
    scores, grad = [], None
    for chunk in torch.arange(len(rows), device=masks.device).split(batch_size):
        row, term, fraction = rows[chunk], terms[chunk], fractions[chunk]
        images = image_index[row]
        inputs = problem.path_inputs(masks[row], images, term, fraction)
        if noise is not None:
            inputs = inputs + noise(chunk)
        chunk_scores = (problem.classifier.probabilities(inputs) * problem.target_weights[images]).sum(1)
        if gradient_weight is not None:
            total = gradient_weight * problem.path_values(chunk_scores, term).sum()
            (chunk_grad,) = torch.autograd.grad(total, masks)
            grad = chunk_grad if grad is None else grad + chunk_grad
        scores.append(chunk_scores.detach())
    return torch.cat(scores), grad


def _scores_at_end(
    problem: PathProblem,
    masks: torch.Tensor,
    image_index: torch.Tensor,
    rows: torch.Tensor,
    terms: torch.Tensor,
    batch_size: int | None,
) -> torch.Tensor:
    """Target scores, without noise, of term ``terms[k]`` at ``masks[rows[k]]`` itself (the end of the path)."""
    with torch.no_grad():
        scores, _ = score_path(
            problem,
            masks,
            image_index,
            rows,
            terms,
            torch.ones(len(rows), dtype=masks.dtype, device=masks.device),
            default_batch_size(batch_size, masks.device),
        )
    return scores


def end_point_scores(
    problem: PathProblem, masks: torch.Tensor, term: int = 0, batch_size: int | None = None
) -> torch.Tensor:
    """``p_C`` of term ``term`` at the end of the path (the masks themselves), without noise, per image."""
    rows = torch.arange(masks.shape[0], device=masks.device)
    return _scores_at_end(problem, masks, rows, rows, torch.full_like(rows, term), batch_size)


def end_point_objective(
    problem: PathProblem, masks: torch.Tensor, image_index: torch.Tensor, batch_size: int | None = None
) -> torch.Tensor:
    """``F_end = Σ_t w_t·ℓ(p_C(Φ_t(x, M))) + R(M)``: the objective at the end of the path, without noise.

    Masks N×C×h×w of the images ``image_index``; one value per mask.
    """
    count = len(image_index)
    device = masks.device
    terms = torch.arange(problem.terms, device=device).repeat_interleave(count)
    rows = torch.arange(count, device=device).repeat(problem.terms)
    values = problem.path_values(_scores_at_end(problem, masks, image_index, rows, terms, batch_size), terms)
    class_value = torch.zeros(count, dtype=values.dtype, device=device).index_add_(0, rows, values)
    with torch.no_grad():
        return class_value + problem.penalty(masks, image_index)


class IntegratedGradient:
    """The integrated gradient along the mask path, with the noise of each iteration kept for its line search.

    Args:
        points: number of path points ``S`` (I-GOS: 20).
        noise: standard deviation ``σ`` of the Gaussian noise added at each path point, in
            ImageNet-normalised units (I-GOS: 0.2, 0.045 in pixel values); 0 disables it.
        seed: with the iteration, the term and the point, fixes each noise image; every image
            of a batch draws the same noise, so an image gets the same masks alone or in a batch.
        batch_size: path inputs per classifier pass (default: 8 on a CPU, 64 on a GPU).
        class_weight: ``c``, the factor on the class terms' gradient (iGOS++: ½).

    The problem's jitter is not applied; the path is ``(s/S)·up(M)``, which equals
    ``up((s/S)·M)`` for the linear upsamplers.
    """

    def __init__(
        self,
        points: int = 20,
        noise: float = 0.2,
        seed: int = 0,
        batch_size: int | None = None,
        class_weight: float = 1.0,
    ) -> None:
        if points < 1:
            raise ValueError(f"points must be at least 1, got {points}")
        self.points = points
        self.noise = noise
        self.seed = seed
        self.batch_size = batch_size
        self.class_weight = class_weight
        self.draw = 0

    def _noise_image(self, term: int, point: int, like: torch.Tensor) -> torch.Tensor:
        """Unit Gaussian noise 3×H×W for (this iteration, term, point), the same on every device."""
        state = np.random.SeedSequence([self.seed, self.draw, term, point]).generate_state(1, dtype=np.uint64)[0]
        generator = torch.Generator().manual_seed(int(state) >> 1)
        return torch.randn(like.shape[1:], generator=generator).to(like)

    def _noise(self, problem: PathProblem, terms: torch.Tensor, points: torch.Tensor):
        """Noise of path entries (``terms``, ``points``), as :func:`score_path` asks for it by entry number."""
        if self.noise <= 0:
            return None
        std = torch.tensor(IMAGENET_STD).to(problem.images).view(1, -1, 1, 1)

        def chunk_noise(chunk: torch.Tensor) -> torch.Tensor:
            keys = list(zip(terms[chunk].tolist(), points[chunk].tolist()))
            drawn = {key: self._noise_image(*key, problem.images) for key in dict.fromkeys(keys)}
            return self.noise * std * torch.stack([drawn[key] for key in keys])

        return chunk_noise

    def _class_part(
        self, problem: PathProblem, masks: torch.Tensor, image_index: torch.Tensor, gradient: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The path-averaged class values per image of ``image_index`` (masks: one row each), and their gradient."""
        count = len(image_index)
        device = masks.device
        terms = torch.arange(problem.terms, device=device).repeat_interleave(self.points * count)
        points = torch.arange(1, self.points + 1, device=device).repeat_interleave(count).repeat(problem.terms)
        rows = torch.arange(count, device=device).repeat(problem.terms * self.points)
        fractions = points.to(masks.dtype) / self.points
        scores, grad = score_path(
            problem,
            masks,
            image_index,
            rows,
            terms,
            fractions,
            default_batch_size(self.batch_size, device),
            self._noise(problem, terms, points),
            self.class_weight / self.points if gradient else None,
        )
        values = problem.path_values(scores, terms) / self.points
        return torch.zeros(count, dtype=values.dtype, device=device).index_add_(0, rows, values), grad

    def __call__(self, problem: PathProblem, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``F_IG(M)`` per image with a fresh noise draw, and the direction ``c·∇class + ∇R``."""
        self.draw += 1
        variable = masks.detach().requires_grad_(True)
        everyone = torch.arange(masks.shape[0], device=masks.device)
        class_value, class_grad = self._class_part(problem, variable, everyone, gradient=True)
        assert class_grad is not None  # asked for with gradient=True
        penalty = problem.penalty(variable, everyone)
        (penalty_grad,) = torch.autograd.grad(penalty.sum(), variable)
        return class_value + penalty.detach(), class_grad + penalty_grad

    def objective(self, problem: PathProblem, masks: torch.Tensor, image_index: torch.Tensor) -> torch.Tensor:
        """``F_IG`` with the last call's noise at masks N×C×h×w of the images ``image_index``."""
        with torch.no_grad():
            class_value, _ = self._class_part(problem, masks, image_index, gradient=False)
            return class_value + problem.penalty(masks, image_index)
