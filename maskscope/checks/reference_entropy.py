"""Entropy of a classifier's prediction on removal references (FGVis supplement, Table A2).

A good reference for "removed" content is one the classifier has no opinion about: its softmax
should be close to uniform, with entropy ``H(p) = −Σ_c p_c log p_c`` near the maximum
``log C`` (6.91 for 1000 classes). FGVis chose the zero image of the normalised space (the
classifier's mean colour) for its high entropy. References measured here:

- ``zero``: the mean colour (one image; no spread);
- ``noise σ=8`` and ``noise σ=32`` (0–255 scale): Gaussian noise images around the mean colour,
  ``clip(μ + σ·ε)``, one independent draw per photo — the zero reference with noise added, so
  the rows isolate the effect of the noise;
- ``blur σ=5`` and ``blur σ=10``: each photo blurred with a Gaussian of that σ in pixels;
- ``photos``: the photos themselves, for comparison.

Entropies are in nats; rows with one image per photo report mean ± standard deviation over
the photos.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import torch

from maskscope.core.model.classifier import Classifier
from maskscope.core.perturbation.fillers import Blur, Constant, Filler, Noise
from maskscope.data.images import ImageLike
from maskscope.methods.base import prepare_images

NOISE_SIGMAS = (8, 32)
BLUR_SIGMAS = (5, 10)


@dataclass
class EntropyRow:
    """One reference: mean and standard deviation of the entropy (nats) over ``count`` images."""

    reference: str
    entropy: float
    std: float
    count: int

    def as_dict(self) -> dict:
        return asdict(self)


def entropy(probabilities: torch.Tensor) -> torch.Tensor:
    """``H(p) = −Σ_c p_c log p_c`` of each row of B×C (0·log 0 = 0), in nats."""
    return -torch.special.xlogy(probabilities, probabilities).sum(1)


def references(classifier: Classifier, photos: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    """Reference name → images B×3×H×W (one image for the zero reference) in the classifier's view."""
    mean = classifier.mean_colour.to(photos)
    fillers: dict[str, Filler] = {"zero": Constant(mean)}
    for sigma in NOISE_SIGMAS:
        fillers[f"noise σ={sigma}"] = Noise(std=sigma / 255, centre=mean.flatten().tolist(), seed=seed)
    for sigma in BLUR_SIGMAS:
        fillers[f"blur σ={sigma}"] = Blur(sigma)
    images = {name: filler(photos) for name, filler in fillers.items()}
    images["zero"] = images["zero"][:1]
    images["photos"] = photos
    return images


def reference_entropy(
    classifier: Classifier, photos: torch.Tensor | Sequence[ImageLike], seed: int = 0
) -> list[EntropyRow]:
    """The softmax entropy of ``classifier`` on each reference, plus the maximum ``log C``.

    Args:
        classifier: the model (its softmax over all outputs is used, whatever its output kind).
        photos: B×3×H×W in [0, 1] in the classifier's view, or image files/arrays.
        seed: the noise references' seed.
    """
    batch = prepare_images(photos, classifier)
    if len(batch) == 0:
        raise ValueError("photos is empty: reference entropy needs at least one photo")
    rows = []
    with torch.no_grad():
        for name, images in references(classifier, batch, seed).items():
            values = entropy(classifier.logits(images).softmax(1)).double()
            std = float(values.std()) if len(values) > 1 else 0.0
            rows.append(EntropyRow(name, float(values.mean()), std, len(values)))
    rows.append(EntropyRow("maximum log C", math.log(classifier.num_classes), 0.0, 0))
    return rows
