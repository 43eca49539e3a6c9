"""Black-box models through ONNX Runtime: export, same scores and maps as torch, the CLI path."""

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("onnxruntime")

from maskscope.cli.main import main  # noqa: E402
from maskscope.core.model.classifier import Classifier  # noqa: E402
from maskscope.core.model.onnx_models import export_onnx, load_onnx_classifier  # noqa: E402
from maskscope.core.model.view import ClassifierView  # noqa: E402
from maskscope.methods import METHODS, RISE, MeaningfulPerturbation  # noqa: E402


@pytest.fixture(scope="module")
def tiny_onnx(shapes_task, tmp_path_factory) -> Classifier:
    path = export_onnx(shapes_task.classifier, tmp_path_factory.mktemp("onnx") / "tiny.onnx")
    return load_onnx_classifier(path, engine="onnxruntime")


def test_the_onnx_model_gives_the_torch_scores_and_settings(shapes_task, tiny_onnx):
    torch_classifier = shapes_task.classifier
    images = shapes_task.test.images[:7]  # a batch size the export never saw
    with torch.no_grad():
        expected = torch_classifier.probabilities(images)
    assert torch.allclose(tiny_onnx.probabilities(images), expected, atol=1e-5)
    assert torch.allclose(tiny_onnx.probabilities(images[:1]), expected[:1], atol=1e-5)
    assert tiny_onnx.class_names == torch_classifier.class_names
    assert torch.equal(tiny_onnx.mean, torch_classifier.mean) and torch.equal(tiny_onnx.std, torch_classifier.std)
    assert tiny_onnx.view == torch_classifier.view and tiny_onnx.name == "tiny-cnn"
    assert not tiny_onnx.differentiable


@pytest.mark.parametrize("method_name", ["rise", "sliding_patch", "lime"])
def test_black_box_methods_give_the_same_map_on_onnx(shapes_task, tiny_onnx, method_name):
    if method_name not in METHODS:
        pytest.skip(f"method {method_name} is not available")
    method = RISE(samples=300) if method_name == "rise" else METHODS[method_name]()
    images, classes, _ = shapes_task.correctly_classified(2)
    on_torch = method(shapes_task.classifier, images, target=classes.tolist(), seed=0).saliency
    on_onnx = method(tiny_onnx, images, target=classes.tolist(), seed=0).saliency
    scale = on_torch.abs().max()
    assert (on_onnx - on_torch).abs().max() < 1e-3 * scale


def test_an_exported_file_states_its_normalisation_and_is_not_warned_of(shapes_task, tmp_path):
    path = export_onnx(shapes_task.classifier, tmp_path / "tiny.onnx")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*normalisation")
        loaded = load_onnx_classifier(path, engine="onnxruntime")
    assert torch.equal(loaded.mean, shapes_task.classifier.mean) and torch.equal(loaded.std, shapes_task.classifier.std)


def test_the_command_lines_settings_win_over_the_files(shapes_task, tmp_path):
    from maskscope.core.model.loading import load_model
    from maskscope.core.model.spec import ModelSpec

    path = export_onnx(shapes_task.classifier, tmp_path / "tiny.onnx")
    names = tmp_path / "names.txt"
    names.write_text("\n".join(f"shape {index}" for index in range(shapes_task.classifier.num_classes)))
    loaded = load_model(ModelSpec(str(path), mean=(0.25,) * 3, size=(64, 64), class_names=str(names)))
    assert loaded.mean.flatten().tolist() == [0.25] * 3 and loaded.view == ClassifierView(resize=73, crop=64)
    assert loaded.class_names[0] == "shape 0"
    assert torch.equal(loaded.std, shapes_task.classifier.std)  # not given: the file's


def test_gradient_methods_refuse_the_onnx_model(tiny_onnx, shapes_task):
    with pytest.raises(TypeError, match="needs gradients"):
        MeaningfulPerturbation(steps=1)(tiny_onnx, shapes_task.test.images[:1])


def test_the_command_line_explains_with_an_onnx_model(shapes_task, tmp_path, capsys):
    model = export_onnx(shapes_task.classifier, tmp_path / "tiny.onnx")
    photo = tmp_path / "shape.png"
    pixels = (shapes_task.test.images[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(pixels).save(photo)
    out = tmp_path / "out"
    status = main(
        ["explain", str(photo), "--model", str(model), "--method", "rise", "--param", "samples=64", "--out", str(out), "--quiet"]
    )
    assert status == 0
    saliency = np.load(out / "shape.npy")
    assert saliency.shape == (64, 64) and np.isfinite(saliency).all()
    status = main(["explain", str(photo), "--model", str(model), "--method", "mp", "--out", str(out), "--quiet"])
    assert status == 2
    assert "needs gradients" in capsys.readouterr().err


def test_unusable_onnx_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        load_onnx_classifier(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="junk.onnx"):
        load_onnx_classifier(tmp_path / "junk.onnx")
    with pytest.raises(TypeError, match="not a torch module"):
        export_onnx(Classifier.from_callable(lambda batch: batch.mean((2, 3))), tmp_path / "callable.onnx")


@pytest.mark.slow
def test_the_exported_default_model_agrees_with_torch_on_a_photo(default_classifier, tmp_path):
    from skimage import data

    from maskscope.data.images import load_image

    path = export_onnx(default_classifier, tmp_path / "efficientnet-lite0.onnx")
    onnx_classifier = load_onnx_classifier(path, engine="onnxruntime")
    photo = default_classifier.view(load_image(data.chelsea(), name="chelsea"))[None]
    with torch.no_grad():
        expected = default_classifier.probabilities(photo)
    scores = onnx_classifier.probabilities(photo)
    assert int(scores.argmax()) == int(expected.argmax())
    assert onnx_classifier.class_names[int(scores.argmax())] == default_classifier.class_names[int(expected.argmax())]
    assert torch.allclose(scores, expected, atol=1e-4)
