"""Fillers, masks, regularisers, jitter and batched scoring behave as their equations say."""

import pytest
import torch

from maskscope.core.model.classifier import Classifier
from maskscope.core.model.targets import target_weights
from maskscope.core.model.view import ClassifierView
from maskscope.core.optimisation.descent import Adam, ConvergenceStop, Gradient, MomentumSGD, optimise_masks
from maskscope.core.optimisation.games import MaskProblem, get_game
from maskscope.core.optimisation.regularisers import area_bounds, area_target, l1, total_variation
from maskscope.core.perturbation.blur import gaussian_blur, gaussian_kernel1d
from maskscope.core.perturbation.filler_specs import resolve_filler
from maskscope.core.perturbation.fillers import Blur, BlurPyramid, Constant, Noise, Reference, blend
from maskscope.core.perturbation.jitter import AlternateFlip, Jitter
from maskscope.core.perturbation.masks import SmoothMaxUpsampler, Upsampler, disc_masks
from maskscope.core.scoring.perturbations import CPU_BATCH_SIZE, GPU_BATCH_SIZE, default_batch_size, score_perturbations


def test_blur_keeps_constants_and_spreads_an_impulse():
    flat = torch.full((1, 3, 32, 32), 0.3)
    assert torch.allclose(gaussian_blur(flat, 3.0), flat, atol=1e-6)
    impulse = torch.zeros(1, 1, 41, 41)
    impulse[..., 20, 20] = 1
    blurred = gaussian_blur(impulse, 2.0)
    assert abs(float(blurred.sum()) - 1) < 1e-4
    ys = torch.arange(41.0)[:, None].expand(41, 41)
    variance = float((blurred[0, 0] * (ys - 20) ** 2).sum())
    assert abs(variance - 4.0) < 0.1  # σ² of the kernel


def test_blend_and_fillers():
    images = torch.rand(2, 3, 16, 16)
    mask = torch.zeros(2, 1, 16, 16)
    mask[..., :8] = 1  # keep the left half
    grey = Constant(torch.tensor([0.5, 0.5, 0.5]))
    out = blend(images, mask, grey(images))
    assert torch.equal(out[..., :8], images[..., :8]) and torch.allclose(out[..., 8:], torch.tensor(0.5))
    assert resolve_filler("mean", torch.tensor([0.2, 0.4, 0.6]))(images)[0, :, 0, 0].tolist() == pytest.approx([0.2, 0.4, 0.6])
    assert isinstance(resolve_filler("blur:7", None), Blur) and resolve_filler("blur:7", None).sigma == 7
    reference = torch.rand(2, 3, 16, 16)
    assert torch.equal(Reference(reference)(images), reference)
    noise = Noise(std=0.2, seed=0)(images)
    assert torch.equal(noise, Noise(std=0.2, seed=0)(images))
    assert 0.1 < float((noise - images).std()) < 0.3
    with pytest.raises(ValueError):
        resolve_filler("paint", None)


def test_blur_pyramid_takes_each_pixel_from_its_level_and_slopes_towards_the_sharper_one():
    torch.manual_seed(0)
    images = torch.rand(2, 3, 16, 16)
    pyramid = BlurPyramid(4.0, 5, blended=False)
    levels = pyramid.pyramid(images)  # P_0 = the image … P_4 = the strongest blur
    for k in range(5):
        on_level = pyramid.fill(images, torch.full((2, 1, 16, 16), 1 - k / 4))
        assert torch.allclose(on_level, levels[k], atol=1e-6)
    between = pyramid.fill(images, torch.full((2, 1, 16, 16), 1 - 1.5 / 4))
    assert torch.allclose(between, (levels[1] + levels[2]) / 2, atol=1e-6)
    # at m = 0 the slope is the one towards the next sharper level, so a removed pixel can grow back
    masks = torch.zeros(2, 1, 16, 16, requires_grad=True)
    pyramid.fill(images, masks).sum().backward()
    slope = 4 * (levels[3] - levels[4]).sum(1, keepdim=True)
    assert slope.abs().max() > 1e-3 and torch.allclose(masks.grad, slope, atol=1e-5)


