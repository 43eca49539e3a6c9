"""Explaining models from torchvision and timm as they come, and loading them with the
preprocessing they state (``Classifier.from_timm``, ``Classifier.from_torchvision``).

torchvision and timm are the optional extra ``.[vision]``; these tests skip where they do not
import. The project's own venv cannot hold them (PyPI's torchvision does not import beside its
torch), so they run in an environment that has them (the benchmarks' comparison environment,
with torch, torchvision, timm and maskscope's dependencies), with maskscope from the checkout:

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 /path/to/vision-env/bin/python -m pytest -q tests/test_vision_models.py -p no:cacheprovider

The weights are random (nothing is downloaded: ``pretrained=False``, ``weights=None``, checkpoints
saved in a temporary folder), so the tests check the plumbing against a direct computation and
what the model's own configuration says, not what the maps show."""

from __future__ import annotations

import argparse
import json
import sys
import warnings

import pytest
import torch

from maskscope import Classifier
from maskscope.core.model.view import ClassifierView
from maskscope.errors import MaskscopeError, MaskscopeValueError, MissingFileError, MissingPackageError
from maskscope.methods import RISE, GradCAM, Occlusion
from maskscope.methods.gradcam import TokenGrid, default_layer

REFERENCE = (
    "a Python that has them, beside the checkout: "
    "PYTHONPATH=$PWD /path/to/vision-env/bin/python -m pytest tests/test_vision_models.py"
)


def needs(module: str):
    package = module.split(".")[0]
    return pytest.importorskip(module, reason=f"{package} (the optional extra .[vision]) is not installed; run with {REFERENCE}")


def direct_gradcam(classifier: Classifier, image: torch.Tensor, target: int, layer, reshape=None) -> torch.Tensor:
    """ReLU(Σ_k mean(∂p_c/∂A^k)·A^k) on the layer's grid, computed by hand with a hook, 1×h×w."""
    captured = {}
    handle = layer.register_forward_hook(lambda _m, _i, out: captured.__setitem__("a", out))
    try:
        probability = classifier.model(classifier.normalise(image).requires_grad_(True)).softmax(1)[0, target]
    finally:
        handle.remove()
    activations = captured["a"]
    (gradients,) = torch.autograd.grad(probability, activations)
    if reshape is not None:
        activations, gradients = reshape(activations), reshape(gradients)
    return torch.relu((gradients.mean((2, 3), keepdim=True) * activations).sum(1))[0].detach()


def check_explains(classifier: Classifier, layer, reshape=None) -> None:
    height, width = classifier.view.size
    image = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0))
    target = int(classifier.probabilities(image).argmax())
    explanation = GradCAM(layer=layer, reshape=reshape)(classifier, image, target=target)
    expected = direct_gradcam(classifier, image, target, layer, reshape)
    assert expected.max() > 0
    assert torch.allclose(explanation.coarse_map[0, 0], expected, rtol=1e-3, atol=1e-6 * float(expected.max()))
    for method in (RISE(samples=32, batch_size=16), Occlusion(window=56, stride=56)):
        saliency = method(classifier, image, target=target).saliency
        assert saliency.shape == (1, height, width) and saliency.std() > 0


def tiny_vit(timm, **options):
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, depth=2, **options)


# ----------------------------------------------------------------- modules handed in
def test_a_torchvision_resnet_with_its_layer_given_as_a_module():
    models = needs("torchvision.models")
    model = models.resnet18(weights=None)
    classifier = Classifier(model, view=ClassifierView(256, 224), name="resnet18")
    check_explains(classifier, model.layer4)


def test_a_timm_vision_transformer_through_its_tokens():
    timm = needs("timm")
    model = tiny_vit(timm)
    classifier = Classifier(model, mean=(0.5,) * 3, std=(0.5,) * 3, view=ClassifierView(256, 224), name="vit_tiny")
    check_explains(classifier, model.blocks[-1].norm1, TokenGrid(prefix_tokens=1))


