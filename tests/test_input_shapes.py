"""Models of any input size (160×320) and of one input channel (grey), through the view, the
classifier and the methods.

The model is a small CNN whose weights are set by hand so that its decision is known: a 1×1
convolution finds what is brighter than the mean colour, and class ``left`` scores the left half brighter than the right
(``right`` the reverse). A map that is transposed, stretched or cropped wrongly then misses the
bright blob the decision rests on."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from maskscope import Classifier
from maskscope.core.model.classifier import IMAGENET_MEAN, LUMINANCE
from maskscope.core.model.view import ClassifierView
from maskscope.errors import MaskscopeValueError
from maskscope.methods import RISE, GradCAM, Gradient, MeaningfulPerturbation, Occlusion

HEIGHT, WIDTH = 160, 320


class BrightHalf(nn.Module):
    """logit(left) = −logit(right) = 20·(how much of the left half is bright − of the right half):
    "bright" is a normalised brightness above 1/8, which the mean colour is not."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.brightness = nn.Conv2d(channels, 4, 1)
        self.head = nn.Linear(8, 2)
        with torch.no_grad():
            self.brightness.weight.fill_(4 / channels)
            self.brightness.bias.fill_(-0.5)  # fires on what is brighter than the mean colour, the blob
            self.head.weight.zero_()
            self.head.bias.zero_()
            self.head.weight[0, :4], self.head.weight[0, 4:] = 5.0, -5.0
            self.head.weight[1] = -self.head.weight[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = torch.relu(self.brightness(x))
        halves = nn.functional.adaptive_avg_pool2d(features, (1, 2))  # B×4×1×2: left, right
        return self.head(halves[:, :, 0].transpose(1, 2).flatten(1))


def blob_image(height: int, width: int, left: bool, grey: bool = False) -> torch.Tensor:
    """A dark image 1×3×H×W with a bright square in the left (or right) half."""
    image = torch.full((1, 3, height, width), 0.2)
    side = height // 3
    top, start = height // 3, (width // 8 if left else width - width // 8 - side)
    colour = torch.tensor([0.9, 0.9, 0.9] if grey else [0.9, 0.7, 0.4])
    image[0, :, top : top + side, start : start + side] = colour[:, None, None]
    return image


def blob_box(height: int, width: int, left: bool) -> tuple[slice, slice]:
    side = height // 3
    start = width // 8 if left else width - width // 8 - side
    return slice(height // 3, height // 3 + side), slice(start, start + side)


# ----------------------------------------------------------------- the view
def test_a_view_of_two_sides_crops_height_by_width_and_maps_back():
    view = ClassifierView(resize=None, crop=(HEIGHT, WIDTH))
    assert view.size == (HEIGHT, WIDTH) and not view.square
    image = torch.rand(3, 300, 400)
    assert view(image).shape == (3, HEIGHT, WIDTH)
    saliency = torch.zeros(HEIGHT, WIDTH)
    saliency[:, : WIDTH // 2] = 1
    back = view.to_original(saliency, (300, 400))
    assert back.shape == (300, 400) and back[:, :190].min() == 1 and back[:, 210:].max() == 0


def test_a_resized_view_covers_the_crop_and_puts_the_map_back_in_its_place():
    view = ClassifierView(resize=(180, 360), crop=(HEIGHT, WIDTH))
    assert view.resized_size(300, 300) == (360, 360)  # a square photo scaled to cover 180×360
    assert view.resized_size(200, 600) == (180, 540)
    image = torch.rand(3, 200, 600)
    assert view(image).shape == (3, HEIGHT, WIDTH)
    back = view.to_original(torch.ones(HEIGHT, WIDTH), (200, 600))
    seen = ~back.isnan()
    rows, cols = seen.any(1).nonzero().flatten(), seen.any(0).nonzero().flatten()
    # the crop is the centre 160×320 of 180×540: rows 10..170 and columns 110..430 of it, ×(200/180)
    assert abs(int(rows[0]) - 11) <= 1 and abs(int(rows[-1]) - 188) <= 1
    assert abs(int(cols[0]) - 122) <= 1 and abs(int(cols[-1]) - 477) <= 1
    assert view.decode_side == 720


def test_a_short_side_resize_with_a_wide_crop_scales_up_to_cover_it():
    view = ClassifierView(resize=170, crop=(HEIGHT, WIDTH))
    assert view.resized_size(400, 400) == (320, 320)  # short side 170 would leave the crop 320 wide uncovered
    assert view(torch.rand(3, 400, 400)).shape == (3, HEIGHT, WIDTH)


def test_square_views_keep_their_behaviour_and_equal_sides_are_one_side():
    assert ClassifierView(resize=256, crop=(224, 224)) == ClassifierView(256, 224)
    view = ClassifierView(256, 224)
    assert view.crop == 224 and view.size == (224, 224) and view.decode_side == 512
    assert view.resized_size(300, 600) == (256, 512) and view.describe() == "256->224"
    assert ClassifierView(None, (HEIGHT, WIDTH)).describe() == "None->160x320"
    for bad in ({"crop": 0}, {"crop": (1, 2, 3)}, {"interpolation": "lanczos"}):
        with pytest.raises(MaskscopeValueError):
            ClassifierView(**bad)


def test_a_bicubic_view_resamples_bicubically():
    image = torch.rand(3, 100, 100, generator=torch.Generator().manual_seed(0))
    bilinear, bicubic = ClassifierView(None, 40)(image), ClassifierView(None, 40, interpolation="bicubic")(image)
    assert bicubic.shape == bilinear.shape == (3, 40, 40)
    assert not torch.allclose(bilinear, bicubic) and 0 <= bicubic.min() and bicubic.max() <= 1


# ----------------------------------------------------------------- one-channel models
def grey_classifier(**options) -> Classifier:
    return Classifier(BrightHalf(1), class_names=["left", "right"], view=ClassifierView(None, 64), **options)


def test_one_channel_is_read_from_the_first_convolution_with_grey_statistics():
    classifier = grey_classifier()
    assert classifier.channels == 1
    assert classifier.mean.shape == (1, 1, 1, 1) and float(classifier.mean) == pytest.approx(sum(IMAGENET_MEAN) / 3)
    assert classifier.mean_colour.shape == (1, 3, 1, 1) and classifier.mean_colour.std() == 0
    assert Classifier(BrightHalf(3)).channels == 3
    assert Classifier(lambda x: x.mean((2, 3)), mean=(0.5,), std=(0.5,)).channels == 1


def test_rgb_photos_reach_a_one_channel_model_as_their_luminance_and_grey_ones_as_they_are():
    classifier = grey_classifier(mean=(0.5,), std=(0.25,))
    model = classifier.module
    rgb = blob_image(64, 64, left=True)
    grey = blob_image(64, 64, left=True, grey=True)
    luminance = (rgb * torch.tensor(LUMINANCE).view(1, 3, 1, 1)).sum(1, keepdim=True)
    with torch.no_grad():
        assert torch.allclose(classifier.logits(rgb), model((luminance - 0.5) / 0.25), atol=1e-5)
        assert torch.allclose(classifier.logits(grey), model((grey[:, :1] - 0.5) / 0.25), atol=1e-5)
        assert torch.allclose(classifier.logits(grey[:, :1]), classifier.logits(grey), atol=1e-5)
    assert classifier.probabilities(rgb).argmax() == 0 and classifier.probabilities(rgb.flip(-1)).argmax() == 1


def test_a_one_channel_gradient_is_the_luminance_share_of_the_grey_one():
    classifier = grey_classifier()
    image = blob_image(64, 64, left=True).requires_grad_(True)
    (gradient,) = torch.autograd.grad(classifier.logits(image)[0, 0], image)
    grey = gradient.sum(1, keepdim=True)
    assert grey.abs().max() > 0
    assert torch.allclose(gradient, grey * torch.tensor(LUMINANCE).view(1, 3, 1, 1), atol=1e-7)
    saliency = Gradient(score="logit")(classifier, image.detach(), target=0).saliency
    assert saliency.shape == (1, 64, 64) and torch.isfinite(saliency).all() and saliency.max() > 0


def test_channels_and_statistics_that_do_not_fit_are_refused():
    with pytest.raises(MaskscopeValueError, match="mean has 3 values"):
        Classifier(BrightHalf(1), mean=(0.5, 0.5, 0.5), std=(0.5,))
    with pytest.raises(MaskscopeValueError, match="channels=2"):
        Classifier(BrightHalf(3), channels=2)
    assert Classifier(BrightHalf(1), channels=3, mean=(0.5,) * 3, std=(0.5,) * 3).channels == 3  # told, not guessed


def test_a_one_channel_model_exports_to_the_compiled_engine_with_one_input_channel():
    pytest.importorskip("onnxruntime", reason="the onnxruntime engine is the optional extra .[onnx]")
    eager, compiled = grey_classifier(), grey_classifier(engine="onnxruntime")
    images = torch.cat([blob_image(64, 64, left=True), blob_image(64, 64, left=False)])
    with torch.no_grad():
        assert torch.allclose(compiled.probabilities(images), eager.probabilities(images), atol=1e-5)
    assert compiled.engine_record()["engine"] == "onnxruntime" and "fallback" not in compiled.engine_record()


# ----------------------------------------------------------------- every kind of method
METHODS = {
    "rise": lambda: RISE(samples=96, batch_size=32),
    "occlusion": lambda: Occlusion(window=32, stride=16),
    "gradient": lambda: Gradient(),
    "gradcam": lambda: GradCAM(),
    "mp": lambda: MeaningfulPerturbation(steps=12),
}


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("method", list(METHODS))
def test_methods_explain_a_wide_model_and_a_grey_one_where_the_decision_rests(method, channels):
    classifier = Classifier(
        BrightHalf(channels), class_names=["left", "right"], view=ClassifierView(None, (HEIGHT, WIDTH)),
        mean=(0.5,) * channels, std=(0.5,) * channels,
    )  # fmt: skip
    images = torch.cat([blob_image(HEIGHT, WIDTH, left=True), blob_image(HEIGHT, WIDTH, left=False)])
    explanation = METHODS[method]()(classifier, images, target=["left", "right"])
    saliency = explanation.saliency
    assert saliency.shape == (2, HEIGHT, WIDTH) and torch.isfinite(saliency).all()
    for index, left in enumerate((True, False)):
        rows, cols = blob_box(HEIGHT, WIDTH, left)
        inside = saliency[index, rows, cols].mean()
        other = blob_box(HEIGHT, WIDTH, not left)  # the same area in the other half
        assert inside > saliency[index, other[0], other[1]].mean(), f"{method} missed the blob of image {index}"


def test_explaining_photo_files_puts_them_in_a_wide_view(tmp_path):
    classifier = Classifier(
        BrightHalf(1), class_names=["left", "right"], view=ClassifierView(resize=(HEIGHT, WIDTH), crop=(HEIGHT, WIDTH)),
        mean=(0.5,), std=(0.5,),
    )  # fmt: skip
    photo = blob_image(240, 480, left=False)[0]
    path = tmp_path / "wide.png"
    Image.fromarray((photo.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path)
    explanation = Occlusion(window=32, stride=16)(classifier, [path])
    assert explanation.saliency.shape == (1, HEIGHT, WIDTH) and explanation.target_names == [["right"]]
    rows, cols = blob_box(HEIGHT, WIDTH, left=False)
    assert explanation.saliency[0, rows, cols].mean() > explanation.saliency[0, :, : WIDTH // 2].mean()


class GreyFeatures(nn.Module):
    """A one-channel CNN with a ``features`` module, as the explainer's encoder copies it."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).amax((2, 3)))


def test_the_explainers_network_on_a_wide_one_channel_classifier_keeps_its_width():
    from maskscope.methods.explainer import ClassifierFeatureNetwork

    classifier = Classifier(GreyFeatures(), view=ClassifierView(None, (48, 96)))
    network = ClassifierFeatureNetwork(classifier, num_classes=2, width=16)
    assert network.reduce[0].out_channels == 16 and network.reduce[0].in_channels == 8
    images = torch.rand(2, 3, 48, 96, generator=torch.Generator().manual_seed(0))
    assert network(classifier.normalise(images)).shape == (2, 2, 48, 96)


def test_a_one_channel_model_exported_to_onnx_comes_back_grey(tmp_path):
    pytest.importorskip("onnx", reason="exporting to ONNX is the optional extra .[onnx]")
    pytest.importorskip("onnxruntime", reason="the onnxruntime engine is the optional extra .[onnx]")
    from maskscope.core.model.engines.cache import export_module
    from maskscope.core.model.onnx_models import export_onnx, load_onnx_classifier

    classifier = grey_classifier(mean=(0.5,), std=(0.25,))
    path = export_onnx(classifier, tmp_path / "grey.onnx")
    loaded = load_onnx_classifier(path, engine="onnxruntime")
    assert loaded.channels == 1 and loaded.mean.flatten().tolist() == [0.5] and loaded.view == classifier.view
    images = torch.cat([blob_image(64, 64, left=True), blob_image(64, 64, left=False)])
    with torch.no_grad():
        assert torch.allclose(loaded.probabilities(images), classifier.probabilities(images), atol=1e-5)
    bare = tmp_path / "bare.onnx"  # no metadata: the graph's one input channel is read
    export_module(classifier.module, bare, 64, 64, channels=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the normalisation assumed is warned of
        assert load_onnx_classifier(bare, engine="onnxruntime", view=ClassifierView(None, 64)).channels == 1


@pytest.mark.parametrize("save", ["script", "trace"])
def test_a_one_channel_torchscript_file_is_read_as_one(tmp_path, save):
    model = GreyFeatures().eval()
    scripted = torch.jit.script(model) if save == "script" else torch.jit.trace(model, torch.rand(1, 1, 32, 32))
    path = tmp_path / "grey.pt"
    torch.jit.save(scripted, path)
    classifier = Classifier.from_torchscript(path, mean=(0.5,), std=(0.5,), view=ClassifierView(None, 32))
    assert classifier.channels == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the normalisation assumed is warned of
        assert Classifier.from_torchscript(path, view=ClassifierView(None, 32)).channels == 1  # read from its first conv
    image = blob_image(32, 32, left=True)
    with torch.no_grad():
        assert torch.allclose(classifier.logits(image), model(classifier.normalise(image)), atol=1e-5)
