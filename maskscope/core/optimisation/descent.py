"""The mask-optimisation engine: direction → step rule → clip → stop, on a batch of masks.

One loop serves every optimisation method::

    m₀ = init
    repeat:  (F, g) = direction(problem, m)     # plain, integrated or defended gradient
             m ← clip(step_rule(m, g), 0, 1)     # Adam, max-normalised SGD, line search
             stop images that meet the stop rule
    until steps are spent or every image has stopped

Images in a batch never interact: the objective is a sum of per-image terms and every step
rule acts elementwise or per image, so a batch gives the same masks as one-by-one runs.
An image that stops leaves the batch: its mask is kept, and the problem
(:meth:`~maskscope.core.optimisation.games.MaskProblem.subset`) and the step rule's per-image state
(:meth:`StepRule.subset`) are narrowed to the images still running, so its passes end.

The loop waits for the device only to decide which images stop: without a stop rule (or a
convergence stop) it never reads a device tensor back, with one it does so once a step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import torch

from maskscope.core.optimisation.games import MaskProblem
from maskscope.core.progress import Progress, progress_bar


class Direction(Protocol):
    """Returns the per-image objective (B, detached) and the descent direction's gradient."""

    def __call__(self, problem: MaskProblem, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


class Gradient:
    """The plain gradient ``∂F/∂m`` of the problem's objective."""

    def __call__(self, problem: MaskProblem, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        variable = masks.detach().requires_grad_(True)
        loss = problem.objective(variable)
        (grad,) = torch.autograd.grad(loss.sum(), variable)
        return loss.detach(), grad


class StepRule(Protocol):
    def reset(self, masks: torch.Tensor) -> None: ...

    def subset(self, index: torch.Tensor) -> None:
        """Keep the per-image state of the images ``index`` only (those still running)."""
        ...

    def step(
        self, problem: MaskProblem, masks: torch.Tensor, grad: torch.Tensor, loss: torch.Tensor
    ) -> torch.Tensor: ...


class Adam:
    """Adam on the mask: ``m ← m − lr·m̂/(√v̂ + ε)`` with the usual bias-corrected moments."""

    def __init__(self, lr: float = 0.1, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.lr, self.betas, self.eps = lr, betas, eps

    def reset(self, masks: torch.Tensor) -> None:
        self.first = torch.zeros_like(masks)
        self.second = torch.zeros_like(masks)
        self.count = 0

    def subset(self, index: torch.Tensor) -> None:
        self.first, self.second = self.first[index], self.second[index]

    def step(self, problem, masks, grad, loss):
        beta1, beta2 = self.betas
        self.count += 1
        self.first.mul_(beta1).add_(grad, alpha=1 - beta1)
        self.second.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        first_hat = self.first / (1 - beta1**self.count)
        second_hat = self.second / (1 - beta2**self.count)
        return masks - self.lr * first_hat / (second_hat.sqrt() + self.eps)


class NormalisedSGD:
    """SGD with the gradient divided by its largest magnitude per image (FGVis):
    ``m ← m − lr·g / max|g|``."""

    def __init__(self, lr: float = 0.1) -> None:
        self.lr = lr

    def reset(self, masks: torch.Tensor) -> None:
        pass

    def subset(self, index: torch.Tensor) -> None:
        pass

    def step(self, problem, masks, grad, loss):
        peak = grad.flatten(1).abs().amax(1).clamp(min=1e-12)
        return masks - self.lr * grad / peak.view(-1, *([1] * (grad.dim() - 1)))


class MomentumSGD:
    """SGD with momentum and dampening (Extremal Perturbation: lr 0.01, μ = d = 0.9)::

        b₁ = g₁,   b_t = μ·b_{t−1} + (1 − d)·g_t,   m ← m − lr·b_t

    (the first step takes the whole gradient, as PyTorch's ``torch.optim.SGD`` does).
    """

    def __init__(self, lr: float = 0.01, momentum: float = 0.9, dampening: float = 0.9) -> None:
        self.lr, self.momentum, self.dampening = lr, momentum, dampening

    def reset(self, masks: torch.Tensor) -> None:
        self.buffer: torch.Tensor | None = None

    def subset(self, index: torch.Tensor) -> None:
        if self.buffer is not None:
            self.buffer = self.buffer[index]

    def step(self, problem, masks, grad, loss):
        if self.buffer is None:
            self.buffer = grad.clone()
        else:
            self.buffer.mul_(self.momentum).add_(grad, alpha=1 - self.dampening)
        return masks - self.lr * self.buffer


StopRule = Callable[[MaskProblem, torch.Tensor, int], torch.Tensor]
"""``stop(problem, masks, step) -> N bool``: which of the running images are finished after
``step`` (``problem`` and ``masks`` hold the running images only, ``problem.image_index`` their
places in the batch)."""


def score_below(fraction: float, reference: torch.Tensor) -> StopRule:
    """Stop an image once its target score falls below ``fraction·reference`` (FGVis: 0.02·p_c(x));
    ``reference`` holds one score per image of the whole batch."""

    def stop(problem: MaskProblem, masks: torch.Tensor, step: int) -> torch.Tensor:
        with torch.no_grad():
            limit = fraction * reference.to(masks)[problem.image_index]
            return problem.class_scores(masks, jitter=False) < limit

    return stop


AfterStep = Callable[[MaskProblem, torch.Tensor, int], None]
"""``after_step(problem, masks, step)``: called with the running images' problem and masks after
each ``step`` (I-GOS's λ1 schedule)."""


class ConvergenceStop:
    """Stop an image once its mask has moved by less than ``tolerance`` (the largest
    ``|Δm|`` of a step) for ``patience`` successive steps.

    It keeps a count per running image; :func:`optimise_masks` narrows it with the batch.
    """

    def __init__(self, tolerance: float, patience: int = 10) -> None:
        if tolerance < 0:
            raise ValueError(f"tolerance must be at least 0, got {tolerance}")
        if patience < 1:
            raise ValueError(f"patience must be at least 1, got {patience}")
        self.tolerance = tolerance
        self.patience = patience
        self.still: torch.Tensor | None = None

    def __call__(self, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        """Whether each image has now been still for ``patience`` steps, given its masks before and after a step."""
        moved = (after - before).abs().flatten(1).amax(1)
        if self.still is None:
            self.still = torch.zeros(before.shape[0], dtype=torch.long, device=before.device)
        self.still = torch.where(moved < self.tolerance, self.still + 1, torch.zeros_like(self.still))
        return self.still >= self.patience

    def subset(self, index: torch.Tensor) -> None:
        if self.still is not None:
            self.still = self.still[index]


@dataclass
class OptimisationResult:
    """Final masks and the per-step record of the objective (B×steps; NaN after an image stopped)."""

    masks: torch.Tensor
    objective: torch.Tensor
    steps: torch.Tensor  # steps each image ran (B)
    #: which images a stop rule (or the convergence stop) finished, B bool; all False without one
    stopped: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.bool))
    extra: dict = field(default_factory=dict)


def optimise_masks(
    problem: MaskProblem,
    init: torch.Tensor,
    direction: Direction | None = None,
    step_rule: StepRule | None = None,
    steps: int = 300,
    stop: StopRule | None = None,
    progress: bool | Progress = False,
    description: str = "optimising",
    after_step: AfterStep | None = None,
    converge: ConvergenceStop | None = None,
) -> OptimisationResult:
    """Run the optimisation loop on a batch of masks ``init`` (B×C×h×w, values in [0, 1]).

    ``stop`` finishes images by a rule of their own, ``converge`` once their masks stop moving;
    a finished image leaves the batch (its mask is kept, its passes end). ``progress``: ``True``
    reports the steps on a bar of their own called ``description`` (see
    :func:`maskscope.core.progress.progress_bar`); a bar (or :class:`PlainProgress`) is
    advanced by one per step instead, and by the steps an early stop leaves out, so a method
    that runs the loop several times (FGVis's λ rounds, EP's chunks of areas) shows one bar.
    """
    direction = direction or Gradient()
    step_rule = step_rule or Adam()
    masks = init.detach().clone().clamp(0, 1)
    count, device = masks.shape[0], masks.device
    step_rule.reset(masks)
    objective = torch.full((count, steps), float("nan"), dtype=masks.dtype, device=device)
    ran = torch.zeros(count, dtype=torch.long, device=device)
    stopped = torch.zeros(count, dtype=torch.bool, device=device)
    # the running images: their places in the batch, their problem and their masks
    index = torch.arange(count, device=device)
    running, current = problem, masks
    narrowed = False
    owned = isinstance(progress, bool)
    bar: Progress = (
        progress_bar(total=steps, desc=description, unit="step", disable=not progress) if isinstance(progress, bool)
        else progress
    )
    done = 0
    for step in range(steps):
        loss, grad = direction(running, current)
        updated = step_rule.step(running, current, grad, loss).clamp(0, 1).detach()
        if narrowed:
            objective[index, step] = loss.to(objective.dtype)
            ran[index] += 1
        else:
            objective[:, step] = loss.to(objective.dtype)
            ran += 1
        finished = converge(current, updated) if converge is not None else None
        current = updated
        if after_step is not None:
            after_step(running, current, step)
        done += 1
        bar.update(1)
        if stop is not None:
            ruled = stop(running, current, step)
            finished = ruled if finished is None else finished | ruled
        if finished is None:
            continue
        staying = (~finished).nonzero()[:, 0]  # the loop's one wait for the device a step
        if len(staying) == len(index):
            continue
        masks[index] = current
        stopped[index] = finished
        if len(staying) == 0:
            break
        index, current = index[staying], current[staying]
        running = running.subset(staying)
        step_rule.subset(staying)
        if converge is not None:
            converge.subset(staying)
        narrowed = True
    else:
        masks[index] = current
    if owned:
        bar.close()
    elif done < steps:
        bar.update(steps - done)
    return OptimisationResult(masks=masks, objective=objective[:, :done], steps=ran, stopped=stopped)
