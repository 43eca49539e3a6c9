"""The base class of every explanation method.

Methods follow the scikit-learn convention: every parameter is an argument of ``__init__``
and kept as an attribute of the same name; the work happens in :meth:`Method.explain` (also
the call operator), which takes a classifier, a batch of images and the targets, and returns
an :class:`~maskscope.core.explanation.Explanation`. Nothing happens on import.

Every construction is checked first against the method's parameter schema (the ``__init__``
type hints plus the class's ``constraints``, see :mod:`maskscope.methods.parameters`), so a
bad value fails with one line naming it, from Python and from the command line alike. A
variant of a method states only what differs from its parent and passes the rest on (see
:func:`~maskscope.methods.parameters.method_signature`).
"""

from __future__ import annotations

import os
import time
from typing import Any, ClassVar, Sequence

import torch

from maskscope.core.explanation import Explanation
from maskscope.core.model.classifier import DEFAULT_SCORE, Classifier, gradient_passes
from maskscope.core.model.targets import TargetSpec, map_names, maps_per_class, resolve_targets
from maskscope.core.model.targets import target_weights as multi_hot
from maskscope.core.optimisation.descent import OptimisationResult
from maskscope.core.optimisation.games import get_game, goal_met
from maskscope.core.scoring.perturbations import default_batch_size
from maskscope.data.images import ImageLike, check_pixel_range, image_name, load_image, unique_names
from maskscope.methods.parameters import Constraint, check_parameters, method_signature
from maskscope.methods.precision import fast_gradient_precision