def test_upsampler_nearest_then_smoothing():
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., 1, 1] = 1
    sharp = Upsampler("nearest")(mask, (16, 16))
    assert sharp[0, 0, 4:8, 4:8].min() == 1 and sharp.sum() == 16
    smooth = Upsampler("nearest", smooth_sigma=2.0)(mask, (16, 16))
    assert smooth.max() < 1 and abs(float(smooth.sum()) - 16) < 1.5 and smooth[0, 0, 5:7, 5:7].max() == smooth.max()


def test_regularisers():
    ones = torch.ones(2, 1, 8, 8)
    assert torch.allclose(l1(ones, reduction="sum"), torch.tensor([64.0, 64.0]))
    assert torch.allclose(l1(ones, reduction="mean"), torch.tensor([1.0, 1.0]))
    assert total_variation(ones, beta=3).abs().max() < 1e-9
    step = torch.zeros(1, 1, 8, 8)
    step[..., 4:] = 1  # one vertical edge of 8 unit jumps
    assert float(total_variation(step, beta=1, isotropic=False, reduction="sum")) == pytest.approx(8.0)
    # isotropic pairs dx and dy on (H−1)×(W−1) pixels: the last row's jump has no partner
    assert float(total_variation(step, beta=3, isotropic=True, reduction="sum")) == pytest.approx(7.0)
    ramp = torch.linspace(0, 1, 8).expand(1, 1, 8, 8)
    assert float(total_variation(ramp, beta=2)) < float(total_variation(step, beta=2))
    half = torch.zeros(1, 1, 8, 8)
    half[..., :4] = 1
    assert float(area_bounds(half, 0.4, 0.6)) == pytest.approx(0.0, abs=1e-6)
    assert float(area_bounds(half, 0.05, 0.3)) > 0  # half the mask on: above the upper bound
    assert float(area_bounds(torch.zeros(1, 1, 8, 8), 0.05, 0.3)) > 0  # nothing on: below the lower bound


def test_area_target_is_zero_at_the_area_and_shares_ties():
    binary = torch.zeros(2, 1, 4, 4)
    binary[0, ..., :1] = 1  # area 0.25
    binary[1, ..., :2] = 1  # area 0.5
    assert area_target(binary, torch.tensor([0.25, 0.5])).tolist() == [0.0, 0.0]
    # area 0.5 against 0.25: the 8 tied ones share the reference 4/8, so the loss is 8·½²/16
    assert float(area_target(binary[1:], 0.25)) == pytest.approx(0.125)
    assert float(area_target(torch.zeros(1, 1, 4, 4), 0.25)) == pytest.approx(0.25 * 0.25)
    # pairs of values equal up to rounding share the reference: the pull is the same for both,
    # whichever way the rounding falls (ranked by rounding, one would go to 1 and the other to 0)
    gradients = []
    for noise in (1e-8, -1e-8):
        masks = torch.tensor([[[[0.7, 0.7 + noise, 0.2, 0.2 - noise]]]], requires_grad=True)
        area_target(masks, 0.25).sum().backward()
        gradients.append(masks.grad.flatten())
    torch.testing.assert_close(gradients[0], gradients[1])
    torch.testing.assert_close(gradients[0], torch.tensor([0.1, 0.1, 0.1, 0.1]))  # 2·(0.7 − ½)/4, 2·(0.2 − 0)/4


def test_area_target_by_sort_ranks_ties_as_the_sort_leaves_them():
    # the authors' rule: n − ⌊n·(1 − a)⌋ values count as inside, chosen by an ascending sort
    canvas = torch.zeros(1, 1, 260, 260)
    canvas.view(-1)[:3381] = 1  # the authors' count for a = 0.05 of 260² (3380 exactly, 3381 in floats)
    for ties in ("sort", "average"):
        assert float(area_target(canvas, 0.05, ties)) == 0.0
    # one exact tie across the boundary: sorted, one value is pulled to 1 and the other to 0;
    # averaged, both get the same pull
    pulls = {}
    for ties in ("sort", "average"):
        masks = torch.tensor([[[[0.7, 0.7, 0.2, 0.1]]]], requires_grad=True)
        area_target(masks, 0.25, ties).sum().backward()
        pulls[ties] = masks.grad.flatten()[:2]
    assert sorted(pulls["sort"].tolist()) == pytest.approx([2 * (0.7 - 1) / 4, 2 * 0.7 / 4])
    assert pulls["average"].tolist() == pytest.approx([2 * (0.7 - 0.5) / 4] * 2)
    with pytest.raises(ValueError, match="ties"):
        area_target(canvas, 0.05, "first")


