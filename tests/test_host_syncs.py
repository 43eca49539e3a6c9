"""The optimisation loop never waits for the device, except to decide which images stop.

Every optimisation method runs on CPU with its images wrapped in a ``torch.Tensor`` subclass
whose ``__torch_function__`` counts the calls that read a tensor back to the host (``item``,
``bool``, ``tolist``, ``cpu``, ``numpy``, ``int``, ``float``, ``index``, ``nonzero``). Every
tensor made from the images (perturbed images, masks, scores, gradients) is of that subclass,
so a sync on any of them inside :func:`optimise_masks` is counted, with the line that made it.

Budget: none a step without a stop rule; one a step (the decision which images leave) with
one. Two kinds are outside the loop's reach and listed by the line that makes them: the
classifier's check that the model's scores are finite (one a pass, in
``Classifier.logits``) and the backtracking line search's tests which images still search
(one a try) and which need ``F(M)`` evaluated (one a step): I-GOS and iGOS++ decide per try
whether to make another pass.
"""

from __future__ import annotations

import traceback
from collections import Counter
from pathlib import Path

import pytest
import torch

import maskscope.core.optimisation.descent as optimisation
from maskscope.methods import IGOS, ExtremalPerturbation, FGVis, IGOSPlusPlus, MeaningfulPerturbation
from maskscope.methods.meaningful_perturbation_g import MeaningfulPerturbationG

SYNCS = {"item", "__bool__", "tolist", "cpu", "numpy", "__int__", "__float__", "__index__", "nonzero"}
TORCH = Path(torch.__file__).resolve().parent
#: syncs the loop may not remove, by the source line that makes them (see the module's docstring)
OUTSIDE_THE_LOOP = {
    "torch.isfinite(out).all()": "the classifier's finite check, once a pass",
    "searching = trying.nonzero()[:, 0]  # one wait for the device a try": "the line search, once a try",
    "unknown = (~known).nonzero()[:, 0]": "the line search, once a step: which images need F(M) evaluated",
}


class Counted(torch.Tensor):
    """A tensor that records where host syncs are made on it (while ``recording``)."""

    recording = False
    calls: Counter = Counter()

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if cls.recording and getattr(func, "__name__", "") in SYNCS:
            cls.calls[_caller()] += 1
        return super().__torch_function__(func, types, args, kwargs or {})


def _caller() -> str:
    """The source line that asked for the sync: the innermost frame outside torch and this counter."""
    for frame in reversed(traceback.extract_stack()):
        if frame.name in ("__torch_function__", "_caller") or Path(frame.filename).resolve().is_relative_to(TORCH):
            continue
        return (frame.line or "").strip()
    return "unknown"


@pytest.fixture
def counting(monkeypatch):
    """Count syncs while ``optimise_masks`` runs; yields the list of (counts, steps run) of each call."""
    runs: list[tuple[Counter, int, bool]] = []
    original = optimisation.optimise_masks

    def counted(problem, init, *args, **kwargs):
        assert isinstance(problem.images, Counted), "the images lost their subclass"
        Counted.calls = Counter()
        Counted.recording = True
        try:  # masks made from nothing (ones) are counted from the start too
            result = original(problem, init.as_subclass(Counted), *args, **kwargs)
        finally:
            Counted.recording = False
        stops = kwargs.get("stop") is not None or (len(args) > 3 and args[3] is not None)
        runs.append((Counted.calls, result.objective.shape[1], stops))
        return result

    for module in ("meaningful_perturbation", "fgvis", "igos", "igos_plus_plus", "extremal_perturbation"):
        monkeypatch.setattr(f"maskscope.methods.{module}.optimise_masks", counted)
    return runs


SMALL = {
    "mp": lambda: MeaningfulPerturbation(resolution=8, smooth_sigma=1.0, filler="blur:4", steps=4, init="ones"),
    "mp-g": lambda: MeaningfulPerturbationG(resolution=8, filler="blur:4", steps=4),
    "fgvis": lambda: FGVis(l1_weights=(1e-4,), steps=4),
    "fgvis-stop": lambda: FGVis(l1_weights=(1e-4,), steps=4, stop_early=True, defense=False),
    "igos": lambda: IGOS(resolution=8, points=3, steps=4),
    "igos++": lambda: IGOSPlusPlus(resolution=8, points=2, steps=4),
    "ep": lambda: ExtremalPerturbation(areas=(0.1, 0.3), resolution=8, smooth_sigma=24.0, steps=4),
    "mp-converge": lambda: MeaningfulPerturbation(
        resolution=8, smooth_sigma=1.0, filler="blur:4", steps=4, init="ones", stop_tolerance=1.0, stop_checks=2
    ),
}


@pytest.mark.parametrize("name", list(SMALL))
def test_the_loop_waits_for_the_device_only_to_stop_images(shapes_task, counting, name):
    images, classes, _ = shapes_task.correctly_classified(2)
    SMALL[name]()(shapes_task.classifier, images.as_subclass(Counted), target=classes.tolist())
    assert counting, "the method did not run the optimisation loop"
    for calls, steps, stops in counting:
        inside = {line: count for line, count in calls.items() if not any(known in line for known in OUTSIDE_THE_LOOP)}
        budget = steps if stops or name.endswith("converge") else 0
        assert sum(inside.values()) <= budget, f"{name}: {sum(inside.values())} syncs in {steps} steps: {inside}"
        if not name.startswith("igos"):  # no line search: the finite check alone
            assert all(next(iter(OUTSIDE_THE_LOOP)) in line for line in set(calls) - set(inside))
        if name.endswith("converge"):  # both images stop after their second still step
            assert steps == 2 and sum(inside.values()) == 2


def test_the_counter_sees_a_sync_added_to_the_loop(shapes_task, counting, monkeypatch):
    """The test above can fail: a step rule that reads its step size back is caught."""
    original = optimisation.Adam.step

    def reading(self, problem, masks, grad, loss):
        float(grad.abs().max())
        return original(self, problem, masks, grad, loss)

    monkeypatch.setattr(optimisation.Adam, "step", reading)
    images, classes, _ = shapes_task.correctly_classified(2)
    SMALL["mp"]()(shapes_task.classifier, images.as_subclass(Counted), target=classes.tolist())
    calls, steps, _ = counting[0]
    assert calls["float(grad.abs().max())"] == steps