class Method:
    """Base class: subclasses set ``name`` and implement :meth:`_explain`."""

    name: ClassVar[str] = ""
    #: whether the method needs the classifier's gradients (a forward-only callable will not do)
    needs_gradients: ClassVar[bool] = True
    #: whether the method needs a trained checkpoint (``bench --methods all`` leaves such methods out)
    needs_checkpoint: ClassVar[bool] = False
    #: ranges and choices of parameters, beyond what the ``__init__`` type hints say (merged along the MRO)
    constraints: ClassVar[dict[str, Constraint]] = {}
    #: a variant's parameters of its parent that it does not take, at the values it passes on (merged along the MRO)
    fixed_params: ClassVar[dict[str, Any]] = {}

    #: whether the map varies pixel by pixel (gradients): figures clip it at a percentile to show it
    pixel_level: ClassVar[bool] = False
    #: the game a mask optimisation plays (an instance may set it from a parameter); with one,
    #: every explanation records whether its goal was met
    game: str | None = None

    # Parameters the base class reads; a method that takes one states it in its ``__init__``.
    #: perturbed images (or path points, or rows) per classifier pass; ``None``: the device's
    #: default (:func:`~maskscope.core.scoring.perturbations.default_batch_size`)
    batch_size: int | None = None
    #: the class score explained and reported, ``"probability"`` or ``"logit"``; the
    #: optimisation methods' games are defined on the probability
    score: str = DEFAULT_SCORE
    #: show a progress bar with the time left
    progress: bool = False

    def __new__(cls, *args: Any, **kwargs: Any) -> "Method":
        check_parameters(cls, args, kwargs)
        return super().__new__(cls)

    @property
    def needs_hooks(self) -> bool:
        """Whether the method, with its parameters, hooks the model's layers (which a TorchScript
        model cannot take): Grad-CAM, Score-CAM, MP given a ``layer``, FGVis with its defense."""
        return False

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters and their current values."""
        return {name: getattr(self, name) for name in method_signature(type(self)).parameters}

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The constructor's default parameters."""
        return {name: p.default for name, p in method_signature(cls).parameters.items()}

    def explain(
        self,
        classifier: Classifier,
        images: torch.Tensor | Sequence[ImageLike],
        target: TargetSpec = "top1",
        seed: int = 0,
    ) -> Explanation:
        """Explain a batch of images for the target(s).

        Args:
            classifier: the model wrapper.
            images: a tensor B×3×H×W in [0, 1] already in the classifier's view, or a list
                of images (paths, PIL, arrays) that are loaded and put in its view; the
                explanation is then named after the files and records their paths.
            target: ``"top1"``, ``"topk:K"`` (K maps an image, one per class, named
                ``NAME_top1`` …), ``"topk-sum:K"`` (one map of the K classes' summed score),
                an index, a class name, or one per image.
            seed: fixes every random choice of the method.

        Under a ``precision="fast"`` classifier, the gradient passes run at reduced precision
        only where the method is validated for it (:mod:`maskscope.methods.precision`); the
        record's ``engine`` says at which precision they ran (``gradient_precision``).
        """
        if self.needs_gradients:
            classifier.require_gradients(type(self).__name__)
        if self.needs_hooks:
            classifier.require_hooks(type(self).__name__)
        batch = prepare_images(images, classifier)
        start = time.perf_counter()
        scores = self._scores(classifier, batch)
        rows, targets = maps_per_class(target, resolve_targets(target, classifier, scores))
        count = len(batch)
        if len(rows) != count:  # "topk:K": a map per class, each image repeated for its classes
            batch, scores = batch[rows], scores[rows]
        target_weights = multi_hot(targets, scores.shape[1], device=batch.device)
        target_scores = (scores * target_weights).sum(1)
        with gradient_passes(fast_gradient_precision(self.name, classifier.device)) as ran:
            explanation = self._explain(classifier, batch, targets, target_weights, target_scores, seed)
        explanation.scores_before = target_scores.cpu()
        explanation.score = self.score
        explanation.pixel_level = self.pixel_level
        record_goal(explanation, self.game)
        explanation.target_names = [[classifier.class_names[c] for c in classes] for classes in targets]
        explanation.params = self.get_params()
        explanation.seconds = time.perf_counter() - start
        names = [f"image_{i}" for i in range(count)]
        sources: list[str | None] = [None] * count
        if not isinstance(images, torch.Tensor):
            names = unique_names([image_name(image, i) for i, image in enumerate(images)])
            sources = [str(image) if isinstance(image, (str, os.PathLike)) else None for image in images]
        explanation.names, explanation.sources = map_names(names, rows), [sources[row] for row in rows]
        explanation.images = batch.detach().cpu()
        explanation.engine = classifier.engine_record()
        if ran:
            explanation.engine["gradient_precision"] = "+".join(sorted(ran))
        return explanation

    __call__ = explain

    @torch.no_grad()
    def _scores(self, classifier: Classifier, images: torch.Tensor) -> torch.Tensor:
        """Class scores B×C of the images (:attr:`score`), ``batch_size`` images a pass."""
        size = default_batch_size(self.batch_size, images.device)
        parts = range(0, len(images), size)
        return torch.cat([classifier.class_scores(images[i : i + size], self.score) for i in parts])

    def _explain(
        self,
        classifier: Classifier,
        images: torch.Tensor,
        targets: list[list[int]],
        target_weights: torch.Tensor,
        target_scores: torch.Tensor,
        seed: int,
    ) -> Explanation:
        """The explanation of ``images`` (B×3×H×W on the classifier's device) for ``targets``
        (class indices per image), whose summed score is ``(scores · target_weights).sum(1)``
        with ``target_weights`` the multi-hot B×C matrix; ``target_scores`` (B, in ``score``
        units) is that sum on the images themselves, already computed, for a method that
        compares perturbed scores with the unperturbed ones."""
        raise NotImplementedError

    def _optimised(
        self, targets: list[list[int]], saliency: torch.Tensor, result: OptimisationResult, scores_after: torch.Tensor
    ) -> Explanation:
        """The explanation of a mask optimisation: its map B×H×W, the optimised masks, the
        target scores under them and the objective per step, on the CPU."""
        return Explanation(
            saliency=saliency.cpu(),
            targets=targets,
            method=self.name,
            mask=result.masks.cpu(),
            scores_after=scores_after.cpu(),
            history=result.objective.cpu(),
        )

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


def record_goal(explanation: Explanation, game: str | None) -> None:
    """Fill ``kept_area`` (from the saliency, when the method did not) and ``goal_met`` of a
    game-playing method's explanation, by the rule of :func:`maskscope.core.optimisation.games.goal_met`."""
    if game is None or explanation.scores_before is None or explanation.scores_after is None:
        return
    rules = get_game(game)
    if explanation.kept_area is None:
        saliency = explanation.saliency.flatten(1)
        explanation.kept_area = (1 - saliency if rules.removes else saliency).mean(1)
    explanation.goal_met = goal_met(rules, explanation.scores_before, explanation.scores_after, explanation.kept_area)


def prepare_images(images: torch.Tensor | Sequence[ImageLike], classifier: Classifier) -> torch.Tensor:
    """A batch B×3×H×W on the classifier's device, loading and viewing images if needed."""
    if isinstance(images, torch.Tensor):
        batch = images if images.dim() == 4 else images[None]
        if batch.shape[1] != 3:
            raise ValueError(f"images must be B×3×H×W, got {tuple(batch.shape)}")
        check_pixel_range(batch)
    else:
        side = classifier.view.decode_side
        batch = torch.stack([classifier.view(load_image(image, min_side=side)) for image in images])
    return batch.float().to(classifier.device)
