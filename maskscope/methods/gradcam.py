"""Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization", ICCV 2017).

For the feature maps ``A^k`` of a convolutional layer (Z = its number of positions) and the
class score ``y^c`` (the paper's is the logit, before the softmax: ``score="logit"``; the
default, as for every method, is the probability):

    α_k^c = (1/Z) · Σ_{i,j} ∂y^c/∂A^k_{ij},        L^c = ReLU(Σ_k α_k^c · A^k)

``L^c`` is upsampled bilinearly to the input size. The layer is named by ``layer`` (a name or
the module itself, or several); by default it is found by :func:`default_layer`: for a vision
transformer, the input norm of its last attention block, with its tokens on their grid
(:class:`TokenGrid`); for any other model the last module (in execution order) whose output is
a 4-D activation with more than one position in each spatial direction — the paper's "last
convolutional layer". A named layer of a vision transformer gives tokens B×T×D, which become
feature maps through ``reshape`` (:class:`TokenGrid`: the patch tokens on their grid).
Images go ``batch_size`` at a time through the forward and backward pass. Every hook is
removed before the method returns, whether or not the call succeeds.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from maskscope.core.explanation import Explanation
from maskscope.core.model.classifier import DEFAULT_SCORE, SCORES, Classifier
from maskscope.core.optimisation.layer_masks import find_module
from maskscope.methods.base import Method
from maskscope.methods.gradient import chunks, target_score
from maskscope.methods.parameters import OneOf, at_least, check_layer_names
from maskscope.methods.registry import register


def _dry_run(classifier: Classifier, images: torch.Tensor) -> list[tuple[str, nn.Module, torch.Size]]:
    """``(name, module, output shape)`` of every module that returns a tensor on a pass of one
    image, in the order they ran (a module called twice is listed at its last call)."""
    seen: dict[str, tuple[str, nn.Module, torch.Size]] = {}
    handles = []

    def recorder(name: str, module: nn.Module):
        def hook(_module, _inputs, output):
            if isinstance(output, torch.Tensor):
                seen.pop(name, None)
                seen[name] = (name, module, output.shape)

        return hook

    try:
        for name, module in classifier.module.named_modules():
            if name:
                handles.append(module.register_forward_hook(recorder(name, module)))
        with torch.no_grad():
            classifier.logits(images[:1])
    finally:
        for handle in handles:
            handle.remove()
    return list(seen.values())


def last_spatial_layer(classifier: Classifier, images: torch.Tensor) -> str:
    """Name of the last module to produce a B×C×H×W output with H, W > 1 on a dry run."""
    seen = [name for name, _, shape in _dry_run(classifier, images) if len(shape) == 4 and min(shape[-2:]) > 1]
    if not seen:
        raise ValueError(f"model {classifier.name} has no module with a spatial 4-D output; name a layer")
    return seen[-1]


def default_layer(classifier: Classifier, images: torch.Tensor) -> tuple[str, "TokenGrid | None"]:
    """Grad-CAM's layer when none is named, and the reshape its output needs.

    On one dry run of the first image:

    - a *vision transformer* is recognised by its attention blocks, modules with at least two
      ``LayerNorm`` children (pre-norm blocks: ``norm1``/``norm2`` in timm, ``layernorm_before``/
      ``layernorm_after`` in Hugging Face's ViT, DeiT and Swin) whose first norm to run returns
      tokens. The layer is that first norm of the block that runs last: the tokens the last block
      attends over (its own patch outputs no longer reach a class token). The tokens go on their
      grid through :class:`TokenGrid`, made by :func:`token_grid` for the image's size: B×T×D
      tokens drop the prefix (class, distillation, register) tokens, counted by the model's
      ``num_prefix_tokens`` (timm) or as the tokens left over from a grid of the image's aspect
      ratio (Hugging Face: 1 for ViT, 2 for DeiT, 0 for Swin, whose last stage is a grid of
      tokens already); B×h×w×D tokens (timm's Swin) are a grid as they are.
    - any other model (a CNN, or Hugging Face's ResNet and ConvNeXt, whose norms are one a
      block) gets :func:`last_spatial_layer`, the last convolutional layer.
    """
    ran = _dry_run(classifier, images)
    order = {name: index for index, (name, _, _) in enumerate(ran)}
    shapes = {name: shape for name, _, shape in ran}
    best: tuple[int, str] | None = None
    for block_name, block in classifier.module.named_modules():
        norms = [name for name, child in block.named_children() if isinstance(child, nn.LayerNorm)]
        prefix = f"{block_name}." if block_name else ""
        names = sorted((f"{prefix}{name}" for name in norms if f"{prefix}{name}" in order), key=order.__getitem__)
        if len(norms) >= 2 and names and len(shapes[names[0]]) in (3, 4):
            if best is None or order[names[0]] > best[0]:
                best = (order[names[0]], names[0])
    if best is None:
        return last_spatial_layer(classifier, images), None
    name = best[1]
    height, width = images.shape[-2:]
    return name, token_grid(shapes[name], (height, width), getattr(classifier.module, "num_prefix_tokens", None))


def token_grid(shape: Sequence[int], image_size: tuple[int, int], prefix_tokens: int | None = None) -> "TokenGrid":
    """The :class:`TokenGrid` of a token layer's output ``shape`` for images of ``image_size``.

    B×T×D tokens: with ``prefix_tokens`` given, the ``T − prefix_tokens`` others form an h×w
    grid of the image's aspect ratio (``h·W = w·H``); without it the fewest prefix tokens (at
    most 16) that leave such a grid. B×h×w×D tokens are a grid already.
    """
    if len(shape) == 4:
        return TokenGrid(prefix_tokens=0, grid=(int(shape[1]), int(shape[2])), channels_last=True)
    count = int(shape[1])
    height, width = image_size
    candidates = [prefix_tokens] if isinstance(prefix_tokens, int) else range(0, min(count, 17))
    for prefix in candidates:
        patches = count - prefix
        for rows in range(1, patches + 1):
            if patches % rows == 0 and rows * width == (patches // rows) * height:
                return TokenGrid(prefix_tokens=prefix, grid=(rows, patches // rows))
    raise ValueError(
        f"{count} tokens form no grid of a {height}×{width} image's aspect ratio; "
        "name a layer and give reshape=TokenGrid(prefix_tokens=..., grid=(h, w))"
    )


class TokenGrid:
    """A vision transformer's token outputs as feature maps, for Grad-CAM's ``reshape``.

    Tokens B×T×D become B×D×h×w: the first ``prefix_tokens`` (the class token, and a
    distillation or register tokens where the model has them) are dropped and the remaining
    ``h·w`` patch tokens are laid out row by row, as the patch embedding reads the image
    (``grid = (h, w)``, by default the square ``h = w = √(T − prefix_tokens)``). The same
    rearrangement is applied to the activations and to their gradients; it is linear, so
    ``∂y/∂(reshaped A)`` is the reshaped gradient. For a ViT that classifies from its class
    token, explain the tokens the last block attends over (e.g. ``blocks[-1].norm1``): the
    last block's own patch outputs no longer reach the class token, so their gradient is 0.
    With ``channels_last``, the tokens are a grid B×h×w×D already (timm's Swin) and are only
    put channels first.
    """

    def __init__(self, prefix_tokens: int = 1, grid: tuple[int, int] | None = None, channels_last: bool = False) -> None:
        self.prefix_tokens = prefix_tokens
        self.grid = grid
        self.channels_last = channels_last

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            if tokens.dim() != 4:
                raise ValueError(f"TokenGrid(channels_last=True) expects tokens B×h×w×D, got {tuple(tokens.shape)}")
            return tokens.permute(0, 3, 1, 2)
        if tokens.dim() != 3:
            raise ValueError(f"TokenGrid expects tokens B×T×D, got {tuple(tokens.shape)}")
        patches = tokens[:, self.prefix_tokens :]
        count = patches.shape[1]
        height, width = self.grid or (round(count**0.5),) * 2
        if height * width != count:
            raise ValueError(f"{count} patch tokens do not form a {height}×{width} grid; give grid=(h, w)")
        return patches.transpose(1, 2).reshape(len(tokens), -1, height, width)

    def __repr__(self) -> str:
        last = ", channels_last=True" if self.channels_last else ""
        return f"TokenGrid(prefix_tokens={self.prefix_tokens}, grid={self.grid}{last})"


def layer_activations_and_gradients(
    classifier: Classifier,
    images: torch.Tensor,
    target_weights: torch.Tensor,
    modules: Sequence[nn.Module],
    score: str,
    reshape: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``A`` (each module's output, through ``reshape`` when given) and ``∂y^c/∂A`` for each
    image, from one forward and one backward pass."""
    captured: dict[int, torch.Tensor] = {}

    def hook_for(index: int):
        def hook(_module, _inputs, output):
            captured[index] = output  # the last call of a module used twice
            if isinstance(output, torch.Tensor):
                return output.clone()  # later in-place ops (e.g. ReLU(inplace=True)) must not alter A
            return None

        return hook

    handles = [module.register_forward_hook(hook_for(i)) for i, module in enumerate(modules)]
    try:
        inputs = images.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            scores = target_score(classifier, inputs, target_weights, score)
            if len(captured) < len(modules):
                raise ValueError("a chosen layer is not used in the model's forward pass")
            outputs = [captured[i] for i in range(len(modules))]
            for output in outputs:
                if not isinstance(output, torch.Tensor) or (reshape is None and output.dim() != 4):
                    found = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output)
                    raise ValueError(
                        f"Grad-CAM needs a B×C×H×W activation; the chosen layer gives {found} "
                        "(for tokens B×T×D give reshape=TokenGrid())"
                    )
            gradients = torch.autograd.grad(scores.sum(), outputs)
    finally:
        for handle in handles:
            handle.remove()
    pairs = []
    for output, gradient in zip(outputs, gradients):
        activation, gradient = output.detach(), gradient
        if reshape is not None:
            activation, gradient = reshape(activation), reshape(gradient)
            if activation.dim() != 4:
                raise ValueError(f"reshape must give B×C×H×W feature maps, it gave {tuple(activation.shape)}")
        pairs.append((activation, gradient))
    return pairs


def scaled_to_unit(maps: torch.Tensor) -> torch.Tensor:
    """Each map of B×1×H×W divided by its own maximum (ReLU maps are ≥ 0; an all-zero map stays 0)."""
    peak = maps.flatten(1).amax(1).view(-1, 1, 1, 1)
    return torch.where(peak > 0, maps / peak.clamp_min(torch.finfo(maps.dtype).tiny), 0.0)


@register
class GradCAM(Method):
    """Grad-CAM on one layer or several, of a CNN or (through ``reshape``) a vision transformer.

    Args:
        layer: the layer as a name in ``model.named_modules()`` or the module itself, or a
            list of them; ``None`` finds one (:func:`default_layer`: a vision transformer's
            last block input tokens on their grid, else the last spatial layer). With several layers each
            layer's map is upsampled to the input, divided by its maximum and the maps are
            averaged, so that no layer dominates by the scale of its activations.
        score: ``"probability"`` (the default of every method) or ``"logit"`` (the paper's pre-softmax ``y^c``).
        batch_size: images per forward/backward pass (default: 8 on a CPU, 64 on a GPU).
        progress: show a progress bar.
        reshape: turns a layer's output into B×C×H×W feature maps, e.g. :class:`TokenGrid`
            for a vision transformer's B×T×D tokens; applied to activations and gradients.
    """

    name = "gradcam"
    constraints = {"score": OneOf(*SCORES), "batch_size": at_least(1)}

    def __init__(
        self,
        layer: str | nn.Module | Sequence[str | nn.Module] | None = None,
        score: str = DEFAULT_SCORE,
        batch_size: int | None = None,
        progress: bool = False,
        reshape: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.layer = layer
        self.score = score
        self.batch_size = batch_size
        self.progress = progress
        self.reshape = reshape

    def modules(self, classifier: Classifier, images: torch.Tensor) -> list[nn.Module]:
        """The modules whose outputs are explained, in the order given."""
        return self.layers_and_reshape(classifier, images)[0]

    def layers_and_reshape(
        self, classifier: Classifier, images: torch.Tensor
    ) -> tuple[list[nn.Module], Callable[[torch.Tensor], torch.Tensor] | None]:
        """The modules whose outputs are explained and the reshape of their outputs: those given,
        or :func:`default_layer`'s layer and its token grid (a reshape given wins over that grid)."""
        reshape = self.reshape
        if self.layer is None:
            name, grid = default_layer(classifier, images)
            layers: list = [name]
            reshape = reshape or grid
        elif isinstance(self.layer, (str, nn.Module)):
            layers = [self.layer]
        else:
            layers = list(self.layer)
        check_layer_names(classifier.module, layers)
        return [find_module(classifier.module, layer) for layer in layers], reshape

    @property
    def needs_hooks(self) -> bool:
        return True

    def _explain(self, classifier, images, targets, target_weights, target_scores, seed):
        modules, reshape = self.layers_and_reshape(classifier, images)
        size = images.shape[-2:]
        per_layer: list[list[torch.Tensor]] = [[] for _ in modules]
        for part in chunks(len(images), self.batch_size, images.device, self.progress, "Grad-CAM"):
            pairs = layer_activations_and_gradients(
                classifier, images[part], target_weights[part], modules, self.score, reshape
            )
            for maps, (activations, gradients) in zip(per_layer, pairs):
                alpha = gradients.mean((2, 3), keepdim=True)
                maps.append(F.relu((alpha * activations).sum(1, keepdim=True)))
        cams = [torch.cat(maps) for maps in per_layer]
        upsampled = [F.interpolate(cam, size=size, mode="bilinear", align_corners=False) for cam in cams]
        if len(cams) == 1:
            saliency, mask = upsampled[0], cams[0]
        else:
            saliency = torch.stack([scaled_to_unit(cam) for cam in upsampled]).mean(0)
            mask = torch.cat(upsampled, 1)
        return Explanation(saliency=saliency[:, 0].cpu(), targets=targets, method=self.name, coarse_map=mask.cpu())
