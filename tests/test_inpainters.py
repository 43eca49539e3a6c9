"""Inpainters: fill quality on a smooth ramp, the hole rule, batching, the learned-model path,
and that inpainting removes an object's evidence for the tiny CNN."""

import pytest
import torch
import torch.nn.functional as F

from maskscope.core.perturbation.filler_specs import resolve_filler
from maskscope.core.perturbation.fillers import Constant, blend
from maskscope.core.perturbation.inpainters import (
    BiharmonicInpainter,
    InpainterOutputError,
    LearnedInpainter,
    OpenCVInpainter,
    holes_from_masks,
)


def ramp(size: int = 64) -> torch.Tensor:
    """A 1×3×S×S image whose channels are linear ramps (x, y and their mean, reversed)."""
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    return torch.stack([x, y, 1 - (x + y) / 2])[None]


def box_holes(size: int, rows: slice, cols: slice) -> torch.Tensor:
    holes = torch.zeros(1, 1, size, size, dtype=torch.bool)
    holes[..., rows, cols] = True
    return holes


class MeanOfVisible(torch.nn.Module):
    """Stand-in inpainting model: fills holes with the mean colour of the visible pixels."""

    def forward(self, images: torch.Tensor, holes: torch.Tensor) -> torch.Tensor:
        visible = 1 - holes
        mean = (images * visible).sum((2, 3), keepdim=True) / visible.sum((2, 3), keepdim=True).clamp(min=1)
        return images * visible + mean * holes


@pytest.mark.parametrize(
    "inpainter, bound",
    [(OpenCVInpainter("ns"), 0.25), (OpenCVInpainter("telea"), 0.25), (BiharmonicInpainter(), 0.01)],
    ids=["navier-stokes", "telea", "biharmonic"],
)
def test_a_ramp_is_filled_far_closer_to_the_truth_than_by_its_mean_colour(inpainter, bound):
    image = ramp()
    holes = box_holes(64, slice(6, 26), slice(38, 58))  # off centre, where the mean colour is far off
    inside = holes.expand_as(image)
    visible_mean = (image * ~holes).sum((2, 3), keepdim=True) / (~holes).sum()
    mean_error = (visible_mean.expand_as(image) - image)[inside].abs().mean()
    painted = inpainter.inpaint(image, holes)
    error = (painted - image)[inside].abs().mean()
    assert error < bound * mean_error, f"{inpainter}: error {error:.4f}, mean colour {mean_error:.4f}"
    assert torch.equal(painted[~inside], image[~inside])  # pixels outside the hole untouched


def test_the_hole_rule_is_below_max_of_one_half_and_the_mid_range():
    masks = torch.tensor([0.2, 0.4, 0.6, 1.0]).view(1, 1, 1, 4)  # threshold max(0.5, 0.6) = 0.6
    assert holes_from_masks(masks).flatten().tolist() == [True, True, False, False]
    low = torch.tensor([0.0, 0.3, 0.45]).view(1, 1, 1, 3)  # mid-range 0.225 < 0.5: everything is a hole
    assert holes_from_masks(low).all()
    assert not holes_from_masks(torch.ones(1, 1, 4, 4)).any()  # nothing removed, nothing to fill
    per_image = torch.stack([torch.tensor([[0.2, 0.6, 1.0]]), torch.tensor([[0.0, 0.55, 0.7]])])[:, None]
    assert holes_from_masks(per_image)[:, 0, 0].tolist() == [[True, False, False], [True, False, False]]


def test_an_image_without_holes_comes_back_unchanged_without_calling_the_model():
    calls = []

    def model(images, holes):
        calls.append(len(images))
        return torch.zeros_like(images)

    inpainter = LearnedInpainter(model)
    images = torch.rand(3, 3, 16, 16)
    masks = torch.ones(3, 1, 16, 16)
    masks[1, :, :4, :4] = 0
    filled = inpainter(images, masks)
    assert calls == [1]  # only the image with a hole reached the model
    assert torch.equal(filled[[0, 2]], images[[0, 2]])
    assert (filled[1, :, :4, :4] == 0).all() and torch.equal(filled[1, :, 4:], images[1, :, 4:])


def test_many_masks_of_one_image_batched_equal_one_by_one():
    image = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    masks = F.interpolate((torch.rand(12, 1, 6, 6, generator=torch.Generator().manual_seed(1)) > 0.4).float(), size=(48, 48))
    batched = OpenCVInpainter("ns", workers=4)(image.expand(12, -1, -1, -1), masks)
    alone = torch.cat([OpenCVInpainter("ns", workers=1)(image, masks[i : i + 1]) for i in range(12)])
    assert torch.equal(batched, alone)
    assert not torch.equal(batched[0], batched[1])  # different masks really give different fills


