"""Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization", ICCV 2017).

For the feature maps ``A^k`` of a convolutional layer (Z = its number of positions) and the
class score ``y^c`` (the logit, before the softmax):

    α_k^c = (1/Z) · Σ_{i,j} ∂y^c/∂A^k_{ij},        L^c = ReLU(Σ_k α_k^c · A^k)

``L^c`` is upsampled bilinearly to the input size. The layer is named by ``layer``; by
default it is the last module (in execution order) whose output is a 4-D activation with
more than one position in each spatial direction — the paper's "last convolutional layer".
Images go ``batch_size`` at a time through the forward and backward pass. Every hook is
removed before the method returns, whether or not the call succeeds.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from maskscope.core.classifier import Classifier
from maskscope.core.explanation import Explanation
from maskscope.core.layer_masks import find_module
from maskscope.methods.base import Method
from maskscope.methods.gradient import SCORE_KINDS, chunks, target_score
from maskscope.methods.parameters import OneOf, at_least
from maskscope.methods.registry import register


def last_spatial_layer(classifier: Classifier, images: torch.Tensor) -> str:
    """Name of the last module to produce a B×C×H×W output with H, W > 1 on a dry run."""
    seen: list[str] = []
    handles = []

    def recorder(name: str):
        def hook(_module, _inputs, output):
            if isinstance(output, torch.Tensor) and output.dim() == 4 and min(output.shape[-2:]) > 1:
                seen.append(name)

        return hook

    try:
        for name, module in classifier.model.named_modules():
            if name:
                handles.append(module.register_forward_hook(recorder(name)))
        with torch.no_grad():
            classifier.logits(images[:1])
    finally:
        for handle in handles:
            handle.remove()
    if not seen:
        raise ValueError(f"model {classifier.name} has no module with a spatial 4-D output; name a layer")
    return seen[-1]


def layer_activations_and_gradients(
    classifier: Classifier, images: torch.Tensor, weights: torch.Tensor, module: nn.Module, score: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """``A`` (the module's output) and ``∂y^c/∂A`` for each image."""
    captured: list[torch.Tensor] = []

    def hook(_module, _inputs, output):
        captured.append(output)
        if isinstance(output, torch.Tensor):
            return output.clone()  # later in-place ops (e.g. ReLU(inplace=True)) must not alter A
        return None

    handle = module.register_forward_hook(hook)
    try:
        inputs = images.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            scores = target_score(classifier, inputs, weights, score)
            if not captured:
                raise ValueError("the chosen layer is not used in the model's forward pass")
            activations = captured[-1]
            if not isinstance(activations, torch.Tensor) or activations.dim() != 4:
                found = tuple(activations.shape) if isinstance(activations, torch.Tensor) else type(activations)
                raise ValueError(f"Grad-CAM needs a B×C×H×W activation; the chosen layer gives {found}")
            (gradients,) = torch.autograd.grad(scores.sum(), activations)
    finally:
        handle.remove()
    return activations.detach(), gradients


@register
class GradCAM(Method):
    """Grad-CAM on one convolutional layer.

    Args:
        layer: module name as in ``model.named_modules()``; ``None`` finds the last spatial one.
        score: ``"logit"`` (the paper's pre-softmax ``y^c``) or ``"probability"``.
        batch_size: images per forward/backward pass (default: 8 on a CPU, 64 on a GPU).
        progress: show a progress bar.
    """

    name = "gradcam"
    constraints = {"score": OneOf(*SCORE_KINDS), "batch_size": at_least(1)}

    def __init__(
        self, layer: str | None = None, score: str = "logit", batch_size: int | None = None, progress: bool = False
    ) -> None:
        self.layer = layer
        self.score = score
        self.batch_size = batch_size
        self.progress = progress

    def _explain(self, classifier, images, targets, weights, seed):
        layer = self.layer or last_spatial_layer(classifier, images)
        module = find_module(classifier.model, layer)
        maps = []
        for part in chunks(len(images), self.batch_size, images.device, self.progress, "Grad-CAM"):
            activations, gradients = layer_activations_and_gradients(
                classifier, images[part], weights[part], module, self.score
            )
            alpha = gradients.mean((2, 3), keepdim=True)
            maps.append(F.relu((alpha * activations).sum(1, keepdim=True)))
        cam = torch.cat(maps)
        saliency = F.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False)
        return Explanation(saliency=saliency[:, 0].cpu(), targets=targets, method=self.name, mask=cam.cpu())
