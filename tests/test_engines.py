"""Inference engines: every engine gives the torch scores and maps, gradients stay on torch, the cache."""

from __future__ import annotations

import copy
import importlib.util
import json
import warnings

import pytest
import torch
from torch import nn

from maskscope.core.model.classifier import Classifier
from maskscope.core.model.engines import ENGINES, installed, resolve_engine
from maskscope.core.model.engines.cache import cache_folder
from maskscope.core.perturbation.fillers import Constant
from maskscope.core.scoring.perturbations import score_perturbations
from maskscope.methods import LIME, RISE, Occlusion, SlidingPatch
from maskscope.metrics.deletion_insertion import deletion

COMPILED = [
    pytest.param(name, marks=pytest.mark.skipif(not installed(name), reason=f"{name} is not installed"))
    for name in ("onnxruntime", "openvino")
]
needs_openvino = pytest.mark.skipif(not installed("openvino"), reason="openvino is not installed")
needs_nncf = pytest.mark.skipif(importlib.util.find_spec("nncf") is None, reason="nncf is not installed (int8)")


def on_engine(classifier: Classifier, engine: str, precision: str = "float32", **kwargs) -> Classifier:
    """The same module and settings as ``classifier``, on ``engine``."""
    return Classifier(
        classifier.model, mean=classifier.mean.flatten().tolist(), std=classifier.std.flatten().tolist(),
        class_names=classifier.class_names, view=classifier.view, name=classifier.name,
        engine=engine, precision=precision, **kwargs,
    )  # fmt: skip


@pytest.fixture(scope="module")
def engines(shapes_task) -> dict[str, Classifier]:
    return {name: on_engine(shapes_task.classifier, name) for name in ENGINES if installed(name)}


@pytest.mark.parametrize("engine", COMPILED)
def test_every_engine_gives_the_torch_probabilities_at_float32(shapes_task, engines, engine):
    images = shapes_task.test.images[:7]  # a batch size the export never saw
    with torch.no_grad():
        expected = shapes_task.classifier.probabilities(images)
        assert (engines[engine].probabilities(images) - expected).abs().max() < 1e-4
        assert (engines[engine].probabilities(images[:1]) - expected[:1]).abs().max() < 1e-4
    assert engines[engine].engine_record() == {"engine": engine, "precision": "float32"}


@pytest.mark.parametrize("engine", COMPILED)
def test_maps_and_deletion_curves_agree_across_engines(shapes_task, engines, engine):
    images, classes, _ = shapes_task.correctly_classified(2)
    targets = classes.tolist()
    methods = [
        Occlusion(window=16, stride=8), RISE(samples=200), LIME(samples=100, segments=20), SlidingPatch(window=15, stride=8)
    ]
    for method in methods:
        on_torch = method(shapes_task.classifier, images, target=targets, seed=0)
        on_engine_ = method(engines[engine], images, target=targets, seed=0)
        scale = on_torch.saliency.abs().max()
        assert (on_engine_.saliency - on_torch.saliency).abs().max() < 1e-4 * scale, method.name
        assert on_engine_.engine["engine"] == engine and on_torch.engine["engine"] == "torch"
    saliency = on_torch.saliency
    curves_torch = deletion(shapes_task.classifier, images, saliency, targets, protocol="rise")
    curves_engine = deletion(engines[engine], images, saliency, targets, protocol="rise")
    assert (curves_engine.scores - curves_torch.scores).abs().max() < 1e-4


def test_gradient_passes_run_the_torch_module(shapes_task):
    if not installed("onnxruntime"):
        pytest.skip("onnxruntime is not installed")
    classifier = on_engine(shapes_task.classifier, "onnxruntime")
    images = shapes_task.test.images[:3].clone().requires_grad_(True)
    classifier.probabilities(images)[:, 1].sum().backward()
    assert classifier._compiled.engine is None, "a pass that needs a gradient reached the compiled engine"
    expected = images.detach().clone().requires_grad_(True)
    shapes_task.classifier.probabilities(expected)[:, 1].sum().backward()
    assert torch.equal(images.grad, expected.grad)
    with torch.no_grad():
        classifier.probabilities(images)
    assert classifier._compiled.engine is not None


