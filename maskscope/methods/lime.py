"""LIME and LIME-G: a weighted linear model of the classifier over superpixels
(Ribeiro, Singh, Guestrin, KDD 2016; LIME-G: Agarwal & Nguyen, 2020).

The image is cut into S superpixels by SLIC (scikit-image; n_segments 50, compactness 30,
σ 3 — the G-removal paper's settings). N binary vectors ``z_i ∈ {0, 1}^S`` are drawn, each
superpixel kept with probability ½, the first kept whole (``z_0 = 1``); sample i shows the
image with the superpixels where ``z_ij = 0`` filled: ``x̃_i = Φ(x, M(z_i))``, filled with the
classifier's mean colour (LIME) or an inpainter (LIME-G: ``filler="inpaint"``). Its target
probability ``y_i = p_c(x̃_i)`` is explained by a linear model fitted with the weights

    d_i = 1 − cos(z_i, 1) = 1 − sqrt(|z_i| / S),      π_i = sqrt(exp(−d_i² / w²)),  w = 0.25

(cosine distance to the all-ones vector, ``d = 1`` for the empty vector; LIME's image kernel).
Ridge (LIME's default, α = 1):

    (b, β) = argmin Σ_i π_i·(y_i − b − z_i·β)² + α·‖β‖²

solved in closed form after centring by the weighted means; lasso minimises
``(1/2Σπ)·Σ_i π_i·(y_i − b − z_i·β)² + α·‖β‖₁`` (scikit-learn's scaling) by coordinate
descent. The heatmap paints each superpixel with its weight ``β_j``. Default N = 1000
(LIME's default); the G-removal authors' script used N = 500. Every random choice comes
from a generator seeded with ``seed`` (SLIC itself is deterministic), and each image draws
its samples from its own generator, so a batch gives the same maps as one image at a time.
With the same seed the samples are those of the lime package (its NumPy ``RandomState`` and
torch's CPU generator are the same Mersenne Twister, read in the same order), and so are the
weights: ``benchmarks/agreement/lime_vs_lime.py`` finds them equal to 1e-8.
The explanation's ``superpixel_weights`` holds the weights, B×S_max (NaN past an image's own S).

Convergence stop (``stop_tolerance``, off by default; :mod:`maskscope.methods.sampling_stop`):
every ``stop_interval`` samples the model is refitted on the samples so far, and an image stops
once ``stop_checks`` successive refits in a row agree with the one before (their maps, each
superpixel painted with its ``β``) by Spearman ``ρ ≥ stop_tolerance``; its weights are then the fit on its first n
samples (kernel weight 0 for the rest). ``Explanation.samples_used`` records n.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.segmentation import slic

from maskscope.core.explanation import Explanation
from maskscope.core.model.classifier import DEFAULT_SCORE, SCORES
from maskscope.core.perturbation.filler_specs import resolve_filler
from maskscope.core.perturbation.fillers import Filler
from maskscope.methods.base import Method
from maskscope.methods.parameters import Interval, OneOf, at_least, positive
from maskscope.methods.registry import register
from maskscope.methods.sampling_stop import SamplingStop, stream_until_stable

REGRESSIONS = {"ridge": 1.0, "lasso": 0.01}  # name -> default α


def superpixels(image: torch.Tensor, segments: int = 50, compactness: float = 30.0, sigma: float = 3.0) -> torch.Tensor:
    """SLIC labels H×W (0 … S − 1, consecutive) of an image 3×H×W in [0, 1]."""
    array = image.detach().cpu().permute(1, 2, 0).double().numpy()
    labels = slic(array, n_segments=segments, compactness=compactness, sigma=sigma, start_label=0, channel_axis=-1)
    _, consecutive = np.unique(labels, return_inverse=True)
    return torch.from_numpy(consecutive.reshape(labels.shape)).long()


def kernel_weights(samples: torch.Tensor, counts: torch.Tensor, kernel_width: float) -> torch.Tensor:
    """``π = sqrt(exp(−d²/w²))`` with ``d`` the cosine distance of each binary sample B×N×S to
    the all-ones vector of its image's ``counts`` superpixels (B)."""
    kept = samples.sum(-1)
    distance = 1 - torch.sqrt(kept / counts.to(samples)[:, None])
    return torch.sqrt(torch.exp(-(distance**2) / kernel_width**2))


