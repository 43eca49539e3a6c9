"""ROAD's noisy linear imputation (Rong, Leemann, Borisov, Kasneci, Kasneci, ICML 2022).

ROAD ("Remove And Debias") replaces removed pixels by a value predicted from their
neighbours instead of a constant, so that the *shape* of the removed region does not tell the
classifier which pixels were removed (the class information leaking through the mask that
makes deletion curves of different methods disagree). Each removed pixel ``u`` takes the
weighted mean of its neighbours ``N(u)`` inside the image, removed or not,

    x̂_u = Σ_{v∈N(u)} w_{v−u} · x̂_v / Σ_{v∈N(u)} w_{v−u},
    w = 1/6 for the 4 direct neighbours, 1/12 for the 4 diagonal ones,

where ``x̂_v = x_v`` for a kept pixel. The conditions of all removed pixels form one sparse
linear system (for every channel, per image; the images of a batch form one block-diagonal
system), solved jointly, and Gaussian noise is added to the solution:

    x̃_u = x̂_u + σ·ε_u,  ε_u ~ N(0, 1)

σ = 0.01 in the classifier's input space is the paper's and both reference implementations'
default (pytorch-grad-cam's ``NoisyLinearImputer`` and Quantus's ``noisy_linear_imputation``
apply it to the normalised tensor). The imputation itself commutes with a per-channel affine
normalisation (the weights of each equation sum to 1), so it is computed in pixel space and
the noise is given per channel in pixel units (σ·std_c for a classifier normalising by std_c).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
import torch

from maskscope.core.perturbation.inpainters import Inpainter
from maskscope.errors import MaskscopeValueError

#: (row offset, column offset, weight) of the 8 neighbours in ROAD's imputation
NEIGHBOUR_WEIGHTS: tuple[tuple[int, int, float], ...] = (
    (-1, 0, 1 / 6), (1, 0, 1 / 6), (0, -1, 1 / 6), (0, 1, 1 / 6),
    (-1, -1, 1 / 12), (-1, 1, 1 / 12), (1, -1, 1 / 12), (1, 1, 1 / 12),
)

#: σ of ROAD's noise in the classifier's (normalised) input space
ROAD_NOISE = 0.01


def linear_imputation(images: torch.Tensor, holes: torch.Tensor) -> torch.Tensor:
    """Fill the holes of images B×C×H×W by ROAD's linear imputation (no noise).

    Args:
        images: B×C×H×W.
        holes: B×H×W or B×1×H×W bool, True = removed. Every image with a hole must keep at
            least one pixel (the system has no solution otherwise).

    Returns:
        B×C×H×W: the solution of the joint system in the holes, the input elsewhere.
    """
    holes = holes.reshape(images.shape[0], *images.shape[-2:]).bool().cpu()
    batch, channels, height, width = images.shape
    if bool((holes.flatten(1).all(1)).any()):
        raise MaskscopeValueError("linear imputation needs at least one kept pixel in every image to impute from")
    flat_holes = holes.reshape(-1).numpy()
    unknowns = np.flatnonzero(flat_holes)
    if len(unknowns) == 0:
        return images.clone()
    values = images.detach().permute(0, 2, 3, 1).reshape(-1, channels).cpu().double().numpy()
    variable = np.full(flat_holes.shape, -1, dtype=np.int64)
    variable[unknowns] = np.arange(len(unknowns))
    image, rest = np.divmod(unknowns, height * width)
    row, column = np.divmod(rest, width)

    diagonal = np.zeros(len(unknowns))
    right = np.zeros((len(unknowns), channels))
    rows, columns, entries = [], [], []
    for dy, dx, weight in NEIGHBOUR_WEIGHTS:
        r, c = row + dy, column + dx
        inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        equations = np.flatnonzero(inside)
        neighbour = image[inside] * height * width + r[inside] * width + c[inside]
        diagonal[equations] += weight
        removed = flat_holes[neighbour]
        rows.append(equations[removed])
        columns.append(variable[neighbour[removed]])
        entries.append(np.full(int(removed.sum()), -weight))
        np.add.at(right, equations[~removed], weight * values[neighbour[~removed]])
    rows.append(np.arange(len(unknowns)))
    columns.append(np.arange(len(unknowns)))
    entries.append(diagonal)
    system = scipy.sparse.csc_matrix(
        (np.concatenate(entries), (np.concatenate(rows), np.concatenate(columns))), shape=(len(unknowns),) * 2
    )
    solution = scipy.sparse.linalg.splu(system).solve(right)
    filled = values.copy()
    filled[unknowns] = solution
    out = torch.from_numpy(filled).view(batch, height, width, channels).permute(0, 3, 1, 2)
    return out.to(dtype=images.dtype, device=images.device).contiguous()


class NoisyLinearImputer(Inpainter):
    """ROAD's imputer as a filler: linear imputation of the removed pixels plus Gaussian noise.

    Args:
        noise: σ of the noise in pixel units, one value or one per channel; 0 turns it off.
        seed: the noise generator's seed (``None``: fresh noise on every call). One noise
            field C×H×W is drawn per call and added in the holes of every image, so a curve's
            points and a batch's images see the same noise whatever the batch size.
    """

    def __init__(self, noise: float | Sequence[float] = 0.0, seed: int | None = 0) -> None:
        sigmas = torch.as_tensor(noise, dtype=torch.float32).flatten()
        if bool((sigmas < 0).any()):
            raise MaskscopeValueError(f"noise must be at least 0, got {noise}")
        self.noise = sigmas.tolist()
        self.seed = seed

    def _inpaint(self, images, holes):
        filled = linear_imputation(images, holes)
        sigmas = torch.tensor(self.noise, dtype=images.dtype, device=images.device)
        if not bool(sigmas.any()):
            return filled
        generator = torch.Generator()
        if self.seed is None:
            generator.seed()
        else:
            generator.manual_seed(self.seed)
        field = torch.randn(1, *images.shape[1:], generator=generator).to(images)
        return filled + sigmas.view(1, -1, 1, 1) * field


def road_imputer(classifier_std: torch.Tensor | Sequence[float], noise: float = ROAD_NOISE, seed: int = 0) -> NoisyLinearImputer:
    """The imputer with ROAD's noise σ in the space of a classifier normalising by ``classifier_std``."""
    std = torch.as_tensor(classifier_std, dtype=torch.float32).flatten()
    return NoisyLinearImputer((noise * std).tolist(), seed)
