"""Model-parameter randomisation test (Adebayo et al., "Sanity Checks for Saliency Maps", 2018).

An explanation that depends on what the model learned must change when the learned weights
are destroyed. The trained model's parametrised layers (every module that owns parameters:
convolutions, batch norms, linear layers) are ordered from the input up, and re-initialised
with their own ``reset_parameters`` (PyTorch's default initialisation; batch-norm running
statistics reset too) on a deep copy, so the given model is never modified:

- **cascading**: step k re-initialises the top k layers (logits first, then down to the
  input), so the last step is a fully random network;
- **independent**: step k re-initialises only the k-th layer from the top.

At every step the same images are explained with the same method and targets (the classes the
trained model was explained for) and compared with the trained model's maps by SSIM,
HOG-Pearson and Spearman (:mod:`maskscope.metrics.robustness`), both of the raw maps and of
their absolute values. Step 0 re-explains the unrandomised copy (similarity 1 for a
deterministic method).

**Criterion**: a method passes when, after full cascading randomisation, the mean Spearman rank
correlation of the absolute maps with the trained model's maps is below
:data:`PASS_SPEARMAN` = 0.5 — the order of importance must be mostly lost.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Sequence

import torch
from torch import nn

from maskscope.core.model.classifier import Classifier
from maskscope.core.model.targets import TargetSpec
from maskscope.data.images import ImageLike
from maskscope.methods.base import Method, prepare_images
from maskscope.metrics.robustness import SIMILARITIES

VARIANTS = ("cascading", "independent")
PASS_SPEARMAN = 0.5


def parametrised_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every module owning parameters, in definition order (input → logits)."""
    return [
        (name, module)
        for name, module in model.named_modules()
        if any(True for _ in module.parameters(recurse=False))
    ]


def randomised_copy(classifier: Classifier, layer_names: Sequence[str], seed: int = 0) -> Classifier:
    """A deep copy of ``classifier`` whose named layers are re-initialised (seeded, global RNG untouched)."""
    if not isinstance(classifier.model, nn.Module):
        raise TypeError(f"classifier {classifier.name} is a forward-only callable: its weights cannot be randomised")
    clone = copy.deepcopy(classifier)
    modules = dict(clone.module.named_modules())
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for name in layer_names:
            if name not in modules:
                raise ValueError(f"model {classifier.name} has no layer {name!r}")
            reset = getattr(modules[name], "reset_parameters", None)
            if reset is None:
                kind = type(modules[name]).__name__
                raise TypeError(f"layer {name!r} ({kind}) has no reset_parameters to randomise it")
            reset()
    for parameter in clone.module.parameters():
        parameter.requires_grad_(False)
    return clone


@dataclass
class RandomisationStep:
    """Similarity to the trained model's maps after one randomisation step (means over images).

    ``layers`` is the number of layers re-initialised (cascading) or the position from the top
    of the one re-initialised (independent); ``layer`` names the last one re-initialised.
    ``similarity`` holds ``ssim``, ``hog_pearson``, ``spearman`` of the raw maps and the same
    with an ``_abs`` suffix for the absolute maps.
    """

    variant: str
    layers: int
    layer: str
    similarity: dict[str, float]

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class RandomisationResult:
    """All steps of a model-randomisation check of one method and its verdict."""

    method: str
    steps: list[RandomisationStep] = field(default_factory=list)
    num_layers: int = 0
    full_spearman_abs: float | None = None
    passed: bool | None = None
    criterion: str = f"mean Spearman of absolute maps after full cascading randomisation < {PASS_SPEARMAN}"


def similarities(trained: torch.Tensor, other: torch.Tensor) -> dict[str, float]:
    """Mean over images of every similarity of raw maps and of absolute maps."""
    values = {}
    for name, function in SIMILARITIES.items():
        values[name] = float(function(trained, other).mean())
        values[f"{name}_abs"] = float(function(trained.abs(), other.abs()).mean())
    return values


def model_randomisation(
    classifier: Classifier,
    method: Method,
    images: torch.Tensor | Sequence[ImageLike],
    target: TargetSpec = "top1",
    seed: int = 0,
    variants: Sequence[str] = VARIANTS,
    steps: Sequence[int] | None = None,
) -> RandomisationResult:
    """Run the randomisation test of ``method`` on ``classifier`` for ``images``.

    Args:
        classifier: the trained model (left unchanged).
        method: an explanation method (e.g. ``get_method("gradient")``).
        images: B×3×H×W in the classifier's view, or image files/arrays.
        target: the classes explained; the randomised models explain the same classes.
        seed: seeds both the method and the re-initialisation.
        variants: ``"cascading"`` and/or ``"independent"``.
        steps: which steps k (1 … number of layers) to explain; default all. The full
            cascading randomisation (the criterion's step) is always included.
    """
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; use {VARIANTS}")
    if not isinstance(classifier.model, nn.Module):
        raise TypeError(f"classifier {classifier.name} is a forward-only callable: its weights cannot be randomised")
    layers = parametrised_layers(classifier.model)
    if not layers:
        raise ValueError(f"model {classifier.name} has no parametrised layers to randomise")
    count = len(layers)
    chosen = sorted(set(range(1, count + 1) if steps is None else steps))
    bad = [k for k in chosen if not 1 <= k <= count]
    if bad:
        raise ValueError(f"steps {bad} out of range: the model has {count} parametrised layers")
    batch = prepare_images(images, classifier)
    trained = method.explain(classifier, batch, target=target, seed=seed)
    targets = trained.targets
    top_down = [name for name, _ in reversed(layers)]
    result = RandomisationResult(method=method.name, num_layers=count)

    def explain_with(layer_names: list[str]) -> torch.Tensor:
        model = randomised_copy(classifier, layer_names, seed)
        return method.explain(model, batch, target=targets, seed=seed).saliency

    for variant in variants:
        variant_steps = sorted(set(chosen) | {count}) if variant == "cascading" else chosen
        if variant == "cascading":
            result.steps.append(RandomisationStep(variant, 0, "", similarities(trained.saliency, explain_with([]))))
        for k in variant_steps:
            names = top_down[:k] if variant == "cascading" else [top_down[k - 1]]
            values = similarities(trained.saliency, explain_with(names))
            result.steps.append(RandomisationStep(variant, k, top_down[k - 1], values))
            if variant == "cascading" and k == count:
                result.full_spearman_abs = values["spearman_abs"]
                result.passed = values["spearman_abs"] < PASS_SPEARMAN
    return result