def test_blur_with_a_border_colour_extends_the_image_by_it():
    colour = torch.tensor([0.2, 0.5, 0.9])
    flat = colour.view(1, 3, 1, 1).expand(1, 3, 30, 30).clone()
    torch.testing.assert_close(gaussian_blur(flat, 4.0, border=colour), flat)
    impulse = torch.zeros(1, 1, 31, 31)
    impulse[..., 0, 0] = 1.0
    # a black border is the 2-D convolution with zero padding: most of the corner's mass leaks out
    kernel = gaussian_kernel1d(3.0)
    expected = torch.nn.functional.conv2d(impulse, torch.outer(kernel, kernel)[None, None], padding=kernel.numel() // 2)
    torch.testing.assert_close(gaussian_blur(impulse, 3.0, border=torch.zeros(1)), expected)
    assert float(expected.sum()) < 0.5


def test_jitter_translates_a_one_pixel_feature_by_the_drawn_offset():
    images = torch.zeros(1, 3, 20, 20)
    images[..., 7, 9] = 1.0
    for seed in range(6):
        down, right = Jitter(3, torch.Generator().manual_seed(seed)).draw_offset()
        moved = Jitter(3, torch.Generator().manual_seed(seed))(images)
        assert moved.shape == images.shape
        assert moved[0, 0].nonzero().tolist() == [[7 + down, 9 + right]]
        assert moved.sum() == images.sum()  # a translation, not a zoom: the pixel keeps its value
    assert torch.equal(Jitter(0)(images), images)


def test_jitter_moves_the_image_under_a_fixed_mask(shapes_task):
    # Φ(x(· − τ), m): the image moves, the mask does not, so a kept window shows shifted content
    images = torch.zeros(1, 3, 64, 64)
    images[..., 30, 30] = 1.0
    masks = torch.zeros(1, 1, 64, 64)
    masks[..., 28:36, 28:36] = 1.0
    jitter = Jitter(4, torch.Generator().manual_seed(1))
    problem = MaskProblem(
        shapes_task.classifier, images, torch.ones(1, 4), get_game("preservation"),
        Constant(torch.zeros(3)), Upsampler("nearest"), lambda m: m.sum((1, 2, 3)), jitter,
    )
    down, right = Jitter(4, torch.Generator().manual_seed(1)).draw_offset()
    assert (down, right) != (0, 0)
    perturbed = problem.perturb(masks)
    expected = torch.zeros(64, 64)
    expected[30 + down, 30 + right] = 1.0  # still inside the kept window, which did not move
    torch.testing.assert_close(perturbed[0, 0], expected)


def test_alternate_flip_mirrors_every_other_draw():
    images = torch.arange(12.0).view(1, 1, 3, 4)
    flip = AlternateFlip()
    outputs = [flip.draw()(images) for _ in range(4)]
    assert torch.equal(outputs[0], images.flip(-1)) and torch.equal(outputs[2], images.flip(-1))
    assert torch.equal(outputs[1], images) and torch.equal(outputs[3], images)


def test_momentum_sgd_steps_as_torch_sgd():
    torch.manual_seed(0)
    start = torch.rand(2, 1, 5, 5)
    gradients = [torch.randn(2, 1, 5, 5) for _ in range(4)]
    rule = MomentumSGD(0.01, 0.9, 0.9)
    rule.reset(start)
    ours = start.clone()
    parameter = start.clone().requires_grad_(True)
    optimiser = torch.optim.SGD([parameter], lr=0.01, momentum=0.9, dampening=0.9)
    for gradient in gradients:
        ours = rule.step(None, ours, gradient, None)
        parameter.grad = gradient.clone()
        optimiser.step()
    torch.testing.assert_close(ours, parameter.detach())


def _stopping_problem(classifier, images, classes, seed=5):
    """MP's deletion problem on a few images, with a jitter drawn from its own generator."""
    weights = target_weights([[int(c)] for c in classes], classifier.num_classes)
    return MaskProblem(
        classifier, images, weights, get_game("deletion"), Blur(4.0), Upsampler("nearest", 1.0),
        lambda masks: 1e-3 * l1(masks, 1.0, "sum"), Jitter(2, torch.Generator().manual_seed(seed)),
    )


def test_an_image_that_stops_leaves_the_batch_with_its_one_by_one_masks(shapes_task, monkeypatch):
    images, classes, _ = shapes_task.correctly_classified(3)
    classifier = shapes_task.classifier
    init = torch.ones(3, 1, 8, 8)
    rows = []
    logits = classifier.logits
    monkeypatch.setattr(classifier, "logits", lambda batch: rows.append(len(batch)) or logits(batch))

    def stop(problem, masks, step):  # the second image is done after its third step
        return (problem.image_index == 1) & (step >= 2)

    together = optimise_masks(_stopping_problem(classifier, images, classes), init, Gradient(), Adam(0.1), 8, stop)
    # its passes ended: three images a step for three steps, then two
    assert rows == [3, 3, 3, 2, 2, 2, 2, 2]
    assert together.steps.tolist() == [8, 3, 8] and together.stopped.tolist() == [False, True, False]
    assert together.objective[1, 3:].isnan().all() and not together.objective[[0, 2]].isnan().any()
    for i, steps in enumerate((8, 3, 8)):
        # alone, with the same jitter draws (one a step, shared by the batch) and no stop rule:
        # what today's loop gave a stopped image, whose mask it froze
        alone = optimise_masks(
            _stopping_problem(classifier, images[i : i + 1], classes[i : i + 1]), init[:1], Gradient(), Adam(0.1), steps
        )
        # convolutions of other batch sizes round differently (~1e-7); Adam carries it a little
        torch.testing.assert_close(together.masks[i : i + 1], alone.masks, atol=1e-4, rtol=0)
        torch.testing.assert_close(together.objective[i, :steps], alone.objective[0], atol=1e-5, rtol=1e-4)


def test_convergence_stop_counts_still_steps_per_image():
    stop = ConvergenceStop(0.01, patience=2)
    masks = torch.zeros(2, 1, 2, 2)
    moved = masks.clone()
    moved[0] += 0.5  # the first image moves, the second stays
    assert stop(masks, moved).tolist() == [False, False]
    assert stop(moved, moved).tolist() == [False, True]
    stop.subset(torch.tensor([0]))
    assert stop(moved[:1], moved[:1]).tolist() == [True]


def test_smooth_max_masks_keep_round_blobs_and_a_margin():
    upsampler = SmoothMaxUpsampler(step=7, sigma=21.0)
    assert upsampler.parameter_shape((224, 224)) == (32, 32)
    cells = torch.zeros(1, 1, 32, 32)
    cells[..., 10, 20] = 1.0
    canvas = upsampler.full(cells)
    assert canvas.shape[-2:] == (260, 260)  # the image plus a margin of σ on each side (and the grid's rest)
    image = upsampler(cells, (224, 224))
    torch.testing.assert_close(image, canvas[..., 21:245, 21:245])
    # cell j sits at margin + 7·j on the canvas, i.e. at 7·j in the image
    peak = image[0, 0]
    centre = (70, 140)
    assert peak.max() == peak[centre] and peak[centre] > 0.9
    ys, xs = torch.meshgrid(torch.arange(224.0), torch.arange(224.0), indexing="ij")
    distance = ((ys - centre[0]) ** 2 + (xs - centre[1]) ** 2).sqrt()
    # flat top out to σ/2, fading beyond, symmetric in every direction
    flat = peak[distance <= 10.5]
    assert flat.min() > 0.5 * peak.max()
    assert peak[distance > 60].max() < 0.05
    for offset in (15, 25):
        ring = peak[(distance - offset).abs() < 0.5]
        assert ring.max() - ring.min() < 0.1, f"not round at {offset} px"  # measured 0.06 at 25 px
    # all cells at 1 keep the whole image; all at 0 remove it
    assert upsampler(torch.ones(1, 1, 32, 32), (224, 224)).min() > 0.9
    assert upsampler(torch.zeros(1, 1, 32, 32), (224, 224)).max() == 0


def test_discs_grow_with_radius():
    discs = disc_masks(torch.tensor([0, 8, 16]), (64, 64))
    areas = discs.flatten(1).sum(1)
    assert areas[0] <= 1 and areas[0] < areas[1] < areas[2]
    assert float(areas[2]) == pytest.approx(3.1416 * 16**2, rel=0.1)


class BrightnessOfLeftHalf(torch.nn.Module):
    """Two logits: (mean of the left half, 0); counts its calls."""

    calls = 0

    def forward(self, x):
        BrightnessOfLeftHalf.calls += 1
        left = x[..., : x.shape[-1] // 2].mean((1, 2, 3))
        return torch.stack([left, torch.zeros_like(left)], 1)


def test_scoring_matches_direct_evaluation_and_batches():
    model = BrightnessOfLeftHalf()
    classifier = Classifier(model, mean=(0, 0, 0), std=(1, 1, 1), view=ClassifierView(None, 16))
    images = torch.rand(2, 3, 16, 16)
    masks = torch.rand(2, 10, 4, 4)
    filler = Constant(torch.zeros(3))
    weights = target_weights([[0], [0]], 2)
    model.calls = BrightnessOfLeftHalf.calls = 0
    scores = score_perturbations(
        classifier, images, masks, filler, weights, batch_size=8, upsampler=Upsampler("nearest"), score="logit"
    )
    assert BrightnessOfLeftHalf.calls == 3  # 20 perturbed images in chunks of 8
    up = Upsampler("nearest")(masks.flatten(0, 1)[:, None], (16, 16)).view(2, 10, 1, 16, 16)
    expected = (images[:, None] * up)[..., :8].mean((2, 3, 4))
    assert torch.allclose(scores, expected, atol=1e-6)
    model.calls = BrightnessOfLeftHalf.calls = 0
    score_perturbations(classifier, images, masks, filler, weights)
    assert BrightnessOfLeftHalf.calls == 3  # on a CPU the default is 8 a pass


def test_default_batch_size_is_small_on_a_cpu_and_large_on_a_gpu():
    assert default_batch_size(None, "cpu") == CPU_BATCH_SIZE == 8
    assert default_batch_size(None, torch.device("cuda", 0)) == GPU_BATCH_SIZE == 64
    assert default_batch_size(3, "cuda") == 3
    with pytest.raises(ValueError, match="at least 1"):
        default_batch_size(0, "cpu")


def test_goal_rule_and_its_record_survive_save_load_and_indexing(tmp_path):
    from maskscope.core.explanation import Explanation
    from maskscope.core.optimisation.games import goal_met

    before = torch.tensor([0.9, 0.9, 0.8])
    after = torch.tensor([0.1, 0.5, 0.7])
    area = torch.tensor([0.3, 0.3, 0.9])
    assert goal_met(get_game("deletion"), before, after, area).tolist() == [True, False, False]
    assert goal_met(get_game("preservation"), before, after, area).tolist() == [False, True, False]
    explanation = Explanation(
        saliency=torch.rand(3, 8, 8), targets=[[1], [2], [3]], method="mp", scores_before=before,
        scores_after=after, kept_area=area, goal_met=torch.tensor([True, False, True]),
    )
    assert explanation[1].goal_met.tolist() == [False] and explanation[1].kept_area.tolist() == pytest.approx([0.3])
    explanation.save(tmp_path)
    loaded = Explanation.load(tmp_path, explanation.names)
    assert loaded.goal_met.tolist() == [True, False, True]
    torch.testing.assert_close(loaded.kept_area, area)
    assert "goal NOT met" in explanation.title(1) and "goal NOT met" not in explanation.title(0)
