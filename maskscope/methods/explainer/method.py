"""The trained explainer as a method: every class mask of an image from one forward pass.

Stalder et al. (NeurIPS 2022): a network ``E`` trained against the frozen classifier (see
:mod:`.training`) maps an image to C mask logits; ``s_c = σ(E(x)_c)`` is the mask of class
c (1 = the evidence the classifier uses for c). For targets T the saliency is the aggregated
mask ``max_{c∈T} s_c``. The explanation's ``mask`` holds all C class masks (B×C×H×W, in the
order of the classifier's classes); ``scores_after`` is the targets' probability on the
image masked by the aggregated mask in the classifier's normalised space (removed pixels take
its mean colour). When the classifier runs on a compiled engine, so does the network (its
export cached the same way, see :mod:`maskscope.core.model.engines`).

The classifier must be the one the checkpoint was trained for, fed the same way and with the
same class list (or class groups): a checkpoint records it and the method checks it.
:func:`maskscope.methods.explainer.checkpoint.classifier_for_checkpoint` feeds a loaded
model the recorded way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import torch

from maskscope.core.explanation import Explanation
from maskscope.core.model.engines import compiled_module
from maskscope.core.model.engines.fallback import EngineWithFallback
from maskscope.core.perturbation.fillers import Constant
from maskscope.core.progress import progress_bar
from maskscope.core.scoring.perturbations import score_perturbations
from maskscope.methods.base import Method
from maskscope.methods.explainer.checkpoint import load_checkpoint, network_from_checkpoint
from maskscope.methods.parameters import at_least
from maskscope.methods.registry import register


@register
class Explainer(Method):
    """Learned class masks (Stalder et al. 2022): all classes in one forward pass, from a trained checkpoint.

    Args:
        checkpoint: a ``best.pt`` (or ``last.pt``) written by ``maskscope train-explainer``.
        batch_size: images per forward pass of the explainer network.
        progress: show a progress bar.
    """

    name = "explainer"
    needs_gradients = False
    needs_checkpoint = True
    constraints = {"batch_size": at_least(1)}

    def __init__(
        self, checkpoint: str | os.PathLike | None = None, batch_size: int = 16, progress: bool = False
    ) -> None:
        self.checkpoint = checkpoint
        self.batch_size = batch_size
        self.progress = progress
        self._loaded: tuple[tuple, object, torch.nn.Module] | None = None
        self._compiled: tuple[torch.nn.Module, EngineWithFallback] | None = None

    def network(self, classifier) -> torch.nn.Module:
        """The checkpoint's network for ``classifier`` (loaded once, checked against the classifier)."""
        if self.checkpoint is None:
            raise ValueError("the explainer method needs checkpoint=PATH (train one with maskscope train-explainer)")
        path = Path(self.checkpoint)
        key = (str(path.resolve()), path.stat().st_mtime if path.is_file() else None)
        if self._loaded is None or self._loaded[0] != key or self._loaded[1] is not classifier:
            network = network_from_checkpoint(load_checkpoint(path, classifier.device), classifier)
            self._loaded = (key, classifier, network)
        return self._loaded[2]

    def __getstate__(self) -> dict:
        """A copy (for a worker process) compiles the network afresh at its first pass."""
        state = self.__dict__.copy()
        state["_compiled"] = None
        return state

    def network_pass(self, classifier) -> Callable[[torch.Tensor], torch.Tensor]:
        """The network's forward pass: on the classifier's compiled engine when it has one (its
        export cached like the classifier's; float32, or bfloat16 on OpenVINO), else in torch."""
        network = self.network(classifier)
        if classifier.engine == "torch" or classifier.device.type != "cpu":
            return network
        if self._compiled is None or self._compiled[0] is not network:
            self._compiled = (network, EngineWithFallback(classifier.engine, "explainer network"))
        compiled = self._compiled[1]
        if compiled.failure is not None:
            return network
        precision = "bfloat16" if classifier.engine == "openvino" and classifier.precision == "bfloat16" else "float32"

        def run(inputs: torch.Tensor) -> torch.Tensor:
            return compiled(inputs, lambda: compiled_module(network, classifier.engine, precision), network)

        return run

    @torch.no_grad()
    def class_masks(self, classifier, images: torch.Tensor) -> torch.Tensor:
        """All class masks ``s_c`` (B×C×H×W in [0, 1]) of pixel-space images B×3×H×W."""
        network = self.network_pass(classifier)
        chunks = progress_bar(images.split(self.batch_size), desc="explainer", disable=not self.progress, leave=False)
        with classifier.forward_only():
            return torch.cat([network(classifier.normalise(chunk, contiguous=True)).float().sigmoid() for chunk in chunks])

    def _explain(self, classifier, images, targets, target_weights, target_scores, seed):
        class_masks = self.class_masks(classifier, images)
        saliency = (class_masks * target_weights[:, :, None, None].to(class_masks)).amax(1)
        kept = score_perturbations(
            classifier, images, saliency[:, None], Constant(classifier.mean_colour), target_weights, batch_size=self.batch_size
        )[:, 0]
        return Explanation(
            saliency=saliency.cpu(), targets=targets, method=self.name, class_masks=class_masks.cpu(), scores_after=kept.cpu()
        )
