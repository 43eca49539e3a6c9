"""The pass counting and the floor of benchmarks/speed/optimisation_profile.py, on the tiny shapes CNN."""

from __future__ import annotations

import time

import pytest
import torch

profile = pytest.importorskip("benchmarks.speed.optimisation_profile")


def test_gradient_passes_are_the_steps_and_the_floor_lies_below_the_wall(shapes_task):
    classifier = shapes_task.classifier
    images, _, _ = shapes_task.correctly_classified(2)
    counter = profile.StepCounter()
    with profile.PassRecorder(classifier) as recorder, counter.counting():
        start = time.perf_counter()
        explanation = profile.get_method("mp", steps=4).explain(classifier, images, seed=0)
        wall = time.perf_counter() - start
    summary = recorder.summary()
    # one gradient pass of the whole batch a step, and the disc search's no-gradient passes
    assert summary["gradient"]["passes"] == explanation.history.shape[1] == counter.steps == 4
    assert summary["gradient"]["images"] == 4 * len(images)
    assert summary["no-gradient"]["passes"] > 0
    assert "logits" not in vars(classifier)  # the wrapper is gone after the block
    floor = profile.floor_seconds(recorder, limit=0)
    assert sum(group["passes"] for group in floor["groups"]) == len(recorder.passes)
    assert 0 < floor["total_s"] < wall


def test_backward_ops_of_the_model_are_model_backward():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Hardtanh())
    images = torch.rand(1, 3, 8, 8, requires_grad=True)
    with torch.profiler.profile() as run:
        upsampled = torch.nn.functional.interpolate(images, scale_factor=2.0)
        with torch.profiler.record_function(profile.MODEL_GRADIENT):
            out = model(upsampled).sum()
        torch.autograd.grad(out, images)
    totals = profile.categorise(list(run.events()))
    assert totals["model backward"] > 0 and totals["model forward (gradient passes)"] > 0
    # the upsampling and its backward are not the model's
    assert totals["other ops"] > 0


def test_every_labelled_function_is_found_and_modules_keep_their_earlier_names():
    """The profile labels functions of this package by module name; the same names reach a
    checkout of the flat layout (maskscope/core/<module>.py), which the speed benchmarks run beside this one."""
    from benchmarks.common.layout import earlier_name, import_module

    for module, name, _ in profile.LABELS:
        assert profile._attribute(f"{module}:{name}") is not None, (module, name)
    assert earlier_name("maskscope.core.model.defense") == "maskscope.core.defense"
    assert earlier_name("maskscope.core.perturbation.masks") == "maskscope.core.masks"
    assert earlier_name("maskscope.core.optimisation.descent") == "maskscope.core.optimisation"
    assert earlier_name("maskscope.core.explanation") is None  # it never moved
    assert earlier_name("maskscope.methods.fgvis") is None
    assert import_module("maskscope.core.model.defense").AdversarialDefense.__name__ == "AdversarialDefense"
