"""Each optimisation method's defaults are the ones its docstring quotes from its paper (or
its authors' code), so a silent change to any of them fails here.

Besides the constructor's defaults, each test catches the problem and step rule the method
hands to the optimisation loop (the loop itself is replaced by one that returns the start),
so the optimiser, filler, mask generator and jitter are pinned too.
"""

import numpy as np
import pytest
import torch

from maskscope.core.optimisation.descent import Adam, MomentumSGD, NormalisedSGD, OptimisationResult
from maskscope.core.perturbation.fillers import Blur, BlurPyramid, Constant
from maskscope.core.perturbation.inpainters import OpenCVInpainter
from maskscope.core.perturbation.jitter import AlternateFlip, Jitter
from maskscope.core.perturbation.masks import BinarisedUpsampler, SmoothMaxUpsampler, Upsampler
from maskscope.methods import ExtremalPerturbation, FGVis, MeaningfulPerturbation, MeaningfulPerturbationG


@pytest.fixture
def captured(monkeypatch):
    """Replace the optimisation loop in every method module by one that records its arguments."""
    calls = []

    def record(problem, init, direction=None, step_rule=None, steps=300, stop=None, progress=False, description="",
               converge=None):
        calls.append(dict(problem=problem, init=init, step_rule=step_rule, steps=steps, direction=direction))
        return OptimisationResult(masks=init, objective=torch.zeros(init.shape[0], 1), steps=torch.ones(init.shape[0]))

    for module in ("meaningful_perturbation", "fgvis", "extremal_perturbation"):
        monkeypatch.setattr(f"maskscope.methods.{module}.optimise_masks", record)
    return calls


def test_mp_defaults_are_the_papers(shapes_task, captured):
    assert MeaningfulPerturbation.defaults() == dict(
        game="deletion", resolution=28, smooth_sigma=5.0, filler="blur:10", l1_weight=1e-4, tv_weight=1e-2, tv_beta=3.0,
        lr=0.1, steps=300, jitter=4, init="circular", layer=None, batch_size=None, progress=False,
        stop_tolerance=None, stop_checks=10,
    )
    images, classes, _ = shapes_task.correctly_classified(1)
    MeaningfulPerturbation()(shapes_task.classifier, images, target=classes.tolist())
    (call,) = captured
    problem = call["problem"]
    assert isinstance(call["step_rule"], Adam) and call["step_rule"].lr == 0.1 and call["steps"] == 300
    assert isinstance(problem.filler, Blur) and problem.filler.sigma == 10.0
    assert problem.upsampler == Upsampler("nearest", 5.0)
    assert isinstance(problem.jitter, Jitter) and problem.jitter.max_shift == 4 and problem.jitter.moves_image
    assert call["init"].shape == (1, 1, 28, 28)
    assert problem.game.name == "deletion" and problem.class_loss == "probability"


def test_mp_g_defaults_are_the_g_removal_papers(shapes_task, captured):
    assert MeaningfulPerturbationG.defaults() == dict(
        game="deletion", resolution=28, filler="inpaint", l1_weight=1e-4, tv_weight=1e-2, tv_beta=3.0,
        lr=0.1, steps=300, jitter=4, init="uniform", batch_size=None, progress=False,
    )
    images, classes, _ = shapes_task.correctly_classified(1)
    MeaningfulPerturbationG()(shapes_task.classifier, images, target=classes.tolist())
    (call,) = captured
    problem = call["problem"]
    assert isinstance(call["step_rule"], Adam) and call["step_rule"].lr == 0.1 and call["steps"] == 300
    assert isinstance(problem.filler, OpenCVInpainter)
    assert problem.upsampler == BinarisedUpsampler(Upsampler("nearest", 0.0))
    assert problem.jitter.max_shift == 4
    start = call["init"]
    assert start.shape == (1, 1, 28, 28) and 0 <= start.min() and start.max() <= 1 and start.std() > 0.2  # U(0, 1)


def test_fgvis_defaults_are_the_papers(shapes_task, captured):
    defaults = FGVis.defaults()
    l1_weights = defaults.pop("l1_weights")
    assert defaults == dict(
        game="deletion", steps=500, lr=0.1, defense=True, start_width=0.01, stop_early=False,
        search="bisection", batch_size=None, progress=False,
    )
    np.testing.assert_allclose(l1_weights, np.logspace(-4, -10, 13))
    assert FGVis().rounds() == 4 and FGVis(search="sequential").rounds() == 13
    images, classes, _ = shapes_task.correctly_classified(1)
    FGVis()(shapes_task.classifier, images, target=classes.tolist())
    call = captured[0]
    problem = call["problem"]
    assert isinstance(call["step_rule"], NormalisedSGD) and call["step_rule"].lr == 0.1 and call["steps"] == 500
    assert isinstance(problem.filler, Constant)
    torch.testing.assert_close(torch.tensor(problem.filler.colour), shapes_task.classifier.mean_colour.flatten().float())
    assert problem.jitter is None and problem.class_loss == "probability"
    start = call["init"]
    assert start.shape == images.shape and start.min() >= 0.99  # full resolution, per channel, U(0.99, 1)
    assert len(captured) <= 4  # the bisection settles in at most 4 rounds


def test_ep_defaults_are_the_authors(shapes_task, captured):
    assert ExtremalPerturbation.defaults() == dict(
        areas=(0.05, 0.1, 0.2), resolution=32, smooth_sigma=21.0, mask_generator="smooth_max", max_blur=20.0,
        blur_levels=8, perturbation="pyramid", area_weight=300.0, area_growth=1.0035, area_ties="sort",
        class_loss="logit", optimiser="sgd", lr=0.01, momentum=0.9, init=1.0, flip_jitter=True, steps=800,
        batch_size=None, progress=False,
    )
    images, classes, _ = shapes_task.correctly_classified(1)
    images = torch.nn.functional.interpolate(images, size=(224, 224), mode="bilinear")
    ExtremalPerturbation()(shapes_task.classifier, images, target=classes.tolist())
    (call,) = captured
    problem, rule = call["problem"], call["step_rule"]
    assert isinstance(rule, MomentumSGD) and (rule.lr, rule.momentum, rule.dampening) == (0.01, 0.9, 0.9)
    assert call["steps"] == 800
    assert isinstance(problem.upsampler, SmoothMaxUpsampler)
    assert (problem.upsampler.step, problem.upsampler.sigma) == (7, 21.0)
    pyramid = problem.filler
    assert isinstance(pyramid, BlurPyramid) and (pyramid.max_sigma, pyramid.levels) == (20.0, 8)
    assert not pyramid.blended and pyramid.truncate == 4.0
    assert isinstance(problem.jitter, AlternateFlip) and problem.class_loss == "logit"
    assert call["init"].shape == (3, 1, 32, 32) and bool((call["init"] == 1).all())
    direction = call["direction"]
    assert (direction.initial, direction.growth) == (300.0, 1.0035)
    assert direction.constraint.ties == "sort"
