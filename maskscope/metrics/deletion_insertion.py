"""Deletion and insertion curves (faithfulness of a saliency map).

Units (pixels, or cells of the saliency grid) are ranked by descending saliency; ties keep
row-major order, so the ranking is deterministic. At step ``t`` the first ``k_t`` units are

* **deleted**: replaced by the deletion substrate, ``Φ(x, m_t)`` with ``m_t = 0`` on them;
* **inserted**: revealed on top of the insertion substrate, ``m_t = 1`` on them only.

The curve is the classifier's probability of the target (softmax, or sigmoid for a
multi-label classifier; summed over a target set) at every step, against the fraction
``k_t / n`` of units changed. Its score is the area under the curve by the trapezoid rule
over that fraction in [0, 1]: lower is better for deletion, higher for insertion.

All steps of all images are expressed as masks and scored by
:func:`~maskscope.core.scoring.perturbations.score_perturbations`, ``batch_size`` perturbed images per
forward pass, so a 224-step curve costs a handful of passes.

Protocols (``PROTOCOLS``):

* ``rise`` — deletion substrate: the classifier's mean colour (zero in its normalised space);
  insertion substrate: blur 11×11, σ 5; 224 steps (224 px per step on a 224×224 image).
* ``rise-batch`` — the same with 28 steps (1792 px per step on 224×224), RISE's batch setting.
* ``igos`` — blur 51×51, σ 50 for both; evaluated at the saliency map's own resolution
  (a 28×28 map removes 28×28 cells), ``max(1, n // 50)`` cells per step, binary cell masks
  upsampled bilinearly to the image.
* ``fgvis`` — zero substrate (the classifier's mean colour, *inferred*: zero in the
  normalised space) for both; 0.25% steps for the first 100 steps, then 1% steps for 75.
* ``road`` — ROAD (Rong et al., ICML 2022): removed pixels are imputed from their neighbours
  by noisy linear imputation (:mod:`maskscope.metrics.road`; σ = 0.01 in the classifier's
  normalised space, seeded), for deletion (most relevant removed first, ROAD's MoRF) and
  insertion (most relevant revealed first: the least relevant removed, ROAD's LeRF); the
  paper's 10%, 20%, …, 90% of the pixels removed (deletion) or revealed (insertion). Its
  area is the trapezoid over those fractions, [0.1, 0.9].
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

import torch

from maskscope.core.model.classifier import DEFAULT_SCORE, Classifier
from maskscope.core.model.targets import TargetSpec, resolve_targets
from maskscope.core.model.targets import target_weights as multi_hot
from maskscope.core.perturbation.filler_specs import resolve_filler
from maskscope.core.perturbation.fillers import Blur, Filler
from maskscope.core.perturbation.masks import Upsampler
from maskscope.core.scoring.perturbations import score_perturbations
from maskscope.data.images import check_pixel_range
from maskscope.metrics.road import road_imputer

Schedule = Callable[[int], torch.Tensor]
#: a filler, a spec resolved against the classifier's mean colour, or a function of the classifier
FillerSpec = Filler | str | Callable[[Classifier], Filler]

#: Masks built at once are bounded to about this many elements (bool), whatever the batch.
_MASK_ELEMENTS = 1 << 26


def rise_schedule(units: int, steps: int = 224) -> torch.Tensor:
    """Units changed after each of ``steps`` even steps: ``⌊i·n / steps⌋`` for i = 0…steps."""
    return torch.arange(steps + 1, dtype=torch.long) * units // steps


def igos_schedule(units: int, divisor: int = 50) -> torch.Tensor:
    """``0, s, 2s, …`` with ``s = max(1, n // divisor)``, ending at ``n``."""
    step = max(1, units // divisor)
    counts = torch.arange(0, units, step, dtype=torch.long)
    return torch.cat([counts, torch.tensor([units])])


def fgvis_schedule(units: int) -> torch.Tensor:
    """0.25% of the units per step for 100 steps (to 25%), then 1% per step for 75 (to 100%)."""
    fine = (torch.arange(101, dtype=torch.long) * units + 200) // 400
    coarse = (torch.arange(26, 101, dtype=torch.long) * units + 50) // 100
    return torch.cat([fine, coarse])


def road_schedule(units: int, percentages: tuple[int, ...] = tuple(range(10, 100, 10))) -> torch.Tensor:
    """ROAD's fractions: ``round(p·n / 100)`` units for p = 10, 20, …, 90 percent."""
    return (torch.tensor(percentages, dtype=torch.long) * units + 50) // 100


def _road_filler(classifier: Classifier) -> Filler:
    return road_imputer(classifier.std)


@dataclass(frozen=True)
class Protocol:
    """A named deletion/insertion setting.

    Args:
        name: the protocol's name.
        deletion_filler: substrate of deleted units (a filler, a spec such as ``"mean"``
            resolved against the classifier's mean colour, or a function of the classifier
            that returns the filler).
        insertion_filler: substrate that inserted units are revealed on.
        schedule: number of units → units changed at each point of the curve, non-decreasing
            between 0 and the number of units (the full range for a curve over [0, 1]).
        at_saliency_resolution: rank cells of the saliency grid and upsample the binary cell
            masks bilinearly; otherwise rank image pixels (the saliency must be image-sized).
    """

    name: str
    deletion_filler: FillerSpec
    insertion_filler: FillerSpec
    schedule: Schedule
    at_saliency_resolution: bool = False


PROTOCOLS: dict[str, Protocol] = {
    "rise": Protocol("rise", "mean", Blur(5.0, kernel_size=11), rise_schedule),
    "rise-batch": Protocol("rise-batch", "mean", Blur(5.0, kernel_size=11), partial(rise_schedule, steps=28)),
    "igos": Protocol("igos", Blur(50.0, kernel_size=51), Blur(50.0, kernel_size=51), igos_schedule, True),
    "fgvis": Protocol("fgvis", "mean", "mean", fgvis_schedule),
    "road": Protocol("road", _road_filler, _road_filler, road_schedule),
}


@dataclass
class CurveResult:
    """Deletion or insertion curves of a batch.

    Attributes:
        kind: ``"deletion"`` or ``"insertion"``.
        protocol: the protocol's name.
        fractions: T fractions of units changed at each point, from 0 to 1.
        scores: B×T target scores along the curve (probabilities unless ``score="logit"``).
        targets: the target classes of each image.
    """

    kind: str
    protocol: str
    fractions: torch.Tensor
    scores: torch.Tensor
    targets: list[list[int]]

    @property
    def auc(self) -> torch.Tensor:
        """Area under each curve (trapezoid over the fraction in [0, 1]), shape B."""
        return torch.trapezoid(self.scores, self.fractions, dim=1)

    @property
    def mean_auc(self) -> float:
        return float(self.auc.mean())


def deletion(
    classifier: Classifier,
    images: torch.Tensor,
    saliency: torch.Tensor,
    target: TargetSpec = "top1",
    protocol: str | Protocol = "rise",
    batch_size: int | None = None,
    progress: bool = False,
    score: str = DEFAULT_SCORE,
) -> CurveResult:
    """Deletion curves: remove the most salient units first; a faithful map makes the score fall fast.

    Args:
        classifier: the model wrapper.
        images: B×3×H×W in [0, 1].
        saliency: B×h×w, higher = more important (image-sized unless the protocol ranks cells).
        target: classes whose probability is recorded (default: each image's top-1 class), as
            the methods take it: ``"top1"``, an index, a name, or one per image.
        protocol: a name in ``PROTOCOLS`` or a :class:`Protocol`.
        batch_size: perturbed images per forward pass (default: 8 on a CPU, 64 on a GPU).
        progress: show a progress bar.
        score: the curve's score, ``"probability"`` (the papers') or ``"logit"``.
    """
    return _curves("deletion", classifier, images, saliency, target, protocol, batch_size, progress, score)


def insertion(
    classifier: Classifier,
    images: torch.Tensor,
    saliency: torch.Tensor,
    target: TargetSpec = "top1",
    protocol: str | Protocol = "rise",
    batch_size: int | None = None,
    progress: bool = False,
    score: str = DEFAULT_SCORE,
) -> CurveResult:
    """Insertion curves: reveal the most salient units first; a faithful map makes the score rise fast.

    Arguments as for :func:`deletion`.
    """
    return _curves("insertion", classifier, images, saliency, target, protocol, batch_size, progress, score)


def saliency_ranks(saliency: torch.Tensor) -> torch.Tensor:
    """Rank of every unit of B×h×w maps in descending saliency (0 = most salient), B×h×w.

    Ties are broken by row-major position, so equal maps always give the same order.
    """
    flat = saliency.flatten(1)
    order = flat.sort(dim=1, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    positions = torch.arange(flat.shape[1], device=flat.device).expand_as(order)
    ranks.scatter_(1, order, positions)
    return ranks.view_as(saliency)


def _curves(
    kind: str,
    classifier: Classifier,
    images: torch.Tensor,
    saliency: torch.Tensor,
    target: TargetSpec,
    protocol: str | Protocol,
    batch_size: int | None,
    progress: bool,
    score: str,
) -> CurveResult:
    protocol = _resolve_protocol(protocol)
    _check_inputs(images, saliency, protocol)
    with torch.no_grad():
        clean_scores = classifier.probabilities(images)
    resolved = resolve_targets(target, classifier, clean_scores)
    target_weights = multi_hot(resolved, clean_scores.shape[1], device=images.device)
    spec = protocol.deletion_filler if kind == "deletion" else protocol.insertion_filler
    filler = spec(classifier) if callable(spec) and not isinstance(spec, Filler) else resolve_filler(spec, classifier.mean_colour)

    ranks = saliency_ranks(saliency.to(images.device))
    units = ranks[0].numel()
    counts = protocol.schedule(units).to(images.device)
    if counts.min() < 0 or counts.max() > units or bool((counts.diff() < 0).any()):
        raise ValueError(f"protocol {protocol.name}: its schedule must not decrease and stay within 0 … {units} units")
    group = max(1, _MASK_ELEMENTS // (len(counts) * units))
    scores = []
    for start in range(0, len(images), group):
        chunk = ranks[start : start + group, None]
        changed = chunk < counts.view(1, -1, 1, 1)
        masks = ~changed if kind == "deletion" else changed
        scores.append(
            score_perturbations(
                classifier,
                images[start : start + group],
                masks,
                filler,
                target_weights[start : start + group],
                batch_size=batch_size,
                upsampler=Upsampler("bilinear"),
                progress=progress,
                score=score,
            )
        )
    fractions = counts.float() / units
    return CurveResult(kind, protocol.name, fractions.cpu(), torch.cat(scores).cpu(), resolved)


def _resolve_protocol(protocol: str | Protocol) -> Protocol:
    if isinstance(protocol, Protocol):
        return protocol
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)} or pass a Protocol")
    return PROTOCOLS[protocol]


def _check_inputs(images: torch.Tensor, saliency: torch.Tensor, protocol: Protocol) -> None:
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be B×3×H×W, got {tuple(images.shape)}")
    check_pixel_range(images)
    if saliency.dim() != 3 or saliency.shape[0] != images.shape[0]:
        raise ValueError(
            f"saliency must be B×H×W with one map per image ({images.shape[0]}), got {tuple(saliency.shape)}"
        )
    if not protocol.at_saliency_resolution and saliency.shape[1:] != images.shape[2:]:
        raise ValueError(
            f"protocol {protocol.name} ranks image pixels: saliency {tuple(saliency.shape[1:])} must match the "
            f"image size {tuple(images.shape[2:])} (resize the map, or use a protocol that ranks cells)"
        )
    if torch.isnan(saliency).any():
        raise ValueError("saliency contains NaN")