def test_a_module_with_forward_hooks_runs_on_torch(shapes_task):
    if not installed("onnxruntime"):
        pytest.skip("onnxruntime is not installed")
    classifier = on_engine(shapes_task.classifier, "onnxruntime")
    seen = []
    handle = classifier.model.features.register_forward_hook(lambda _m, _i, out: seen.append(out.shape))
    try:
        with torch.no_grad():
            classifier.probabilities(shapes_task.test.images[:2])
    finally:
        handle.remove()
    assert seen and classifier._compiled.engine is None


def test_the_export_is_cached_under_a_key_of_the_weights(shapes_task, tmp_path, monkeypatch):
    if not installed("onnxruntime"):
        pytest.skip("onnxruntime is not installed")
    monkeypatch.setenv("MASKSCOPE_CACHE", str(tmp_path))
    images = shapes_task.test.images[:2]
    with torch.no_grad():
        on_engine(shapes_task.classifier, "onnxruntime").probabilities(images)
        exported = sorted((cache_folder() / "engines").glob("*.onnx"))
        assert len(exported) == 1
        stamp = exported[0].stat().st_mtime_ns
        on_engine(shapes_task.classifier, "onnxruntime").probabilities(images)  # a second classifier: same file
        assert sorted((cache_folder() / "engines").glob("*.onnx")) == exported
        assert exported[0].stat().st_mtime_ns == stamp
        changed = copy.deepcopy(shapes_task.classifier.model)
        next(changed.parameters()).add_(0.5)
        expected = shapes_task.classifier.probabilities(images)  # torch: the unchanged weights
        shifted = Classifier(changed, engine="onnxruntime", view=shapes_task.classifier.view).probabilities(images)
    assert len(list((cache_folder() / "engines").glob("*.onnx"))) == 2
    assert (shifted - expected).abs().max() > 1e-3


