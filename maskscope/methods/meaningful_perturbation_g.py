"""MP-G: Meaningful Perturbation with an inpainter as the filler (Agarwal & Nguyen, ACCV 2020).

The deletion game of MP (:mod:`maskscope.methods.meaningful_perturbation`)::

    min_m  λ1·Σ_u |1 − m(u)| + λ2·Σ_u ‖∇m(u)‖₂^β + E_τ[ p_C(Φ(x(· − τ), b(m))) ]

with ``Φ(x, b) = b·x + (1 − b)·G(x, 1 − b)``: ``b(m)`` is the nearest-upsampled mask
binarised at ``max(0.5, (max + min)/2)``, ``G`` an inpainter re-run on the holes of ``b``
at every step. The blend uses the binary ``b`` in the forward pass and passes the gradient
straight through to the continuous mask. Paper defaults: 28×28 mask drawn from U(0, 1)
(seeded), nearest upsampling without smoothing, Adam lr 0.1, 300 steps, λ1 = 1e-4,
λ2 = 1e-2 on sums, β = 3, jitter 4. The saliency is ``1 − up(m)`` of the continuous mask.
The paper inpainted with DeepFill-v1; the default here is OpenCV's Navier–Stokes
(``filler="inpaint"``), and any inpainter (``"telea"``, ``"biharmonic"``, a
:class:`~maskscope.core.perturbation.inpainters.LearnedInpainter`) can take its place.
"""

from __future__ import annotations

from maskscope.core.perturbation.fillers import Filler
from maskscope.methods.meaningful_perturbation import MeaningfulPerturbation
from maskscope.methods.registry import register


@register
class MeaningfulPerturbationG(MeaningfulPerturbation):
    """MP-G with the G-removal paper's defaults (224-px input).

    Args:
        game: ``"deletion"`` (the paper's) or ``"preservation"``.
        resolution: side of the square mask parameter (28 for 224 px).
        filler: the inpainter: ``"inpaint"`` (Navier–Stokes), ``"telea"``, ``"biharmonic"``
            or an :class:`~maskscope.core.perturbation.inpainters.Inpainter`.
        l1_weight: λ1, weight of ``Σ|1 − m|`` (deletion) or ``Σ|m|`` (preservation).
        tv_weight: λ2, weight of the isotropic ``Σ‖∇m‖^β``.
        tv_beta: β.
        lr: Adam learning rate.
        steps: optimisation steps, each one inpainting every image of the batch once.
        jitter: largest translation τ of the image under the mask, in pixels (0 disables).
        init: ``"uniform"`` (U(0, 1), seeded), ``"circular"``, ``"ones"`` or ``"half"``.
        batch_size: perturbed images per forward pass during the circular search (default: 8 on a CPU, 64 on a GPU).
        progress: show a progress bar.
    """

    name = "mp-g"
    binary_blend = True

    def __init__(
        self,
        game: str = "deletion",
        resolution: int = 28,
        filler: str | Filler = "inpaint",
        l1_weight: float = 1e-4,
        tv_weight: float = 1e-2,
        tv_beta: float = 3.0,
        lr: float = 0.1,
        steps: int = 300,
        jitter: int = 4,
        init: str = "uniform",
        batch_size: int | None = None,
        progress: bool = False,
    ) -> None:
        super().__init__(
            game=game,
            resolution=resolution,
            smooth_sigma=0.0,
            filler=filler,
            l1_weight=l1_weight,
            tv_weight=tv_weight,
            tv_beta=tv_beta,
            lr=lr,
            steps=steps,
            jitter=jitter,
            init=init,
            layer=None,
            batch_size=batch_size,
            progress=progress,
        )