def _weighted_moments(features: torch.Tensor, responses: torch.Tensor, weights: torch.Tensor):
    """``ZᵀΠZ``, ``ZᵀΠy`` of the data centred by its weighted means, and those means (float64)."""
    features, responses, weights = (t.double() for t in (features, responses, weights))
    total = weights.sum(1, keepdim=True)
    feature_mean = (weights[..., None] * features).sum(1) / total
    response_mean = (weights * responses).sum(1, keepdim=True) / total
    z, y = features - feature_mean[:, None], responses - response_mean
    gram = torch.einsum("bn,bns,bnt->bst", weights, z, z)
    correlation = torch.einsum("bn,bns,bn->bs", weights, z, y)
    return gram, correlation, feature_mean, response_mean[:, 0]


def weighted_ridge(
    features: torch.Tensor, responses: torch.Tensor, weights: torch.Tensor, alpha: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``argmin_{b,β} Σ_i π_i (y_i − b − z_i·β)² + α‖β‖²`` for each of B problems, in closed
    form: ``β = (ZᵀΠZ + αI)⁻¹ ZᵀΠy`` on the data centred by its weighted means, ``b = ȳ − z̄·β``.

    Args: features B×N×S, responses B×N, weights B×N (π ≥ 0), α ≥ 0.
    Returns: coefficients B×S and intercepts B (float64). Columns that never vary (padding
    for images with fewer superpixels) get 0, so α = 0 works whenever the others are independent.
    """
    gram, correlation, feature_mean, response_mean = _weighted_moments(features, responses, weights)
    diagonal = torch.diagonal(gram, dim1=1, dim2=2)
    gram = gram + torch.diag_embed(alpha + (diagonal == 0).to(gram))
    coefficients = torch.linalg.solve(gram, correlation)
    return coefficients, response_mean - (feature_mean * coefficients).sum(1)


def weighted_lasso(
    features: torch.Tensor,
    responses: torch.Tensor,
    weights: torch.Tensor,
    alpha: float = 0.01,
    iterations: int = 1000,
    tolerance: float = 1e-7,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``argmin_{b,β} (1/2Σπ) Σ_i π_i (y_i − b − z_i·β)² + α‖β‖₁`` by cyclic coordinate descent.

    With ``G = ZᵀΠZ / Σπ`` and ``c = ZᵀΠy / Σπ`` of the data centred by its weighted means,
    each step sets ``β_j = soft(c_j − Σ_{k≠j} G_jk β_k, α) / G_jj``; the B problems are solved
    together until no coefficient moves by more than ``tolerance``.
    """
    gram, correlation, feature_mean, response_mean = _weighted_moments(features, responses, weights)
    total = weights.double().sum(1)
    gram, correlation = gram / total[:, None, None], correlation / total[:, None]
    diagonal = torch.diagonal(gram, dim1=1, dim2=2)
    coefficients = torch.zeros_like(correlation)
    for _ in range(iterations):
        largest_step = torch.zeros(len(gram), dtype=gram.dtype)
        for j in range(gram.shape[-1]):
            residual = correlation[:, j] - (gram[:, j] * coefficients).sum(1) + diagonal[:, j] * coefficients[:, j]
            shrunk = torch.sign(residual) * torch.clamp(residual.abs() - alpha, min=0)
            updated = torch.where(diagonal[:, j] > 0, shrunk / diagonal[:, j].clamp_min(1e-300), torch.zeros_like(shrunk))
            largest_step = torch.maximum(largest_step, (updated - coefficients[:, j]).abs())
            coefficients[:, j] = updated
        if float(largest_step.max()) < tolerance:
            break
    return coefficients, response_mean - (feature_mean * coefficients).sum(1)


@register
class LIME(Method):
    """LIME / LIME-G over SLIC superpixels, with batched classifier calls.

    Args:
        samples: number of random samples N (the first keeps every superpixel).
        segments, compactness, slic_sigma: SLIC's ``n_segments``, ``compactness`` and ``sigma``.
        filler: content of hidden superpixels: ``"mean"`` (the classifier's mean colour;
            LIME), an inpainter such as ``"inpaint"`` (LIME-G), any spec ``resolve_filler``
            accepts, or a :class:`~maskscope.core.perturbation.fillers.Filler`.
        score: the class score explained, ``"probability"`` or ``"logit"``.
        kernel_width: w of the kernel ``sqrt(exp(−d²/w²))``.
        regression: ``"ridge"`` or ``"lasso"``.
        alpha: the regulariser's weight; ``None`` takes 1.0 for ridge (LIME's) and 0.01 for lasso.
        batch_size: perturbed images per forward pass (default: 8 on a CPU, 64 on a GPU).
        progress: show a progress bar.
        stop_tolerance: stop an image's sampling once successive refits' weights agree to this
            Spearman ρ (``None``: always draw ``samples`` subsets).
        stop_interval: samples between two refits.
        stop_checks: successive agreeing refits needed to stop.
    """

    name = "lime"
    needs_gradients = False
    constraints = {
        "samples": at_least(2), "segments": at_least(1), "compactness": positive(), "slic_sigma": at_least(0),
        "kernel_width": positive(), "regression": OneOf(*REGRESSIONS), "alpha": at_least(0), "score": OneOf(*SCORES),
        "batch_size": at_least(1), "stop_tolerance": Interval(-1, 1), "stop_interval": at_least(1),
        "stop_checks": at_least(1),
    }

    def __init__(
        self,
        samples: int = 1000,
        segments: int = 50,
        compactness: float = 30.0,
        slic_sigma: float = 3.0,
        filler: str | Filler = "mean",
        score: str = DEFAULT_SCORE,
        kernel_width: float = 0.25,
        regression: str = "ridge",
        alpha: float | None = None,
        batch_size: int | None = None,
        progress: bool = False,
        stop_tolerance: float | None = None,
        stop_interval: int = 100,
        stop_checks: int = 2,
    ) -> None:
        self.samples = samples
        self.segments = segments
        self.compactness = compactness
        self.slic_sigma = slic_sigma
        self.filler = filler
        self.score = score
        self.kernel_width = kernel_width
        self.regression = regression
        self.alpha = alpha
        self.batch_size = batch_size
        self.progress = progress
        self.stop_tolerance = stop_tolerance
        self.stop_interval = stop_interval
        self.stop_checks = stop_checks

    def draw_samples(self, counts: torch.Tensor, seed: int) -> torch.Tensor:
        """Binary samples B×N×S_max: image b's own generator draws N×S_b, the rest is 0."""
        presence = torch.zeros(len(counts), self.samples, int(counts.max()))
        for index, count in enumerate(counts.tolist()):
            generator = torch.Generator().manual_seed(seed)
            drawn = torch.randint(0, 2, (self.samples, count), generator=generator).float()
            drawn[0] = 1
            presence[index, :, :count] = drawn
        return presence

    def _explain(self, classifier, images, targets, target_weights, target_scores, seed):
        batch, _, height, width = images.shape
        labels = torch.stack([superpixels(image, self.segments, self.compactness, self.slic_sigma) for image in images])
        counts = labels.flatten(1).max(1).values + 1
        presence = self.draw_samples(counts, seed)
        filler = resolve_filler(self.filler, classifier.mean_colour)
        pixels = labels.flatten(1).to(images.device)

        def masks_of(chunk: slice, active: torch.Tensor) -> torch.Tensor:
            drawn = presence[active, chunk].to(images.device)
            masks = torch.gather(drawn, 2, pixels[active.to(images.device), None].expand(-1, drawn.shape[1], -1))
            return masks.view(len(active), drawn.shape[1], height, width)

        kernel = kernel_weights(presence, counts, self.kernel_width)
        alpha = REGRESSIONS[self.regression] if self.alpha is None else self.alpha
        fit = weighted_ridge if self.regression == "ridge" else weighted_lasso
        scores = torch.zeros(batch, self.samples)
        stop = SamplingStop(batch, self.samples, self.stop_tolerance, self.stop_interval, self.stop_checks)
        stream = stream_until_stable(
            classifier, images, stop, masks_of, filler, target_weights, self.batch_size, self.progress, "LIME", self.score
        )
        for chunk, active, _, chunk_scores in stream:
            scores[active, chunk] = chunk_scores.cpu()
            if stop.due(chunk.stop):
                seen = slice(0, chunk.stop)
                refit, _ = fit(presence[active, seen], scores[active, seen], kernel[active, seen], alpha)
                stop.update(chunk.stop, torch.gather(refit.float(), 1, labels[active].flatten(1)))
        used = stop.finish()
        unseen = torch.arange(self.samples)[None] >= used[:, None]
        coefficients, _ = fit(presence, scores, kernel.masked_fill(unseen, 0.0), alpha)
        coefficients = coefficients.float()
        saliency = torch.gather(coefficients, 1, labels.flatten(1)).view(batch, height, width)
        beyond = torch.arange(coefficients.shape[1])[None] >= counts[:, None]
        weights_per_superpixel = coefficients.masked_fill(beyond, float("nan"))
        return Explanation(
            saliency=saliency,
            targets=targets,
            method=self.name,
            superpixels=labels,
            superpixel_weights=weights_per_superpixel,
            samples_used=used,
        )