class Unexportable(nn.Module):
    """A model with an operation ONNX lacks (eigenvalues)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.conv(x).mean((2, 3))
        return torch.linalg.eigvals(features[:, :, None] * features[:, None, :] + torch.eye(3)).real


def test_a_model_that_fails_to_export_falls_back_to_torch_with_a_warning():
    engine = "onnxruntime" if installed("onnxruntime") else "openvino"
    if not installed(engine):
        pytest.skip("no compiled engine is installed")
    model = Unexportable()
    classifier = Classifier(model, engine=engine)
    images = torch.rand(2, 3, 16, 16)
    with torch.no_grad(), pytest.warns(UserWarning, match="running on torch.*does not export") as caught:
        scores = classifier.logits(images)
        assert torch.allclose(scores, model(classifier.normalise(images)))
    assert len(caught) == 1 and len(str(caught[0].message).splitlines()) == 1
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once, not at every pass
        classifier.logits(images)
    assert classifier.engine_record()["engine"] == "torch" and "fallback" in classifier.engine_record()


@needs_openvino
@needs_nncf
def test_reduced_precisions_keep_the_top_class_and_int8_says_what_it_calibrated_on(shapes_task):
    images = shapes_task.test.images[:40]
    with torch.no_grad():
        expected = shapes_task.classifier.probabilities(images)
        bf16 = on_engine(shapes_task.classifier, "openvino", "bfloat16")
        reduced = bf16.probabilities(images)
        assert (reduced.argmax(1) == expected.argmax(1)).float().mean() >= 0.95
        assert 0 < (reduced - expected).abs().max() < 0.05
        int8 = on_engine(shapes_task.classifier, "openvino", "int8")
        quantised = int8.probabilities(images)
        assert (quantised.argmax(1) == expected.argmax(1)).float().mean() >= 0.9
        assert int8.engine_record()["calibration"] == "the first 40 images run"
        given = on_engine(shapes_task.classifier, "openvino", "int8", calibration=shapes_task.test.images[40:56])
        given.probabilities(images[:2])
        assert given.engine_record()["calibration"] == "16 given photos"


def test_auto_picks_an_installed_engine_for_the_precision():
    float32 = resolve_engine("auto", "float32")
    assert float32 == next(name for name in ("onnxruntime", "openvino", "torch") if installed(name))
    assert resolve_engine("auto", "bfloat16") == ("openvino" if installed("openvino") else "torch")
    assert resolve_engine("auto", "float32", device="cuda") == "torch"
    assert resolve_engine("auto", "float32", compiled_ok=False) == "torch"
    with pytest.raises(ValueError, match="engine must be one of"):
        resolve_engine("tensorrt", "float32")
    with pytest.raises(ValueError, match="not available on engine onnxruntime"):
        resolve_engine("onnxruntime", "bfloat16")
    with pytest.raises(ValueError, match="needs a torch.nn.Module or an ONNX file"):
        Classifier.from_callable(lambda batch: batch.mean((2, 3)), engine="onnxruntime")


def test_threads_follow_the_torch_thread_count(shapes_task, engines):
    if "onnxruntime" not in engines:
        pytest.skip("onnxruntime is not installed")
    classifier, images = engines["onnxruntime"], shapes_task.test.images[:2]
    threads = torch.get_num_threads()
    try:
        for wanted in (1, 2):
            torch.set_num_threads(wanted)
            with torch.no_grad():
                classifier.probabilities(images)
            session = classifier._compiled.engine.session(*images.shape[-2:])[0]
            assert session.get_session_options().intra_op_num_threads == wanted
    finally:
        torch.set_num_threads(threads)


def test_scoring_loops_keep_torch_on_one_thread_while_the_engine_keeps_the_process_count(shapes_task, engines):
    if "onnxruntime" not in engines:
        pytest.skip("onnxruntime is not installed")
    classifier, images = engines["onnxruntime"], shapes_task.test.images[:2]
    threads = torch.get_num_threads()
    seen = []

    def record_threads(batch: torch.Tensor) -> torch.Tensor:
        seen.append(torch.get_num_threads())
        return batch

    try:
        torch.set_num_threads(2)
        score_perturbations(classifier, images, torch.rand(3, 4, 4), Constant(0.5), transform=record_threads)
        session = classifier._compiled.engine.session(*images.shape[-2:])[0]
        assert seen == [1] and torch.get_num_threads() == 2
        assert session.get_session_options().intra_op_num_threads == 2
        seen.clear()  # on torch, the loop leaves the thread count alone
        score_perturbations(shapes_task.classifier, images, torch.rand(3, 4, 4), Constant(0.5), transform=record_threads)
        assert seen == [2]
    finally:
        torch.set_num_threads(threads)


def test_explain_records_the_engine_and_runs_an_onnx_file_on_openvino(shapes_task, tmp_path):
    pytest.importorskip("onnx")
    if not installed("openvino"):
        pytest.skip("openvino is not installed")
    from PIL import Image

    from maskscope.cli.main import main
    from maskscope.core.model.onnx_models import export_onnx

    model = export_onnx(shapes_task.classifier, tmp_path / "tiny.onnx")
    photo = tmp_path / "shape.png"
    pixels = (shapes_task.test.images[0].permute(1, 2, 0).numpy() * 255).round().astype("uint8")
    Image.fromarray(pixels).save(photo)
    out = tmp_path / "out"
    arguments = ["explain", str(photo), "--model", str(model), "--method", "rise", "--param", "samples=64", "--quiet"]
    assert main([*arguments, "--engine", "openvino", "--out", str(out)]) == 0
    assert json.loads((out / "shape.json").read_text())["engine"] == {"engine": "openvino", "precision": "float32"}
    assert main([*arguments, "--engine", "torch", "--out", str(out)]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("engine", COMPILED)
def test_the_default_model_gives_the_torch_probabilities_on_every_engine(default_classifier, engine):
    from skimage import data

    from maskscope.data.images import load_image

    photos = torch.stack([default_classifier.view(load_image(getattr(data, n)(), name=n)) for n in ("chelsea", "coffee")])
    reference = on_engine(default_classifier, "torch")
    compiled = on_engine(default_classifier, engine)
    with torch.no_grad():
        expected = reference.probabilities(photos)
        assert (compiled.probabilities(photos) - expected).abs().max() < 1e-4
