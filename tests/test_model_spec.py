"""One model spec: its defaults in one place, options given on the command line win over a
``--config`` file (even at their default value), a spec travels to workers by pickle, and the
engine of the classifier and of the explainer falls back to torch through one wrapper."""

from __future__ import annotations

import argparse
import json
import pickle
import warnings
from pathlib import Path

import pytest
import torch
from test_bench import write_tiny_bench_task

from maskscope.bench.config import BenchConfig
from maskscope.cli.main import build_parser, main
from maskscope.cli.options import model_spec, results_path
from maskscope.core.model.classifier import Classifier
from maskscope.core.model.engines.base import EngineError, InferenceEngine
from maskscope.core.model.engines.fallback import EngineWithFallback
from maskscope.core.model.loading import ModelChoiceError
from maskscope.core.model.spec import DEFAULT_ENGINE, MODULE_ENGINE, ModelSpec

METRIC = "deletion:rise-batch"


@pytest.fixture(scope="module")
def task(tmp_path_factory) -> Path:
    """``tiny.pt`` and ``data/``: 4 shape photos with ImageNet-style labels."""
    folder = tmp_path_factory.mktemp("spec")
    write_tiny_bench_task(folder, 4)
    return folder


def test_the_options_default_to_not_given_and_the_spec_fills_in_its_defaults():
    parser, _ = build_parser()
    for command in (["explain"], ["bench"], ["check", "entropy"], ["study", "fillers", "--out", "x"]):
        args = parser.parse_args(command)
        assert (args.model, args.device, args.engine, args.precision, args.calibrate) == (None,) * 5, command
        assert model_spec(args) == ModelSpec()
    args = parser.parse_args(["explain", "--engine", "torch", "--precision", "fast", "--calibrate", "photos"])
    assert model_spec(args) == ModelSpec(engine="torch", precision="fast", calibration="photos")
    assert BenchConfig("data", ["centre"], ["pointing"]).model_spec() == ModelSpec()


def test_the_engine_defaults_agree_and_a_module_handed_in_runs_as_it_is(shapes_task):
    assert ModelSpec().engine == DEFAULT_ENGINE == "auto"
    assert Classifier(shapes_task.classifier.model).requested_engine == MODULE_ENGINE == "torch"


def test_a_spec_pickles_for_a_worker_and_the_command_lines_values_win():
    spec = ModelSpec("tiny.pt", "cuda:1", "torch", "bfloat16", "photos")
    assert pickle.loads(pickle.dumps(spec)) == spec
    assert spec.given(device="cpu", engine=None) == ModelSpec("tiny.pt", "cpu", "torch", "bfloat16", "photos")
    assert ModelSpec.from_values(model=None, device="cuda", unrelated=1) == ModelSpec(device="cuda")


def test_an_unknown_model_is_one_line(capsys):
    with pytest.raises(ModelChoiceError, match="unknown model 'no-such-model'"):
        from maskscope.cli.options import load_classifier

        load_classifier(ModelSpec("no-such-model"))
    assert main(["check", "entropy", "--model", "no-such-model"]) == 2
    assert "unknown model 'no-such-model'" in capsys.readouterr().err