def test_an_image_that_is_all_hole_becomes_grey():
    filled = OpenCVInpainter()(torch.rand(1, 3, 16, 16), torch.zeros(1, 1, 16, 16))
    assert torch.allclose(filled, torch.full_like(filled, 0.5))


def test_filler_specs_build_the_inpainters():
    assert resolve_filler("inpaint", (0.5,) * 3).method == "ns"
    telea = resolve_filler("telea:5", (0.5,) * 3)
    assert isinstance(telea, OpenCVInpainter) and telea.method == "telea" and telea.radius == 5.0
    assert isinstance(resolve_filler("biharmonic", (0.5,) * 3), BiharmonicInpainter)
    assert resolve_filler("ns", (0.5,) * 3).depends_on_mask
    with pytest.raises(ValueError, match="inpaint, ns"):
        resolve_filler("deepfill", (0.5,) * 3)
    with pytest.raises(ValueError, match="needs the masks"):
        OpenCVInpainter()(torch.rand(1, 3, 8, 8))


def test_a_torchscript_inpainting_model_fills_holes_from_visible_pixels_only(tmp_path):
    path = tmp_path / "mean_inpainter.pt"
    torch.jit.script(MeanOfVisible()).save(str(path))
    inpainter = LearnedInpainter(path, batch_size=2)
    images = torch.rand(5, 3, 20, 20, generator=torch.Generator().manual_seed(0))
    holes = torch.zeros(5, 1, 20, 20, dtype=torch.bool)
    holes[:, :, 5:12, 3:15] = True
    painted = inpainter.inpaint(images, holes)
    visible_mean = (images * ~holes).sum((2, 3)) / (~holes).sum((2, 3))
    assert torch.allclose(painted[:, :, 8, 8], visible_mean, atol=1e-6)
    assert torch.equal(painted[~holes.expand_as(images)], images[~holes.expand_as(images)])
    # a callable works the same, and the model never sees the removed content
    assert torch.allclose(LearnedInpainter(MeanOfVisible()).inpaint(images, holes), painted)
    echoed = LearnedInpainter(lambda x, h: x).inpaint(images, holes)
    assert (echoed[holes.expand_as(images)] == 0).all()


def test_learned_inpainter_errors_name_the_problem(tmp_path):
    images, holes = torch.rand(2, 3, 8, 8), torch.ones(2, 1, 8, 8, dtype=torch.bool)
    with pytest.raises(InpainterOutputError, match="shape"):
        LearnedInpainter(lambda x, h: x[:, :1]).inpaint(images, holes)
    with pytest.raises(InpainterOutputError, match="NaN"):
        LearnedInpainter(lambda x, h: x * float("nan")).inpaint(images, holes)
    with pytest.raises(InpainterOutputError, match="not a tensor"):
        LearnedInpainter(lambda x, h: x.numpy()).inpaint(images, holes)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        LearnedInpainter(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_text("not a model")
    with pytest.raises(ValueError, match="not a TorchScript model"):
        LearnedInpainter(tmp_path / "junk.pt")
    with pytest.raises(TypeError, match="callable"):
        LearnedInpainter(42)
    with pytest.raises(ValueError, match="holes of shape"):
        LearnedInpainter(MeanOfVisible()).inpaint(images, holes[:, :, :4])


def test_inpainting_removes_the_objects_evidence(shapes_task):
    images, classes, objects = shapes_task.correctly_classified(20)
    keep = 1 - F.max_pool2d(objects[:, None].float(), 5, stride=1, padding=2)  # the object and a 2 px rim
    index = torch.arange(len(classes))

    def class_score(filler) -> float:
        with torch.no_grad():
            probabilities = shapes_task.classifier.probabilities(blend(images, keep, filler(images, keep)))
        return float(probabilities[index, classes].mean())

    with torch.no_grad():
        before = float(shapes_task.classifier.probabilities(images)[index, classes].mean())
    inpainted = class_score(OpenCVInpainter("ns"))
    mean_colour = class_score(Constant(shapes_task.classifier.mean_colour))
    assert before > 0.9
    # the tiny CNN is trained here, so the figure depends on the processor: below 0.3 of the
    # score on the AMD EPYC the test was written on, 0.33 of 0.96 on an Intel Xeon
    assert inpainted < 0.4 * before, f"class score {before:.2f} → {inpainted:.2f} after inpainting the object"
    assert inpainted < mean_colour, f"inpainting left {inpainted:.2f}, the mean colour {mean_colour:.2f}"
