"""Explaining one's own model: the model options change the classifier, nothing is assumed
silently, a model that cannot run a method or an input size says so in one line, the spec's new
fields survive a bench run's config, and a Hugging Face folder runs through ``explain``."""

from __future__ import annotations

import json
import pickle
import re
import runpy
import shlex
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from maskscope import Classifier, ClassifierView
from maskscope.bench.config import BenchConfig
from maskscope.cli.main import build_parser, main
from maskscope.cli.options import model_spec
from maskscope.core.model.classifier import InputSizeError, ScriptModuleError
from maskscope.core.model.loading import ClassNamesError, ModelChoiceError, load_model
from maskscope.core.model.spec import ModelSpec, ModelSpecError
from maskscope.errors import MissingPackageError
from maskscope.methods import FGVis, GradCAM, MeaningfulPerturbation, ScoreCAM

RISE = ["--method", "rise", "--param", "samples=40", "--quiet"]
NAMES = ["square", "disc", "triangle"]


class ThirtyTwo(nn.Module):
    """A CNN that takes 32×32 images only: its linear layer reads the 16×16 pooled features."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 16 * 16, len(NAMES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(nn.functional.max_pool2d(torch.relu(self.conv(x)), 2).flatten(1))


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, Path]:
    """A TorchScript 32-pixel CNN and a file of its three class names."""
    folder = tmp_path_factory.mktemp("own")
    torch.manual_seed(0)
    model = folder / "small.pt"
    torch.jit.save(torch.jit.script(ThirtyTwo().eval()), str(model))
    names = folder / "names.txt"
    names.write_text("\n".join(NAMES) + "\n")
    return model, names


@pytest.fixture()
def photo(tmp_path) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(path)
    return path


def test_the_options_reach_the_spec_in_one_form():
    parser, _ = build_parser()
    for command in (["explain"], ["bench"], ["check", "entropy"], ["study", "fillers", "--out", "x"],
                    ["train-explainer", "--data", "d", "--out", "x"]):
        words = [*command, "--model", "timm:resnet18", "--model-checkpoint", "r18.pth", "--mean", "0.5,0.5,0.5",
                 "--std", "0.25", "--size", "160x320", "--class-names", "names.txt"]
        assert model_spec(parser.parse_args(words)) == ModelSpec(
            "timm:resnet18", checkpoint="r18.pth", mean=(0.5, 0.5, 0.5), std=(0.25,), size=(160, 320),
            class_names="names.txt"), command
    assert ModelSpec(size="32").size == (32, 32) and ModelSpec(size=[32, 48]).size == (32, 48)
    for bad, option in ((dict(mean="0.5,0.5"), "--mean"), (dict(std="1,0,1"), "--std"), (dict(size="32x"), "--size")):
        with pytest.raises(ModelSpecError, match=option):
            ModelSpec(**bad)


def test_size_and_class_names_change_the_classifier(small, photo, tmp_path, capsys):
    model, names = small
    out = tmp_path / "out"
    assert main(["explain", str(photo), "--model", str(model), "--size", "32", "--class-names", str(names),
                 "--mean", "0.5,0.5,0.5", "--std", "0.5,0.5,0.5", "--out", str(out), *RISE]) == 0
    assert np.load(out / "photo.npy").shape == (32, 32)
    record = json.loads((out / "photo.json").read_text())
    assert record["target_names"][0] in NAMES
    classifier = load_model(ModelSpec(str(model), engine="torch", mean=(0.5,) * 3, std=(0.5,) * 3, size=(32, 32),
                                      class_names=str(names)))
    assert classifier.class_names == NAMES and classifier.view == ClassifierView(resize=37, crop=32)
    assert classifier.mean.flatten().tolist() == [0.5, 0.5, 0.5]


def test_a_model_of_another_input_size_is_one_line_naming_the_view(small, photo, tmp_path, capsys):
    model, names = small
    assert main(["explain", str(photo), "--model", str(model), "--engine", "torch", "--out", str(tmp_path / "o"),
                 *RISE]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("maskscope explain: error: model small does not take 224×224 images")
    assert "--size N" in error and "ClassifierView(resize=None, crop=N)" in error
    with pytest.raises(InputSizeError, match="mat1 and mat2 shapes cannot be multiplied"):
        load_model(ModelSpec(str(model), engine="torch", class_names=str(names)))  # the names' check runs the model


def test_class_names_of_another_count_are_refused(small, tmp_path):
    model, _ = small
    names = tmp_path / "names.json"
    names.write_text(json.dumps(["a", "b"]))
    with pytest.raises(ClassNamesError, match="names 2 classes, but model small gives 3 scores"):
        load_model(ModelSpec(str(model), engine="torch", size=(32, 32), class_names=str(names)))


def test_a_file_without_normalisation_is_warned_of_once_naming_the_values(small):
    model, _ = small
    with pytest.warns(UserWarning) as caught:
        load_model(ModelSpec(str(model), engine="torch", size=(32, 32)))
    messages = [str(warning.message) for warning in caught if "normalisation" in str(warning.message)]
    assert len(messages) == 1
    assert "states no normalisation" in messages[0] and "0.485,0.456,0.406" in messages[0]
    assert "0.229,0.224,0.225" in messages[0] and "--mean, --std" in messages[0]
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*normalisation")  # given mean and std: nothing is assumed
        load_model(ModelSpec(str(model), engine="torch", size=(32, 32), mean=(0.5,) * 3, std=(0.5,) * 3))


def test_an_onnx_file_without_metadata_is_warned_of(tmp_path):
    pytest.importorskip("onnxscript")
    from maskscope.core.model.engines.cache import export_module

    torch.manual_seed(0)
    path = tmp_path / "bare.onnx"
    export_module(ThirtyTwo().eval(), path, 32, 32)
    with pytest.warns(UserWarning, match=r"ONNX file bare.onnx states no normalisation: assuming ImageNet's mean "
                      r"0\.485,0\.456,0\.406"):
        classifier = load_model(ModelSpec(str(path), size=(32, 32)))
    assert classifier.view.size == (32, 32)


def test_gradcam_on_a_torchscript_model_is_one_line(small, photo, tmp_path, capsys):
    model, _ = small
    status = main(["explain", str(photo), "--model", str(model), "--size", "32", "--method", "gradcam",
                   "--out", str(tmp_path / "o"), "--quiet"])
    error = capsys.readouterr().err
    assert status == 2 and "Traceback" not in error
    assert "maskscope explain: error: GradCAM hooks the model's layers, but small is a TorchScript model" in error
    classifier = load_model(ModelSpec(str(model), engine="torch", size=(32, 32), mean=(0.5,) * 3, std=(0.5,) * 3))
    with pytest.raises(ScriptModuleError, match="explain the torch.nn.Module itself"):
        classifier.require_hooks("GradCAM")
    Classifier(ThirtyTwo(), view=ClassifierView(resize=None, crop=32)).require_hooks("GradCAM")  # a module takes hooks
    images = torch.rand(1, 3, 32, 32)
    for method in (GradCAM(), ScoreCAM(), MeaningfulPerturbation(layer="auto", init="ones", steps=1), FGVis(defense=True)):
        with pytest.raises(ScriptModuleError):  # from Python too (and so in bench): one line, not torch's hook error
            method(classifier, images)
    assert MeaningfulPerturbation(steps=1)(classifier, images).saliency.shape == (1, 32, 32)  # no layer: no hook


def test_a_checkpoint_for_a_model_that_takes_none_and_a_missing_package_are_one_line(monkeypatch):
    with pytest.raises(ModelChoiceError, match="only a timm:NAME or torchvision:NAME model takes a weights file"):
        load_model(ModelSpec("default", checkpoint="weights.pth"))

    def missing(*args, **kwargs):
        raise ImportError("No module named 'timm'")

    monkeypatch.setattr(Classifier, "from_timm", missing)
    with pytest.raises(MissingPackageError, match=re.escape("--model timm:resnet18 needs timm: pip install 'maskscope[vision]'")):
        load_model(ModelSpec("timm:resnet18", checkpoint="weights.pth"))


def test_the_spec_pickles_and_survives_the_bench_config_round_trip(small, tmp_path):
    model, names = small
    spec = ModelSpec(str(model), engine="torch", checkpoint=None, mean=(0.5,) * 3, std=(0.25,) * 3, size=(32, 48),
                     class_names=str(names))
    assert pickle.loads(pickle.dumps(spec)) == spec
    config = BenchConfig("data", ["centre"], ["pointing"], **BenchConfig.model_fields(spec))
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config.resolved()))
    again = BenchConfig.from_file(path)
    assert again.model_spec() == spec and again.identity() == json.loads(json.dumps(config.identity()))


def test_bench_records_the_model_options_and_resumes_with_them(small, tmp_path, capsys):
    from test_bench import write_tiny_bench_task

    model, names = small
    write_tiny_bench_task(tmp_path, 2)
    out = tmp_path / "run"
    command = ["bench", "--data", str(tmp_path / "data"), "--model", str(model), "--size", "32", "--mean", "0.5,0.5,0.5",
               "--std", "0.5,0.5,0.5", "--methods", "centre", "--metrics", "deletion:rise-batch", "--out", str(out),
               "--workers", "1", "--quiet", "--no-report"]
    assert main(command) == 0
    written = json.loads((out / "config.json").read_text())
    assert (written["size"], written["mean"], written["std"]) == ([32, 32], [0.5] * 3, [0.5] * 3)
    records = (out / "records.jsonl").read_text()
    assert main(command) == 0  # resumed: the same settings, nothing made again
    assert (out / "records.jsonl").read_text() == records
    assert main([*command[:-4], "--size", "32x32", "--workers", "1", "--quiet", "--no-report"]) == 0  # the same size
    capsys.readouterr()
    assert main([*command, "--class-names", str(names)]) == 2
    assert "class_names differ" in capsys.readouterr().err


def test_a_hugging_face_folder_runs_through_explain(tmp_path, photo, capsys):
    transformers = pytest.importorskip("transformers")
    config = transformers.ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=16, num_hidden_layers=1,
                                    num_attention_heads=2, intermediate_size=32, num_labels=3,
                                    id2label={0: "cat", 1: "dog", 2: "owl"}, label2id={"cat": 0, "dog": 1, "owl": 2})
    torch.manual_seed(0)
    folder = tmp_path / "vit"
    transformers.ViTForImageClassification(config).eval().save_pretrained(folder)
    processor = transformers.ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    processor.save_pretrained(folder)
    out = tmp_path / "out"
    assert main(["explain", str(photo), "--model", f"hf:{folder}", "--out", str(out), *RISE]) == 0
    record = json.loads((out / "photo.json").read_text())
    assert record["target_names"][0] in ("cat", "dog", "owl")
    assert np.load(out / "photo.npy").shape == (32, 32)
    classifier = load_model(ModelSpec(f"hf:{folder}", mean=(0.25,) * 3, class_names="a,b,c"))
    assert classifier.class_names == ["a", "b", "c"] and classifier.mean.flatten().tolist() == [0.25] * 3
    assert classifier.std.flatten().tolist() == [0.5] * 3  # what is not given stays the model's


MODELS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "models.md"


def page_commands() -> list[list[str]]:
    """The ``maskscope`` command lines of docs/models.md, continuation lines joined."""
    blocks = re.findall(r"```bash\n(.*?)```", MODELS_PAGE.read_text(), flags=re.S)
    return [shlex.split(line)[1:] for block in blocks for line in block.replace("\\\n", " ").splitlines()
            if line.startswith("maskscope ")]


def test_the_model_pages_commands_parse():
    commands = page_commands()
    assert {words[words.index("--model") + 1].split(":")[0] for words in commands} >= {"hf", "timm", "torchvision"}
    parser, _ = build_parser()
    for words in commands:
        parser.parse_args(words)  # an unknown option or a bad value exits


def test_the_model_page_runs_as_written(tmp_path, monkeypatch, capsys):
    """Its Python blocks, in order, as one script (a block that needs a package not installed here, timm
    or torchvision, is left out), then its ``explain`` commands of the routes installed here."""
    pytest.importorskip("transformers")
    pytest.importorskip("onnxscript")
    blocks = re.findall(r"```python\n(.*?)```", MODELS_PAGE.read_text(), flags=re.S)
    runnable = [block for block in blocks if not block.startswith("# needs ")]
    assert len(runnable) == 4 and len(blocks) == 6
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "page.py"
    script.write_text("\n".join(runnable))  # a file, not exec: torch.jit.script reads the module's source
    runpy.run_path(str(script), run_name="__page__")
    printed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in printed[:2]] == ["rise", "gradcam"]
    assert any("view=37->32" in line and "['cat', 'dog', 'owl']" in line for line in printed)  # the ONNX file's metadata
    assert any("view=None->64" in line for line in printed)  # the ViT's processor
    explain = [words for words in page_commands() if words[0] == "explain" and ":resnet50" not in " ".join(words)]
    assert len(explain) == 4
    for words in explain:
        assert main(words) == 0, words
        out = Path(words[words.index("--out") + 1])
        assert json.loads((out / "photo.json").read_text())["target_names"][0] in ("cat", "dog", "owl")
