"""Score-CAM (Wang et al., "Score-CAM: Score-Weighted Visual Explanations for Convolutional
Neural Networks", CVPR Workshops 2020).

A class activation map whose channel weights come from forward passes instead of gradients.
For the feature maps ``A_l^k`` of a layer (k = 1 … K), each map is upsampled to the input
size and min–max normalised into a mask

    H_l^k = (up(A_l^k) − min up(A_l^k)) / (max up(A_l^k) − min up(A_l^k) + ε),   ε = 10⁻⁸

(a constant map gives the empty mask), and channel k is weighted by the target's score on the
image seen through that mask, ``x ∘ H_l^k``: the pixels the mask removes take the filler's
content, by default the classifier's mean colour, which is the paper's product with the
normalised input (zero in normalised space). Then

    S_k = f_c(x ∘ H_l^k),    α_k = S_k   (or α = softmax_k(S) with ``channel_softmax``),
    L^c = ReLU(Σ_k α_k · A_l^k)

and ``L^c`` is upsampled bilinearly to the input size. The paper's Eq. (3)–(4) weight by the
increase ``f_c(x ∘ H^k) − f_c(x_b)`` over a baseline image and its Algorithm 1 passes the
increases through a softmax over channels, under which the baseline cancels. The authors'
code weights by the softmax probability of the class, without baseline or channel softmax (the
default here, where ``score="probability"`` is every method's default); pytorch-grad-cam's
``ScoreCAM`` takes the softmax over channels of the target logits, ``score="logit",
channel_softmax=True``, and then matches this map (``benchmarks/agreement/score_cam_vs_grad_cam.py``).
The masks are upsampled with ``align_corners=True``, as pytorch-grad-cam does (the authors'
code: ``False``).

The layer is chosen as for Grad-CAM (:func:`maskscope.methods.gradcam.default_layer`): by
default a vision transformer's last block input tokens on their patch grid, else the last
module whose output is a 4-D activation with more than one position in each spatial
direction; tokens of another layer become feature maps through ``reshape``
(:class:`~maskscope.methods.gradcam.TokenGrid`). The activations come from one forward pass
with a hook; the K masked images of each image are scored ``batch_size`` at a time by the
classifier's inference engine (forward passes only), the constant channels, whose masks are
all empty, by one pass on the fully filled image.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from maskscope.core.explanation import Explanation
from maskscope.core.model.classifier import DEFAULT_SCORE, SCORES, Classifier
from maskscope.core.optimisation.layer_masks import find_module
from maskscope.core.perturbation.filler_specs import resolve_filler
from maskscope.core.perturbation.fillers import Filler
from maskscope.core.scoring.perturbations import score_mask_stream, score_perturbations
from maskscope.errors import MaskscopeValueError
from maskscope.methods.base import Method
from maskscope.methods.gradcam import default_layer
from maskscope.methods.gradient import chunks
from maskscope.methods.parameters import OneOf, at_least
from maskscope.methods.registry import register

#: ε of the masks' min–max normalisation (pytorch-grad-cam's)
MASK_EPSILON = 1e-8


def layer_activations(
    classifier: Classifier,
    images: torch.Tensor,
    module: nn.Module,
    reshape: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """The output of ``module`` (its last call) for ``images``, through ``reshape`` when
    given: B×C×h×w, from one forward pass without gradients. The hook is removed before
    returning, whether or not the pass succeeds."""
    captured: dict[str, torch.Tensor] = {}

    def hook(_module, _inputs, output):
        if isinstance(output, torch.Tensor):
            captured["output"] = output.detach().clone()  # later in-place ops must not alter A

    handle = module.register_forward_hook(hook)
    try:
        with torch.no_grad():
            classifier.logits(images)
    finally:
        handle.remove()
    if "output" not in captured:
        raise MaskscopeValueError("the chosen layer gives no tensor in the model's forward pass; name another layer")
    activations = captured["output"]
    if reshape is not None:
        activations = reshape(activations)
    if activations.dim() != 4:
        raise MaskscopeValueError(
            f"Score-CAM needs a B×C×H×W activation; the chosen layer gives {tuple(activations.shape)} "
            "(for tokens B×T×D give reshape=TokenGrid())"
        )
    return activations.float()


def channel_masks(activations: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Masks ``H^k`` n×H×W of feature maps n×h×w: each upsampled bilinearly (corners aligned)
    to ``size`` and min–max normalised, ``(A − min A) / (max A − min A + ε)``."""
    upsampled = F.interpolate(activations[:, None], size=size, mode="bilinear", align_corners=True)[:, 0]
    low = upsampled.amin((1, 2), keepdim=True)
    high = upsampled.amax((1, 2), keepdim=True)
    return (upsampled - low) / (high - low + MASK_EPSILON)


