"""The convergence stop of the sampling methods (RISE, LIME, sliding patch): it never draws more
than ``samples``, stops early where the estimate settles, gives the full-count result where it
cannot settle, and a stopped map is the method's map with the samples it used."""

from __future__ import annotations

import pytest
import torch
from known_models import WeightedRed, linear_classifier, logit_classifier

from maskscope.errors import MaskscopeValueError
from maskscope.methods import LIME, RISE, SlidingPatch
from maskscope.methods.lime import superpixels
from maskscope.methods.sampling_stop import SamplingStop
from maskscope.methods.sliding_patch import coarse_to_fine
from maskscope.metrics import spearman

SIZE = 16


def ramp_classifier() -> tuple:
    """A linear logit Σ A(u)·red(u) with A a ramp across the image, and a bright image."""
    weights = torch.linspace(0, 1, SIZE)[None, :].expand(SIZE, SIZE).contiguous()
    image = torch.full((1, 3, SIZE, SIZE), 0.8)
    return logit_classifier(WeightedRed(weights), SIZE), image


# --------------------------------------------------------------------------- the stop itself
def test_the_stop_needs_successive_agreeing_checks_and_never_passes_the_count():
    stop = SamplingStop(images=2, count=130, tolerance=0.9, interval=50, checks=2)
    assert [stop.next_boundary(d) for d in (0, 20, 50, 100)] == [50, 50, 100, 130]
    steady = torch.arange(10.0)[None].expand(2, -1)
    stop.update(50, steady)  # the first estimate: nothing to compare with
    assert stop.active.all()
    stop.update(100, torch.stack([steady[0], steady[0].flip(0)]))  # image 0 agrees once, image 1 not
    assert stop.active.all()
    assert not stop.due(130)  # no check at the count itself: the samples are spent
    assert stop.finish().tolist() == [130, 130]

    quick = SamplingStop(images=2, count=1000, tolerance=0.9, interval=50, checks=1)
    quick.update(50, steady)
    quick.update(100, torch.stack([steady[0], -steady[0]]))
    assert quick.active.tolist() == [False, True]
    quick.update(150, -steady[1:])  # only the active image is estimated
    assert quick.active.tolist() == [False, False]
    assert quick.finish().tolist() == [100, 150]


def test_the_stop_checks_its_parameters():
    with pytest.raises(MaskscopeValueError, match="stop_tolerance"):
        SamplingStop(1, 10, 1.5, 5, 2)
    with pytest.raises(MaskscopeValueError, match="stop_interval"):
        SamplingStop(1, 10, 0.9, 0, 2)
    with pytest.raises(ValueError, match="stop_tolerance"):
        RISE(stop_tolerance=2.0)


