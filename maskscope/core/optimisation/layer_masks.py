"""Masks on an intermediate layer's activations (MP supplement §6.4).

The mask multiplies the activation tensor ``a = h_l(x)`` of one module: ``a ← m·a``, which
is the constant (zero) perturbation in activation space. There is no upsampling, blur or
jitter; the mask has the activation's spatial size (shared by all channels, or one per
channel). A vision transformer's tokens B×T×D are masked on their grid: the mask m (h×w)
multiplies the patch tokens row by row, as the patch embedding reads the image, and leaves
the prefix (class, distillation) tokens as they are; tokens already on a grid, B×h×w×D, are
masked in place.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from maskscope.core.model.classifier import Classifier
from maskscope.core.optimisation.games import Game, MaskProblem
from maskscope.core.perturbation.fillers import Constant
from maskscope.core.perturbation.masks import Upsampler


def find_module(model: nn.Module, name: str | nn.Module) -> nn.Module:
    """The sub-module called ``name`` (as in ``model.named_modules()``), or ``name`` itself when
    it is a module of ``model``; a clear error otherwise."""
    if isinstance(name, nn.Module):
        if not any(module is name for module in model.modules()):
            raise ValueError(f"the {type(name).__name__} module given as layer is not part of the model")
        return name
    modules = dict(model.named_modules())
    if name not in modules:
        sample = ", ".join(list(modules)[1:8])
        raise ValueError(f"model has no layer {name!r}; layer names look like: {sample}, …")
    return modules[name]


def activation_shape(classifier: Classifier, images: torch.Tensor, module: nn.Module) -> torch.Size:
    """Shape of ``module``'s output for ``images``."""
    captured: list[torch.Size] = []
    handle = module.register_forward_hook(lambda _m, _i, out: captured.append(out.shape))
    try:
        with torch.no_grad():
            classifier.logits(images)
    finally:
        handle.remove()
    if not captured:
        raise ValueError("the chosen layer is not used in the model's forward pass")
    return captured[0]


class LayerMaskProblem(MaskProblem):
    """A game whose mask multiplies the output of ``module`` instead of the image."""

    def __init__(
        self,
        classifier: Classifier,
        images: torch.Tensor,
        target_weights: torch.Tensor,
        game: Game,
        module: nn.Module,
        regulariser: Callable[[torch.Tensor], torch.Tensor],
        prefix_tokens: int | None = None,
        channels_last: bool = False,
    ) -> None:
        super().__init__(classifier, images, target_weights, game, Constant(), Upsampler("nearest"), regulariser)
        self.module = module
        #: tokens B×T×D whose first ``prefix_tokens`` are left unmasked (``None``: a B×C×H×W activation)
        self.prefix_tokens = prefix_tokens
        #: a B×H×W×C activation (tokens on their grid, channels last)
        self.channels_last = channels_last

    def class_scores(self, masks: torch.Tensor, jitter: bool = True) -> torch.Tensor:
        handle = self.module.register_forward_hook(lambda _m, _i, out: self.masked(out, masks))
        try:
            scores = self.classifier.probabilities(self.images)
        finally:
            handle.remove()
        return (scores * self.target_weights).sum(1)

    def masked(self, activation: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """``m·a`` for masks B×1×h×w (or B×C×h×w) on the activation's layout."""
        if self.channels_last:
            return activation * masks.permute(0, 2, 3, 1)
        if self.prefix_tokens is None:
            return activation * masks
        prefix = activation[:, : self.prefix_tokens]
        patches = activation[:, self.prefix_tokens :] * masks.flatten(2).transpose(1, 2)
        return torch.cat([prefix, patches], 1)
