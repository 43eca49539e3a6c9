"""Checked inputs: every bad method parameter is a one-line error from Python and the command
line alike, gradient methods keep their passes within ``batch_size``, and large photos are
reduced while decoding."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from maskscope import __version__
from maskscope.cli.main import main
from maskscope.core.model.view import ClassifierView
from maskscope.data.images import load_image
from maskscope.methods import GradCAM, Gradient, IntegratedGradients, MeaningfulPerturbation, get_method
from maskscope.methods.parameters import ParameterError

# (method, parameter, value, the words the error must say) — one case per kind of mistake
BAD_PARAMETERS = [
    ("mp", "steps", "abc", "parameter 'steps' for mp must be an integer, got 'abc'"),  # type
    ("rise", "samples", 150.0, "parameter 'samples' for rise must be an integer, got 150.0"),  # type (a float)
    ("mp", "steps", -5, "parameter 'steps' for mp must be ≥ 1, got -5"),  # range
    ("rise", "keep", 0.0, "parameter 'keep' for rise must be in (0, 1], got 0.0"),  # open range end
    ("ep", "areas", [0.1, 1.5], "parameter 'areas' for ep must be in (0, 1), got [0.1, 1.5]"),  # range per element
    ("mp", "game", "removal", "parameter 'game' for mp must be one of 'deletion', 'preservation'"),  # choice
    ("gradcam", "score", "logits", "parameter 'score' for gradcam must be one of 'probability', 'logit'"),  # choice
    ("mp", "stepz", 10, "unknown parameter 'stepz' for mp; valid: game, resolution,"),  # unknown name
]


@pytest.mark.parametrize("method, name, value, message", BAD_PARAMETERS)
def test_a_bad_parameter_is_refused_with_what_is_allowed(method, name, value, message):
    with pytest.raises(ParameterError) as raised:
        get_method(method, **{name: value})
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_the_constructor_checks_positional_and_inherited_parameters():
    with pytest.raises(ParameterError, match="'steps' for mp must be ≥ 1"):
        MeaningfulPerturbation("deletion", 28, 5.0, "blur:10", 1e-4, 1e-2, 3.0, 0.1, 0)
    with pytest.raises(ParameterError, match="'init' for mp-g must be one of"):
        get_method("mp-g", init="random")  # MP's choices hold for its subclass
    with pytest.raises(ParameterError, match="'shrink' for igos\\+\\+ must be in \\(0, 1\\)"):
        get_method("igos++", shrink=1.0)
    assert get_method("rise", samples=10, keep=1.0).keep == 1.0  # the closed end is allowed
    assert get_method("igos", l1_weight=None).l1_weight is None  # an optional value may be None


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--param", "steps=abc"], "parameter 'steps' for mp must be an integer, got 'abc'"),
        (["--method", "rise", "--param", "samples=1.5e2"], "parameter 'samples' for rise must be an integer, got 150.0"),
        (["--param", "steps=-5"], "parameter 'steps' for mp must be ≥ 1, got -5"),
        (["--param", "stepz=10"], "unknown parameter 'stepz' for mp; valid:"),
        (["--seed", "-1"], "--seed must be between 0 and 4294967295, got -1"),
    ],
)
def test_the_command_line_refuses_bad_values_in_one_line_before_any_work(arguments, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["explain", "--out", str(out), "--quiet", *arguments]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1
    assert not out.exists()


def test_version_and_python_dash_m(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out.strip() == f"maskscope {__version__}"
    result = subprocess.run([sys.executable, "-m", "maskscope", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == f"maskscope {__version__}"


class BatchRecorder:
    """Records the batch size of every forward pass of a module."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.sizes: list[int] = []
        self.handle = module.register_forward_hook(lambda _m, inputs, _o: self.sizes.append(inputs[0].shape[0]))


@pytest.mark.parametrize(
    "make",
    [
        lambda size: Gradient(batch_size=size),
        lambda size: IntegratedGradients(points=4, batch_size=size),
        lambda size: GradCAM(batch_size=size),
    ],
    ids=["gradient", "integrated_gradients", "gradcam"],
)
def test_gradient_methods_keep_every_pass_within_batch_size(make, shapes_task):
    images = shapes_task.test.images[:7]
    classifier = shapes_task.classifier
    recorder = BatchRecorder(classifier.model)
    try:
        chunked = make(3)(classifier, images, target=0)
        passes = list(recorder.sizes)
        whole = make(64)(classifier, images, target=0)
    finally:
        recorder.handle.remove()
    assert max(passes[1:]) <= 3  # the first pass scores the whole batch once, without gradients
    assert torch.allclose(chunked.saliency, whole.saliency, atol=1e-5)


def test_a_large_jpeg_is_reduced_while_decoding_and_looks_the_same_to_the_classifier(tmp_path):
    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
    photo = Image.fromarray(small).resize((2400, 1800), Image.BILINEAR)  # smooth, like a real photo
    path = tmp_path / "large.jpg"
    photo.save(path, quality=95)
    view = ClassifierView()
    full, reduced = load_image(path), load_image(path, min_side=view.decode_side)
    assert full.shape[1:] == (1800, 2400)
    assert view.decode_side <= min(reduced.shape[1:]) <= 900  # decoded at half the size (a quarter is < 512)
    assert (view(full) - view(reduced)).abs().mean() < 0.01
    png = tmp_path / "large.png"
    photo.save(png)
    assert min(load_image(png, min_side=view.decode_side).shape[1:]) == 600  # reduced by 3, short side ≥ 512


def test_normalised_or_0_255_images_are_refused_not_normalised_again(shapes_task):
    from maskscope.methods import Occlusion
    from maskscope.metrics import deletion

    classifier, images = shapes_task.classifier, shapes_task.test.images[:2]
    for bad in (classifier.normalise(images), images * 255):
        with pytest.raises(ValueError, match=r"images must be pixels in \[0, 1\], got values from"):
            Occlusion(window=8, stride=8)(classifier, bad, target=0)
        with pytest.raises(ValueError, match=r"images must be pixels in \[0, 1\]"):
            deletion(classifier, bad, torch.rand(2, *bad.shape[-2:]), target=0)
    Occlusion(window=8, stride=8)(classifier, images, target=0)  # pixels in [0, 1] pass