# --------------------------------------------------------------------------- RISE
def test_rise_stops_early_on_an_easy_case_with_the_map_of_the_samples_it_used():
    classifier, image = ramp_classifier()
    stopped = RISE(samples=2000, resolution=4, score="logit", stop_tolerance=0.95, stop_interval=100)(classifier, image)
    used = int(stopped.samples_used[0])
    assert 200 <= used < 2000 and used % 100 == 0
    # the map of the first `used` of the 2000 masks: a stop forced there (every check agrees)
    forced = RISE(samples=2000, resolution=4, score="logit", stop_tolerance=-1.0, stop_interval=used // 2, stop_checks=1)
    again = forced(classifier, image)
    assert again.samples_used.tolist() == [used]
    assert torch.allclose(stopped.saliency, again.saliency, rtol=1e-5, atol=1e-6)
    full = RISE(samples=2000, resolution=4, score="logit")(classifier, image)
    assert full.samples_used.tolist() == [2000]
    # successive running means share most of their masks, so they agree sooner than the estimate
    # settles: ρ to the 2000-mask map is lower than the tolerance (measured 0.79 at 700 masks)
    assert float(spearman(stopped.saliency, full.saliency)[0]) > 0.7


def test_rise_never_draws_more_than_samples_and_an_unreachable_tolerance_gives_the_full_result():
    classifier, image = ramp_classifier()
    full = RISE(samples=130, resolution=4, score="logit")(classifier, image)
    # every check agrees (ρ ≥ −1), but five in a row need 250 masks: it ends at the 130 asked for
    patient = RISE(samples=130, resolution=4, score="logit", stop_tolerance=-1.0, stop_interval=50, stop_checks=5)
    assert patient(classifier, image).samples_used.tolist() == [130]
    eager = RISE(samples=130, resolution=4, score="logit", stop_tolerance=-1.0, stop_interval=50, stop_checks=1)
    assert eager(classifier, image).samples_used.tolist() == [100]
    strict = RISE(samples=130, resolution=4, score="logit", stop_tolerance=1.0, stop_interval=10)(classifier, image)
    assert strict.samples_used.tolist() == [130]
    assert torch.allclose(strict.saliency, full.saliency, rtol=1e-5)  # chunks end at the checks: rounding


def test_each_image_of_a_batch_stops_on_its_own():
    classifier, image = ramp_classifier()
    noisy = torch.rand(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    method = RISE(samples=1000, resolution=4, score="logit", stop_tolerance=0.95, stop_interval=100)
    batch = method(classifier, torch.cat([image, noisy]))
    alone = [method(classifier, single) for single in (image, noisy)]
    assert batch.samples_used.tolist() == [int(a.samples_used[0]) for a in alone]
    for index, single in enumerate(alone):
        assert torch.allclose(batch.saliency[index], single.saliency[0], rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- LIME
def test_lime_stops_early_with_the_fit_of_the_samples_it_used():
    image = 0.1 + 0.8 * torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    labels = superpixels(image[0], segments=12)
    weights = torch.linspace(-1, 1, int(labels.max()) + 1)
    red = torch.zeros(len(weights)).index_add(0, labels.flatten(), image[0, 0].flatten())
    classifier = logit_classifier(WeightedRed(weights[labels] / red[labels]), 32)
    options = {"segments": 12, "score": "logit", "alpha": 0.0}
    stopped = LIME(samples=400, stop_tolerance=0.99, stop_interval=40, **options)(classifier, image)
    used = int(stopped.samples_used[0])
    assert 80 <= used < 400
    again = LIME(samples=used, **options)(classifier, image)
    assert torch.allclose(stopped.superpixel_weights, again.superpixel_weights, atol=1e-5)
    # 14 checks in 100 samples cannot give 20 agreeing ones: the full count, and its fit
    ridge = {**options, "alpha": 1.0}  # α = 0 cannot fit 12 weights to the first 7 samples
    strict = LIME(samples=100, stop_tolerance=1.0, stop_interval=7, stop_checks=20, **ridge)(classifier, image)
    unstopped = LIME(samples=100, **ridge)(classifier, image)
    assert strict.samples_used.tolist() == [100]
    assert torch.allclose(strict.superpixel_weights, unstopped.superpixel_weights, atol=1e-6)


# --------------------------------------------------------------------------- sliding patch
def test_positions_go_coarse_to_fine_and_each_is_scored_once():
    order = coarse_to_fine((7, 9))
    assert sorted(order.tolist()) == list(range(63))
    assert order[:6].tolist() == [0, 8, 4, 36, 40, 44]  # every 8th row and column, then every 4th


def test_sliding_patch_stops_early_and_keeps_the_drops_it_scored():
    classifier = linear_classifier(SIZE)
    rows, cols = torch.meshgrid(torch.arange(SIZE).float(), torch.arange(SIZE).float(), indexing="ij")
    image = (0.05 + 0.9 * (rows + cols) / (2 * SIZE))[None, None].expand(1, 3, -1, -1).contiguous()
    options = {"window": 3, "stride": 1, "score": "logit"}
    full = SlidingPatch(**options)(classifier, image)
    stopped = SlidingPatch(**options, stop_tolerance=0.95, stop_interval=20)(classifier, image)
    used = int(stopped.samples_used[0])
    positions = full.window_drops[0].numel()
    assert full.samples_used.tolist() == [positions]
    assert used < positions
    scored = coarse_to_fine(full.window_drops.shape[1:])[:used]
    assert torch.allclose(stopped.window_drops.flatten(1)[:, scored], full.window_drops.flatten(1)[:, scored], atol=1e-6)
    assert float(spearman(stopped.saliency, full.saliency)[0]) > 0.95
    strict = SlidingPatch(**options, stop_tolerance=1.0, stop_interval=1)(classifier, torch.rand(1, 3, SIZE, SIZE))
    assert int(strict.samples_used[0]) <= positions