@register
class ScoreCAM(Method):
    """Score-CAM: channels of a layer weighted by the target's score on the image they unmask.

    Args:
        layer: the layer as a name in ``model.named_modules()`` or the module itself;
            ``None`` finds one as Grad-CAM does (:func:`~maskscope.methods.gradcam.default_layer`).
        score: the class score ``f_c``, ``"probability"`` (the default of every method, and
            the authors' code) or ``"logit"``.
        channel_softmax: weight the channels by the softmax over channels of their scores
            (the paper's Algorithm 1, pytorch-grad-cam) instead of by the scores themselves.
        filler: content of the pixels a mask removes (``"mean"``: the classifier's mean colour,
            the paper's zero in normalised space).
        batch_size: images per pass, masked images and activation passes alike
            (default: 8 on a CPU, 64 on a GPU).
        progress: show a progress bar.
        reshape: turns the layer's output into B×C×H×W feature maps, e.g.
            :class:`~maskscope.methods.gradcam.TokenGrid` for a vision transformer's tokens.

    The explanation's ``coarse_map`` holds ``L^c`` on the layer's grid, B×1×h×w.
    """

    name = "scorecam"
    #: the activations come from the torch module's forward pass: a forward-only callable will not do
    needs_gradients = True
    constraints = {"score": OneOf(*SCORES), "batch_size": at_least(1)}

    def __init__(
        self,
        layer: str | nn.Module | None = None,
        score: str = DEFAULT_SCORE,
        channel_softmax: bool = False,
        filler: str | Filler = "mean",
        batch_size: int | None = None,
        progress: bool = False,
        reshape: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.layer = layer
        self.score = score
        self.channel_softmax = channel_softmax
        self.filler = filler
        self.batch_size = batch_size
        self.progress = progress
        self.reshape = reshape

    def module_and_reshape(
        self, classifier: Classifier, images: torch.Tensor
    ) -> tuple[nn.Module, Callable[[torch.Tensor], torch.Tensor] | None]:
        """The module whose output is explained and the reshape of its output: those given, or
        Grad-CAM's :func:`~maskscope.methods.gradcam.default_layer` and its token grid (a reshape
        given wins over that grid)."""
        if self.layer is not None:
            return find_module(classifier.module, self.layer), self.reshape
        name, grid = default_layer(classifier, images)
        return find_module(classifier.module, name), self.reshape or grid

    def channel_scores(
        self, classifier: Classifier, image: torch.Tensor, activations: torch.Tensor, target_weights: torch.Tensor, filler: Filler
    ) -> torch.Tensor:
        """``S_k = f_c(x ∘ H^k)`` for the K feature maps K×h×w of one image 1×3×H×W (K scores)."""
        size = (image.shape[-2], image.shape[-1])
        flat = activations.flatten(1)
        live = (flat.amax(1) > flat.amin(1)).nonzero().flatten()
        scores = torch.empty(len(activations), device=image.device)
        if len(live) < len(activations):  # constant maps: the empty mask, the fully filled image
            empty = torch.zeros(1, *size, device=image.device)
            scores[:] = score_perturbations(classifier, image, empty, filler, target_weights, score=self.score)[0, 0]

        def masks_of(chunk: slice) -> torch.Tensor:
            return channel_masks(activations[live[chunk]], size)

        stream = score_mask_stream(
            classifier, image, len(live), masks_of, filler, target_weights, self.batch_size, self.progress, "Score-CAM",
            self.score,
        )
        for chunk, _, chunk_scores in stream:
            scores[live[chunk]] = chunk_scores[0]
        return scores

    @property
    def needs_hooks(self) -> bool:
        return True

    def _explain(self, classifier, images, targets, target_weights, target_scores, seed):
        module, reshape = self.module_and_reshape(classifier, images)
        filler = resolve_filler(self.filler, classifier.mean_colour)
        parts = chunks(len(images), self.batch_size, images.device, False, "Score-CAM")
        activations = torch.cat([layer_activations(classifier, images[part], module, reshape) for part in parts])
        cams = []
        for index in range(len(images)):
            image, weight = images[index : index + 1], target_weights[index : index + 1]
            scores = self.channel_scores(classifier, image, activations[index], weight, filler)
            alpha = scores.softmax(0) if self.channel_softmax else scores
            cams.append(F.relu((alpha[:, None, None] * activations[index]).sum(0, keepdim=True)))
        coarse = torch.stack(cams)
        saliency = F.interpolate(coarse, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        return Explanation(saliency=saliency.cpu(), targets=targets, method=self.name, coarse_map=coarse.cpu())
