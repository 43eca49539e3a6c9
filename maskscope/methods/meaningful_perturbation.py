"""Meaningful Perturbation (Fong & Vedaldi, ICCV 2017).

Deletion game::

    min_m  λ1·Σ_u |1 − m(u)| + λ2·Σ_u ‖∇m(u)‖₂^β + E_τ[ p_C(Φ(x(· − τ), up(m))) ]

preservation game: ``λ1·Σ|m| + λ2·TV − E_τ[p_C(…)]``. ``m`` is a 28×28 mask, ``up`` is
nearest-neighbour enlargement to the image followed by a Gaussian of σ_m = 5 px, the filler
is a Gaussian blur of σ = 10 px, ``τ`` a random translation of the image (and its filler)
under the fixed mask by up to 4 px along each axis, drawn anew at every step. Adam (lr 0.1) for
300 steps, the mask clipped to [0, 1] after each. ``C`` may be a set of classes (top-5).
The saliency is ``1 − up(m)`` for deletion, ``up(m)`` for preservation.

Initialisation "circular" (supplement §2): centred discs of radius 0, 5, …, 175 px with
edges blurred by σ = 10; the deletion mask is ``1 − disc``. The smallest radius whose
normalised score ``(s_r − s_ref)/(s_orig − s_ref)`` falls below 0.01 (preservation: keeps
at least 0.99) is chosen; if none does, the mask starts fully perturbed.

With ``layer`` set, the mask multiplies that layer's activations instead (supplement §6.4):
constant zero perturbation, no upsampling, blur or jitter. ``layer="auto"`` takes the layer
Grad-CAM explains by default (:func:`~maskscope.methods.gradcam.default_layer`: a vision
transformer's last block input tokens, a CNN's last convolutional layer); a transformer's
tokens are masked on their patch grid, the class and distillation tokens left as they are.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from maskscope.core.model.classifier import Classifier
from maskscope.core.optimisation.descent import Adam, ConvergenceStop, Gradient, optimise_masks
from maskscope.core.optimisation.games import MaskProblem, get_game
from maskscope.core.optimisation.layer_masks import LayerMaskProblem, activation_shape, find_module
from maskscope.core.optimisation.regularisers import l1, total_variation
from maskscope.core.perturbation.filler_specs import resolve_filler
from maskscope.core.perturbation.jitter import Jitter
from maskscope.core.perturbation.masks import BinarisedUpsampler, Upsampler, disc_masks, downsample
from maskscope.core.scoring.perturbations import score_perturbations
from maskscope.methods.base import Method
from maskscope.methods.gradcam import TokenGrid, default_layer, token_grid
from maskscope.methods.parameters import OneOf, at_least, positive
from maskscope.methods.registry import register

INITS = ("circular", "ones", "half", "uniform")
#: ``layer``'s value for the layer Grad-CAM finds
AUTO_LAYER = "auto"


@register
class MeaningfulPerturbation(Method):
    """Meaningful Perturbation with the paper's defaults (224-px input).

    Args:
        game: ``"deletion"`` or ``"preservation"``.
        resolution: side of the square mask parameter (28 for 224 px).
        smooth_sigma: σ_m of the Gaussian after nearest upsampling, in image pixels.
        filler: removal content: ``"blur:10"``, ``"mean"``, ``"noise"`` or a ``Filler``.
        l1_weight: λ1, weight of ``Σ|1 − m|`` (deletion) or ``Σ|m|`` (preservation).
        tv_weight: λ2, weight of the isotropic ``Σ‖∇m‖^β``.
        tv_beta: β.
        lr: Adam learning rate.
        steps: optimisation steps.
        jitter: largest translation τ of the image under the mask, in pixels (0 disables).
        init: ``"circular"`` (the disc search), ``"ones"``, ``"half"`` or ``"uniform"``.
        layer: a module of the model (its name, or the module itself) whose activations are
            masked instead of the image, or ``"auto"`` for the layer Grad-CAM finds
            (:func:`~maskscope.methods.gradcam.default_layer`); tokens B×T×D are masked on
            their patch grid. Layer masks start from ``init="ones"``, ``"half"`` or ``"uniform"``.
        batch_size: perturbed images per forward pass during the circular search (default: 8 on a CPU, 64 on a GPU).
        stop_tolerance: the convergence stop: an image stops once its mask has moved by less
            than this (the largest ``|Δm|`` of a step) for ``stop_checks`` successive steps
            (``None``: off, the default; at 0.01 it stopped no photo of 16, see docs/optimisation-speed.md).
        stop_checks: the successive still steps the convergence stop waits for.
        progress: show a progress bar.
    """

    name = "mp"
    constraints = {
        "game": OneOf("deletion", "preservation"), "init": OneOf(*INITS), "resolution": at_least(1),
        "smooth_sigma": at_least(0), "l1_weight": at_least(0), "tv_weight": at_least(0), "tv_beta": positive(), "lr": positive(),
        "steps": at_least(1), "jitter": at_least(0), "batch_size": at_least(1), "stop_tolerance": at_least(0),
        "stop_checks": at_least(1),
    }
    #: blend with the binarised ``up(m)`` and a straight-through gradient (MP-G)
    binary_blend: ClassVar[bool] = False
    #: the game played: always set (the base class's is optional)
    game: str

    def __init__(
        self,
        game: str = "deletion",
        resolution: int = 28,
        smooth_sigma: float = 5.0,
        filler="blur:10",
        l1_weight: float = 1e-4,
        tv_weight: float = 1e-2,
        tv_beta: float = 3.0,
        lr: float = 0.1,
        steps: int = 300,
        jitter: int = 4,
        init: str = "circular",
        layer: str | nn.Module | None = None,
        batch_size: int | None = None,
        stop_tolerance: float | None = None,
        stop_checks: int = 10,
        progress: bool = False,
    ) -> None:
        self.game = game
        self.resolution = resolution
        self.smooth_sigma = smooth_sigma
        self.filler = filler
        self.l1_weight = l1_weight
        self.tv_weight = tv_weight
        self.tv_beta = tv_beta
        self.lr = lr
        self.steps = steps
        self.jitter = jitter
        self.init = init
        self.layer = layer
        self.batch_size = batch_size
        self.stop_tolerance = stop_tolerance
        self.stop_checks = stop_checks
        self.progress = progress

    @classmethod
    def localisation(cls, **overrides) -> "MeaningfulPerturbation":
        """The paper's weak-localisation setting: λ1 = 1e-3, β = 2 (use with target "topk-sum:5")."""
        return cls(**{"l1_weight": 1e-3, "tv_beta": 2.0, **overrides})

    def regulariser(self, masks: torch.Tensor) -> torch.Tensor:
        """``λ1·Σ|m − v| + λ2·Σ‖∇m‖^β`` per mask (v = 1 for deletion, 0 for preservation)."""
        towards = get_game(self.game).l1_towards
        return self.l1_weight * l1(masks, towards, "sum") + self.tv_weight * total_variation(masks, self.tv_beta, True, "sum")

    @property
    def needs_hooks(self) -> bool:
        return self.layer is not None

    def _explain(self, classifier, images, targets, target_weights, target_scores, seed):
        game = get_game(self.game)
        if self.layer is not None:
            problem, mask_shape = self._layer_problem(classifier, images, target_weights, self.layer)
        else:
            generator = torch.Generator().manual_seed(seed)
            filler = resolve_filler(self.filler, classifier.mean_colour)
            upsampler = Upsampler("nearest", self.smooth_sigma)
            in_blend = BinarisedUpsampler(upsampler) if self.binary_blend else upsampler
            problem = MaskProblem(
                classifier, images, target_weights, game, filler, in_blend, self.regulariser, Jitter(self.jitter, generator)
            )
            mask_shape = (1, self.resolution, self.resolution)
        init = self._initial_masks(problem, mask_shape, seed)
        converge = None if self.stop_tolerance is None else ConvergenceStop(self.stop_tolerance, self.stop_checks)
        result = optimise_masks(
            problem, init, Gradient(), Adam(self.lr), self.steps, progress=self.progress, description=self.name,
            converge=converge,
        )
        with torch.no_grad():
            scores_after = problem.class_scores(result.masks, jitter=False)
            if self.layer is None:
                full = upsampler(result.masks, problem.size)
            else:
                spatial = result.masks.mean(1, keepdim=True)
                full = Upsampler("bilinear")(spatial, problem.size)
        return self._optimised(targets, game.saliency(full)[:, 0], result, scores_after)

    def _layer_problem(self, classifier: Classifier, images: torch.Tensor, target_weights: torch.Tensor, layer: str | nn.Module):
        grid: TokenGrid | None = None
        if isinstance(layer, str) and layer == AUTO_LAYER:
            layer, grid = default_layer(classifier, images)
        module = find_module(classifier.module, layer)
        shape = activation_shape(classifier, images, module)
        if grid is None and len(shape) == 3:
            grid = token_grid(shape, (images.shape[-2], images.shape[-1]), getattr(classifier.module, "num_prefix_tokens", None))
        if grid is None and len(shape) != 4:
            raise ValueError(f"layer {layer!r} gives activations of shape {tuple(shape)}; need B×C×H×W or tokens B×T×D")
        if grid is None:
            problem = LayerMaskProblem(classifier, images, target_weights, get_game(self.game), module, self.regulariser)
            return problem, (1, shape[2], shape[3])
        rows, columns = grid.grid if grid.grid is not None else (shape[1], shape[2])
        problem = LayerMaskProblem(
            classifier, images, target_weights, get_game(self.game), module, self.regulariser,
            prefix_tokens=None if grid.channels_last else grid.prefix_tokens, channels_last=grid.channels_last,
        )
        return problem, (1, rows, columns)

    def _initial_masks(self, problem: MaskProblem, mask_shape: tuple[int, ...], seed: int) -> torch.Tensor:
        batch = problem.images.shape[0]
        device = problem.images.device
        if self.init == "ones":
            return torch.ones(batch, *mask_shape, device=device)
        if self.init == "half":
            return torch.full((batch, *mask_shape), 0.5, device=device)
        if self.init == "uniform":
            # one generator per image, so an image gets the same start alone or in a batch
            draws = [torch.rand(mask_shape, generator=torch.Generator().manual_seed(seed)) for _ in range(batch)]
            return torch.stack(draws).to(device)
        if isinstance(problem, LayerMaskProblem):
            raise ValueError("the circular initialisation needs an image mask; use init='ones' with layer masks")
        return self._circular_masks(problem, mask_shape)

    def _circular_masks(self, problem: MaskProblem, mask_shape: tuple[int, ...]) -> torch.Tensor:
        """The supplement's disc search, all radii scored in batches."""
        height, width = problem.size
        radii = torch.arange(0, 180, 5)
        discs = disc_masks(radii, (height, width), edge_sigma=10.0)[:, 0]  # R×H×W
        candidates = 1 - discs if problem.game.removes else discs
        bounds = torch.stack([torch.zeros(height, width), torch.ones(height, width)])
        masks = torch.cat([bounds, candidates]).to(problem.images)
        scores = score_perturbations(
            problem.classifier,
            problem.images,
            masks,
            problem.filler,
            problem.target_weights,
            batch_size=self.batch_size,
            upsampler=Upsampler("nearest"),
        )
        reference, original, per_radius = scores[:, :1], scores[:, 1:2], scores[:, 2:]
        normalised = (per_radius - reference) / (original - reference).clamp(min=1e-8)
        good = normalised < 0.01 if problem.game.removes else normalised >= 0.99
        first = good.float().argmax(1)
        chosen = candidates.to(problem.images)[first]
        chosen[~good.any(1)] = 0.0  # no radius works: start fully perturbed
        rows, cols = mask_shape[-2:]
        return downsample(chosen[:, None], (rows, cols))