def test_options_given_at_their_default_win_over_the_config_file(task, tmp_path, monkeypatch):
    """The ``--config`` override bug: ``--engine auto``, ``--device cpu``, ``--precision float32``
    and ``--model default`` were taken for "not given" and lost to the file's values."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"dataset": str(task / "data"), "methods": ["centre"], "metrics": [METRIC],
                                  "model": str(task / "tiny.pt"), "device": "cuda", "engine": "torch",
                                  "precision": "bfloat16"}))
    loaded = []

    def load(spec):  # the default model is not loaded here: the run gets the tiny one, the spec is kept
        loaded.append(spec)
        return Classifier.from_torchscript(task / "tiny.pt")

    monkeypatch.setattr("maskscope.cli.bench.load_classifier", load)
    out = tmp_path / "run"
    status = main(["bench", "--config", str(config), "--model", "default", "--device", "cpu", "--engine", "auto",
                   "--precision", "float32", "--out", str(out), "--workers", "1", "--quiet", "--no-report"])
    assert status == 0
    written = json.loads((out / "config.json").read_text())
    assert {key: written[key] for key in ("model", "device", "engine", "precision")} == {
        "model": "default", "device": "cpu", "engine": "auto", "precision": "float32"}
    assert loaded == [ModelSpec()]


def test_the_files_values_stay_where_no_option_is_given(task, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"dataset": "d", "methods": ["centre"], "metrics": [METRIC], "engine": "torch",
                                  "precision": "bfloat16", "batch_size": 16, "images_per_batch": 2}))
    args = build_parser()[0].parse_args(["bench", "--config", str(config), "--device", "cpu"])
    from maskscope.cli.bench import build_config

    built = build_config(args, None, None)
    assert built.model_spec() == ModelSpec(engine="torch", precision="bfloat16")
    assert (built.batch_size, built.images_per_batch) == (16, 2)


def test_a_config_with_the_old_batch_keys_is_one_line_naming_the_new_ones(task, tmp_path, capsys):
    config = tmp_path / "old.json"
    config.write_text(json.dumps({"dataset": str(task / "data"), "methods": ["centre"], "metrics": [METRIC],
                                  "batch_size": 4, "score_batch_size": 8}))
    assert main(["bench", "--config", str(config), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "score_batch_size is now batch_size" in error and "images_per_batch" in error


def test_a_run_written_with_the_old_batch_keys_resumes(task, tmp_path, capsys):
    out = tmp_path / "run"
    command = ["bench", "--data", str(task / "data"), "--model", str(task / "tiny.pt"), "--methods", "centre",
               "--metrics", METRIC, "--out", str(out), "--workers", "1", "--quiet", "--no-report"]
    assert main(command) == 0
    records = (out / "records.jsonl").read_text()
    written = json.loads((out / "config.json").read_text())
    old = {key: value for key, value in written.items() if key not in ("images_per_batch", "batch_size", "calibration")}
    (out / "config.json").write_text(json.dumps({**old, "batch_size": 4, "score_batch_size": 8}))
    assert main(command) == 0
    assert (out / "records.jsonl").read_text() == records  # resumed: nothing left to do, nothing made again


@pytest.mark.parametrize(("command", "old", "new"), [
    (["explain"], "--batch-size", "--images-per-batch"),
    (["bench"], "--score-batch-size", "--batch-size"),
    (["check", "adversarial"], "--batch-size", "--images-per-batch"),
    (["check", "adversarial"], "--json", "--out"),
    (["check", "entropy"], "--json", "--out"),
    (["study", "fillers", "--out", "x"], "--batch-size", "--images-per-batch"),
    (["study", "robustness"], "--batch-size", "--images-per-batch"),
])
def test_a_renamed_option_is_refused_naming_its_new_name(command, old, new, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*command, old, "4"])
    assert exit_.value.code == 2
    assert f"{old} is now {new}" in capsys.readouterr().err


def test_every_check_writes_to_out_a_folder_or_a_json_file(tmp_path):
    parser, _ = build_parser()
    for check in ("adversarial", "entropy", "randomisation"):
        assert parser.parse_args(["check", check, "--out", str(tmp_path)]).out == str(tmp_path)
    assert results_path(str(tmp_path / "results"), "entropy") == tmp_path / "results" / "entropy.json"
    assert (tmp_path / "results").is_dir()
    assert results_path(str(tmp_path / "one" / "mine.json"), "entropy") == tmp_path / "one" / "mine.json"


class _Broken(InferenceEngine):
    name, precisions = "onnxruntime", ("float32",)

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        raise EngineError("the export failed")


def test_the_fallback_warns_once_keeps_the_reason_and_then_runs_torch():
    wrapper = EngineWithFallback("onnxruntime", "model tiny")
    opened = []

    def open_engine():
        opened.append(1)
        return _Broken("float32")

    inputs = torch.ones(2, 3)
    with pytest.warns(UserWarning, match="model tiny: engine onnxruntime is unavailable, running on torch"):
        assert torch.equal(wrapper(inputs, open_engine, lambda x: 2 * x), 2 * inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(wrapper(inputs, open_engine, lambda x: 3 * x), 3 * inputs)
    assert wrapper.failure == "the export failed" and wrapper.engine is None and opened == [1]
    assert pickle.loads(pickle.dumps(wrapper)).failure == "the export failed"
    with pytest.raises(EngineError):
        EngineWithFallback("onnxruntime", "model.onnx", strict=True)(inputs, open_engine, lambda x: x)


def test_the_classifier_falls_back_through_the_wrapper(shapes_task, monkeypatch):
    classifier = Classifier(shapes_task.classifier.model, mean=shapes_task.classifier.mean.flatten().tolist(),
                            std=shapes_task.classifier.std.flatten().tolist(), view=shapes_task.classifier.view,
                            engine="onnxruntime")
    monkeypatch.setattr(Classifier, "_open_engine", lambda self: _Broken("float32"))
    images = shapes_task.test.images[:2]
    with pytest.warns(UserWarning, match="engine onnxruntime is unavailable"):
        scores = classifier.probabilities(images)
    with torch.no_grad():
        torch.testing.assert_close(scores, shapes_task.classifier.probabilities(images))
    assert classifier.engine_record()["fallback"] == "the export failed"
    assert classifier.needs_torch(images)


def test_a_spec_given_to_bench_workers_is_a_spec_not_a_namespace(task, tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr("maskscope.cli.bench.run_bench", lambda *args, **kwargs: seen.append(kwargs))
    monkeypatch.setattr("maskscope.cli.bench._finish", lambda args, out: 0)
    monkeypatch.setattr("maskscope.cli.bench.load_classifier", lambda spec: None)
    assert main(["bench", "--data", str(task / "data"), "--model", str(task / "tiny.pt"), "--methods", "centre",
                 "--metrics", METRIC, "--out", str(tmp_path / "run"), "--quiet", "--engine", "torch"]) == 0
    make = seen[0]["make_classifier"]
    assert make.args == (ModelSpec(str(task / "tiny.pt"), engine="torch"),)
    assert not any(isinstance(value, argparse.Namespace) for value in make.args)
    assert pickle.loads(pickle.dumps(make.args)) == make.args


def test_the_spec_sent_to_bench_workers_carries_the_models_preprocessing(task, tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr("maskscope.cli.bench.run_bench", lambda *args, **kwargs: seen.append(kwargs))
    monkeypatch.setattr("maskscope.cli.bench._finish", lambda args, out: 0)
    monkeypatch.setattr("maskscope.cli.bench.load_classifier", lambda spec: None)
    names = tmp_path / "names.txt"
    names.write_text("a\nb\n")
    assert main(["bench", "--data", str(task / "data"), "--model", str(task / "tiny.pt"), "--methods", "centre",
                 "--metrics", METRIC, "--out", str(tmp_path / "run"), "--quiet", "--mean", "0.5,0.5,0.5",
                 "--std", "0.25,0.25,0.25", "--size", "64", "--class-names", str(names)]) == 0
    make = seen[0]["make_classifier"]
    expected = ModelSpec(str(task / "tiny.pt"), mean=(0.5,) * 3, std=(0.25,) * 3, size=(64, 64), class_names=str(names))
    assert make.args == (expected,) and pickle.loads(pickle.dumps(make.args)) == (expected,)


def test_a_spec_reads_the_forms_the_command_line_and_a_config_file_give():
    from maskscope.core.model.spec import ModelSpecError

    assert ModelSpec(mean="0.5, 0.5, 0.5", size="160x320") == ModelSpec(mean=[0.5, 0.5, 0.5], size=[160, 320])
    assert ModelSpec(std=0.5).std == (0.5,) and ModelSpec(size=32).size == (32, 32)
    assert ModelSpec("hf:models/vit").source == ("hf", "models/vit") and ModelSpec("tiny.pt").source is None
    assert ModelSpec("torchvision:resnet50:IMAGENET1K_V2").source == ("torchvision", "resnet50:IMAGENET1K_V2")
    with pytest.raises(ModelSpecError, match="--mean needs three comma-separated numbers"):
        ModelSpec(mean="0.5,nan,0.5")
    with pytest.raises(ModelSpecError, match="--size needs N or HxW"):
        ModelSpec(size="0x32")