# ----------------------------------------------------------------- timm
def test_from_timm_reads_the_pretrained_config_and_grad_cam_finds_the_last_block():
    timm = needs("timm")
    model = tiny_vit(timm, num_classes=5)
    classifier = Classifier.from_timm(model, class_names=list("abcde"))
    config = model.pretrained_cfg
    assert classifier.mean.flatten().tolist() == list(config["mean"]) == [0.5] * 3
    assert classifier.std.flatten().tolist() == list(config["std"])
    # timm's evaluation transform: resize to floor(224 / crop_pct 0.9) = 248, centre crop 224, bicubic
    assert classifier.view == ClassifierView(resize=248, crop=224, interpolation="bicubic")
    assert classifier.class_names == list("abcde") and classifier.name == "vit_tiny_patch16_224"
    image = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    name, grid = default_layer(classifier, image)
    assert name == "blocks.1.norm1", "Grad-CAM's default layer is the last block's input tokens"
    assert grid is not None and grid(torch.zeros(1, 197, 192)).shape == (1, 192, 14, 14)  # the class token dropped
    check_explains(classifier, model.blocks[-1].norm1, TokenGrid(prefix_tokens=1))
    saliency = GradCAM()(classifier, image).saliency
    assert saliency.shape == (1, 224, 224) and torch.isfinite(saliency).all() and saliency.max() > 0


def test_from_timm_by_name_loads_a_local_checkpoint_with_its_classes_and_names(tmp_path):
    timm = needs("timm")
    trained = timm.create_model("resnet10t", pretrained=False, num_classes=3).eval()
    path = tmp_path / "resnet10t.pth"
    state = {f"module.{key}": value for key, value in trained.state_dict().items()}  # as DataParallel saves it
    arguments = argparse.Namespace(model="resnet10t", lr=0.1)  # timm's train.py saves its arguments beside the weights
    torch.save({"state_dict": state, "class_names": ["cat", "dog", "fox"], "epoch": 7, "args": arguments}, path)
    classifier = Classifier.from_timm("resnet10t", checkpoint=path)
    assert classifier.class_names == ["cat", "dog", "fox"] and classifier.num_classes == 3
    config = trained.pretrained_cfg
    side = config["input_size"][-1]
    assert classifier.view.crop == side and classifier.view.resize == int(side / config["crop_pct"])
    image = torch.rand(2, 3, side, side, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = trained(classifier.normalise(image)).softmax(1)
        assert torch.allclose(classifier.probabilities(image), expected, atol=1e-5)


def test_a_timm_model_of_one_channel_and_a_wide_input(tmp_path):
    timm = needs("timm")
    model = timm.create_model("resnet10t", pretrained=False, num_classes=2, in_chans=1)
    model.pretrained_cfg = {**model.pretrained_cfg, "input_size": (1, 96, 192), "crop_pct": 1.0}
    classifier = Classifier.from_timm(model)
    assert classifier.channels == 1 and classifier.mean.numel() == 1
    assert classifier.mean.item() == pytest.approx(sum(model.pretrained_cfg["mean"]) / 3)
    assert classifier.view.size == (96, 192)
    image = torch.rand(1, 3, 96, 192, generator=torch.Generator().manual_seed(0))
    for method in (GradCAM(), Occlusion(window=32, stride=32)):
        saliency = method(classifier, image).saliency
        assert saliency.shape == (1, 96, 192) and torch.isfinite(saliency).all()


def test_from_timm_errors_name_the_file_and_the_architecture(tmp_path):
    needs("timm")
    with pytest.raises(MissingFileError, match="missing.pth"):
        Classifier.from_timm("resnet10t", checkpoint=tmp_path / "missing.pth")
    with pytest.raises(MaskscopeValueError, match="did you mean: .*resnet10t"):
        Classifier.from_timm("resnet10")
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(2, 2)}, wrong)
    with pytest.raises(MaskscopeValueError, match="does not fit timm:resnet10t"):
        Classifier.from_timm("resnet10t", checkpoint=wrong)


# ----------------------------------------------------------------- torchvision
def test_from_torchvision_reads_the_weights_transforms_and_categories_without_downloading(tmp_path, monkeypatch):
    models = needs("torchvision.models")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-downloads"))
    trained = models.get_model("mobilenet_v3_small", weights=None).eval()
    path = tmp_path / "mobilenet.pth"
    torch.save(trained.state_dict(), path)
    weights = "MobileNet_V3_Small_Weights.IMAGENET1K_V1"
    classifier = Classifier.from_torchvision("mobilenet_v3_small", checkpoint=path, weights_enum=weights)
    transforms = models.get_weight(weights).transforms()
    assert classifier.view == ClassifierView(resize=transforms.resize_size[0], crop=transforms.crop_size[0])
    assert classifier.mean.flatten().tolist() == pytest.approx(transforms.mean)
    assert classifier.std.flatten().tolist() == pytest.approx(transforms.std)
    assert classifier.class_names == models.get_weight(weights).meta["categories"]
    assert not (tmp_path / "no-downloads").exists(), "nothing is downloaded"
    image = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(classifier.probabilities(image), trained(classifier.normalise(image)).softmax(1), atol=1e-5)
    member = models.MobileNet_V3_Small_Weights.IMAGENET1K_V1
    same = Classifier.from_torchvision("mobilenet_v3_small", checkpoint=path, weights_enum=member)
    assert same.view == classifier.view and same.class_names == classifier.class_names


