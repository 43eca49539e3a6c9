"""Backtracking line search with projection (the revised Armijo rule of I-GOS).

For each image, with direction ``g`` (the descent direction's gradient) and ``P`` the
projection onto ``[0, 1]``, the step ``α`` starts at ``α_u`` and is multiplied by ``η``
until the sufficient-decrease condition

    F(P[M − α·g]) − F(M) ≤ −β·α·‖g‖²

holds or ``α ≤ α_l``; the step is then ``M − α·g`` (the engine projects it). Each image
searches its own ``α``, so images in a batch do not interact, and each try evaluates ``F``
only for the images still searching. ``F`` is the problem's objective unless an
``objective`` is given, and ``F(M)`` is the loss the direction returned unless
``evaluate_start`` is set: then the objective evaluates it too, for a direction that is the
gradient of another function than the one judged — except where the step before ended on an
accepted try at these very masks, whose value it keeps (so no pass is made twice). I-GOS passes
:func:`~maskscope.core.optimisation.directions.end_point_objective` (the paper's ``F`` at the mask itself,
with ``evaluate_start``: its direction's loss is ``F_IG``), iGOS++ its integrated gradient's
:meth:`~maskscope.core.optimisation.directions.IntegratedGradient.objective` (``F_IG`` with the
iteration's noise, whose value at ``M`` the direction returned), as their authors' codes do.
"""

from __future__ import annotations

from typing import Callable

import torch

from maskscope.core.optimisation.games import MaskProblem

#: ``objective(problem, masks, image_index)``: ``F`` at masks N×… of the images ``image_index``
Objective = Callable[[MaskProblem, torch.Tensor, torch.Tensor], torch.Tensor]


class ArmijoLineSearch:
    """The step rule ``M ← M − α·g`` with ``α`` found by projected backtracking.

    Args:
        initial: ``α_u``, the first step tried (I-GOS: 200; iGOS++: 1000).
        shrink: ``η``, the factor applied after each failed try (0.2).
        decrease: ``β``, the fraction of the predicted decrease required (1e-4).
        smallest: ``α_l``; the search stops once ``α`` is at or below it (1e-5).
        objective: ``F`` of the sufficient-decrease test, at ``M`` and at the trials (default:
            ``problem.objective`` on the whole batch).
        evaluate_start: evaluate ``F(M)`` with ``objective`` instead of taking the loss the
            direction passed in (which is then the value of another function).

    After each step, ``last_step`` holds the ``α`` taken per image.
    """

    def __init__(
        self,
        initial: float = 200.0,
        shrink: float = 0.2,
        decrease: float = 1e-4,
        smallest: float = 1e-5,
        objective: Objective | None = None,
        evaluate_start: bool = False,
    ) -> None:
        if not 0 < shrink < 1:
            raise ValueError(f"shrink must lie in (0, 1), got {shrink}")
        self.initial = initial
        self.shrink = shrink
        self.decrease = decrease
        self.smallest = smallest
        if evaluate_start and objective is None:
            raise ValueError("evaluate_start needs an objective")
        self.objective = objective
        self.evaluate_start = evaluate_start
        self.last_step = torch.empty(0)
        #: per image: F at the last try, the penalty at the masks returned, whether that try was taken
        self._accepted: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def reset(self, masks: torch.Tensor) -> None:
        self.last_step = torch.empty(0)
        self._accepted = None

    def subset(self, index: torch.Tensor) -> None:
        if self._accepted is not None:
            values, penalties, known = self._accepted
            self._accepted = (values[index], penalties[index], known[index])

    def _start_values(self, problem: MaskProblem, masks: torch.Tensor) -> torch.Tensor:
        """``F(M)`` by ``objective``. The masks are those the last step returned, and where its
        last try was accepted (and the penalty has not changed since, as I-GOS's λ1 schedule
        changes it) that try's value is ``F(M)`` already: only the other images are evaluated."""
        assert self.objective is not None  # checked in __init__
        everyone = torch.arange(masks.shape[0], device=masks.device)
        if self._accepted is None:
            return self.objective(problem, masks, everyone)
        values, penalties, known = self._accepted
        known = known & (problem.penalty(masks, everyone) == penalties)
        unknown = (~known).nonzero()[:, 0]
        if len(unknown):
            values = values.clone()
            values[unknown] = self.objective(problem, masks[unknown], unknown)
        return values

    def step(self, problem: MaskProblem, masks: torch.Tensor, grad: torch.Tensor, loss: torch.Tensor) -> torch.Tensor:
        shape = (-1, *([1] * (masks.dim() - 1)))
        squared_norm = grad.flatten(1).pow(2).sum(1)
        alpha = torch.full_like(loss, self.initial)
        trying = alpha > self.smallest
        with torch.no_grad():
            if self.evaluate_start:
                loss = self._start_values(problem, masks)
            accepted = torch.full_like(loss, float("nan"))  # F at each image's last try …
            succeeded = torch.zeros_like(trying)  # … and whether that try was taken
            while True:
                searching = trying.nonzero()[:, 0]  # one wait for the device a try
                if len(searching) == 0:
                    break
                trial = (masks - alpha.view(shape) * grad)[searching].clamp(0, 1)
                if self.objective is None:
                    values = problem.subset(searching).objective(trial)
                else:
                    values = self.objective(problem, trial, searching)
                failed = torch.zeros_like(trying)
                required = -self.decrease * alpha[searching] * squared_norm[searching]
                failed[searching] = values - loss[searching] > required
                accepted[searching] = values
                succeeded[searching] = ~failed[searching]
                alpha = torch.where(failed, alpha * self.shrink, alpha)
                trying = failed & (alpha > self.smallest)
            if self.evaluate_start:
                result = (masks - alpha.view(shape) * grad).clamp(0, 1)
                everyone = torch.arange(masks.shape[0], device=masks.device)
                self._accepted = (accepted, problem.penalty(result, everyone), succeeded)
        self.last_step = alpha
        return masks - alpha.view(shape) * grad
