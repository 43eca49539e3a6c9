"""Filler specs: the short strings that name a filler, such as ``"blur:10"``, ``"mean"`` or ``"inpaint"``.

:func:`resolve_filler` turns a spec into a :class:`~maskscope.core.perturbation.fillers.Filler`. It knows
both the plain fillers (:mod:`maskscope.core.perturbation.fillers`) and the inpainters
(:mod:`maskscope.core.perturbation.inpainters`), so it lives in a module of its own that depends on both:
the fillers module does not know the inpainters, and the inpainters build on the fillers.
The inpainters (and with them OpenCV) are imported only when a spec names one.
"""

from __future__ import annotations

from typing import Sequence

import torch

from maskscope.core.perturbation.fillers import Blur, Constant, Filler, Noise
from maskscope.errors import MaskscopeValueError


def resolve_filler(spec: str | Filler, mean_colour: Sequence[float] | torch.Tensor) -> Filler:
    """Build a filler from a short spec: ``blur[:σ]``, ``mean``, ``black``, ``gray``,
    ``noise[:σ]``, the inpainters ``inpaint`` (= ``ns``), ``ns[:radius]``, ``telea[:radius]``
    and ``biharmonic``, or an existing :class:`Filler`.

    ``mean`` is the classifier's mean colour (the zero image in its normalised space);
    ``ns`` and ``telea`` are OpenCV's Navier–Stokes and Telea inpainting (radius 3 px by
    default), ``biharmonic`` scikit-image's (see :mod:`maskscope.core.perturbation.inpainters`).
    """
    if isinstance(spec, Filler):
        return spec
    name, _, argument = str(spec).partition(":")
    name = name.strip().lower()
    if name == "blur":
        return Blur(_number(argument, 10.0, spec))
    if name in ("mean", "zero"):
        return Constant(torch.as_tensor(mean_colour).flatten())
    if name == "black":
        return Constant((0.0, 0.0, 0.0))
    if name in ("gray", "grey"):
        return Constant((0.5, 0.5, 0.5))
    if name == "noise":
        return Noise(_number(argument, 0.2, spec))
    from maskscope.core.perturbation.inpainters import BiharmonicInpainter, OpenCVInpainter  # lazily: it imports cv2

    if name in ("inpaint", "ns", "telea"):
        method = "ns" if name == "inpaint" else name
        return OpenCVInpainter(method, _number(argument, 3.0, spec))
    if name == "biharmonic":
        return BiharmonicInpainter()
    raise MaskscopeValueError(
        f"unknown filler {spec!r}; use blur[:sigma], mean, black, gray, noise[:sigma], "
        "inpaint, ns[:radius], telea[:radius] or biharmonic"
    )


def _number(argument: str, default: float, spec: str) -> float:
    """The positive number after ``:`` in a filler spec (``blur:10``), or ``default`` without one."""
    try:
        value = float(argument) if argument else default
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise MaskscopeValueError(f"filler {spec!r}: expected a positive number after ':', got {argument!r}")
    return value