def test_from_torchvision_takes_a_checkpoint_of_its_own_classes_and_warns_of_assumed_statistics(tmp_path):
    models = needs("torchvision.models")
    trained = models.get_model("resnet18", weights=None, num_classes=4).eval()
    path = tmp_path / "resnet18.pt"
    torch.save({"model": trained.state_dict(), "classes": ["a", "b", "c", "d"]}, path)
    with pytest.warns(UserWarning, match="without weights_enum: assuming ImageNet mean"):
        classifier = Classifier.from_torchvision("resnet18", checkpoint=path)
    assert classifier.class_names == ["a", "b", "c", "d"] and classifier.view == ClassifierView(256, 224)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        given = Classifier.from_torchvision("resnet18", checkpoint=path, mean=(0.5,) * 3, std=(0.5,) * 3)
    assert given.mean.flatten().tolist() == [0.5] * 3
    check_explains(classifier, classifier.module.layer4)


def test_from_torchvision_errors_name_the_architecture_the_weights_and_the_file(tmp_path):
    needs("torchvision.models")
    with pytest.raises(MaskscopeValueError, match="did you mean: resnet50"):
        Classifier.from_torchvision("resnet05")
    with pytest.raises(MaskscopeValueError, match="ResNet18_Weights.IMAGENET1K_V1"):
        Classifier.from_torchvision("resnet18", weights_enum="IMAGENET1K_V9")
    with pytest.raises(MissingFileError, match="nothing.pth"):
        Classifier.from_torchvision("resnet18", checkpoint=tmp_path / "nothing.pth")


def test_without_the_vision_extra_the_loaders_say_in_one_line_what_to_install(monkeypatch):
    for module in ("timm", "torchvision", "torchvision.models"):
        monkeypatch.setitem(sys.modules, module, None)  # an import of it fails, as where it is not installed
    for load in (lambda: Classifier.from_timm("resnet18"), lambda: Classifier.from_torchvision("resnet18")):
        with pytest.raises(MissingPackageError, match=r"pip install 'maskscope\[vision\]'") as raised:
            load()
        assert isinstance(raised.value, MaskscopeError) and "\n" not in str(raised.value)


# ----------------------------------------------------------------- the command line
def test_explain_on_the_command_line_loads_timm_and_torchvision_models_with_their_checkpoints(tmp_path, capsys):
    timm, models = needs("timm"), needs("torchvision.models")
    from PIL import Image

    from maskscope.cli.main import main

    photo = tmp_path / "photo.png"
    pixels = torch.rand(200, 300, 3, generator=torch.Generator().manual_seed(0))
    Image.fromarray((pixels * 255).round().to(torch.uint8).numpy()).save(photo)
    timm_file, torchvision_file = tmp_path / "r10.pth", tmp_path / "mobilenet.pth"
    names = ["cat", "dog", "fox"]
    torch.save({"model": timm.create_model("resnet10t", pretrained=False, num_classes=3).state_dict(),
                "class_names": names}, timm_file)  # fmt: skip
    torch.save(models.get_model("mobilenet_v3_small", weights=None).state_dict(), torchvision_file)
    runs = {
        "timm": (["--model", "timm:resnet10t", "--model-checkpoint", str(timm_file)], (176, 176), names),
        "torchvision": (["--model", "torchvision:mobilenet_v3_small:IMAGENET1K_V1", "--model-checkpoint",
                         str(torchvision_file)], (224, 224), models.MobileNet_V3_Small_Weights.IMAGENET1K_V1.meta["categories"]),
    }  # fmt: skip
    for route, (options, size, classes) in runs.items():
        out = tmp_path / route
        assert main(["explain", str(photo), *options, "--method", "gradcam", "--out", str(out)]) == 0
        record = json.loads((out / "photo.json").read_text())
        assert record["target_names"][0] in classes, route
        assert tuple(record["saliency_shape"][-2:]) == size, f"{route}: the map is of the view its weights state"
