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

from typing import Any

from maskscope.core.perturbation.fillers import Filler
from maskscope.methods.meaningful_perturbation import MeaningfulPerturbation
from maskscope.methods.registry import register


@register
class MeaningfulPerturbationG(MeaningfulPerturbation):
    """MP-G with the G-removal paper's defaults (224-px input).

    Arguments as for :class:`~maskscope.methods.meaningful_perturbation.MeaningfulPerturbation`
    (by name; ``steps`` inpaint every image of the batch once each), and:

    Args:
        filler: the inpainter: ``"inpaint"`` (Navier–Stokes), ``"telea"``, ``"biharmonic"``
            or an :class:`~maskscope.core.perturbation.inpainters.Inpainter`.
        init: ``"uniform"`` (U(0, 1), seeded), ``"circular"``, ``"ones"`` or ``"half"``.

    The mask is not smoothed after upsampling (``smooth_sigma`` 0), masks the image (no
    ``layer``) and runs every step (no convergence stop).
    """

    name = "mp-g"
    binary_blend = True
    fixed_params = {"smooth_sigma": 0.0, "layer": None, "stop_tolerance": None, "stop_checks": 10}

    def __init__(self, *, filler: str | Filler = "inpaint", init: str = "uniform", **params: Any) -> None:
        super().__init__(filler=filler, init=init, **MeaningfulPerturbationG.fixed_params, **params)
