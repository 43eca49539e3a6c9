"""Gradient passes run at the precision asked for, and at reduced precision under ``fast`` only
for the methods validated for it (maskscope.methods.precision); the record says which."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from maskscope import Classifier
from maskscope.core.model.classifier import gradient_passes
from maskscope.methods import precision
from maskscope.methods.registry import get_method, method_names

RESULTS = Path(__file__).parents[1] / "benchmarks" / "results" / "investigations" / "precision_fidelity.json"


class DtypeWatcher:
    """A tiny CNN whose first convolution notes the dtype of its output in every pass, split by
    whether the pass is a gradient pass (the input requires a gradient)."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.model = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)
        )
        self.gradient: set[torch.dtype] = set()
        self.plain: set[torch.dtype] = set()
        self.model[0].register_forward_hook(self._note)

    def _note(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        (self.gradient if torch.is_grad_enabled() and inputs[0].requires_grad else self.plain).add(output.dtype)


def explain(method: str, requested: str, **params) -> tuple[DtypeWatcher, dict]:
    watcher = DtypeWatcher()
    classifier = Classifier(watcher.model, engine="torch", precision=requested)
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    explanation = get_method(method, **params).explain(classifier, images)
    return watcher, explanation.engine


MP = {"steps": 2, "resolution": 8, "filler": "mean"}


@pytest.fixture
def bf16_cpu(monkeypatch):
    """A CPU with native bfloat16 and MP validated on CPUs, whatever this machine and the table say."""
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: True)
    monkeypatch.setitem(precision.FAST_GRADIENTS, "mp", frozenset({"cpu"}))
    monkeypatch.delitem(precision.FAST_GRADIENTS, "gradient", raising=False)


def test_fast_runs_a_validated_methods_gradient_passes_at_bfloat16(bf16_cpu):
    watcher, record = explain("mp", "fast", **MP)
    assert watcher.gradient == {torch.bfloat16}
    assert record["gradient_precision"] == "bfloat16"
    assert record["precision"] == "bfloat16" and record["requested_precision"] == "fast"


def test_fast_keeps_float32_gradients_for_a_method_not_validated(bf16_cpu):
    watcher, record = explain("gradient", "fast")
    assert watcher.gradient == {torch.float32}
    assert record["gradient_precision"] == "float32"
    # the passes without gradient still run at fast's bfloat16
    assert watcher.plain == {torch.bfloat16}


def test_fast_keeps_float32_gradients_on_a_cpu_without_native_bfloat16(bf16_cpu, monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: False)
    watcher, record = explain("mp", "fast", **MP)
    assert watcher.gradient == {torch.float32}
    assert record["gradient_precision"] == "float32"


@pytest.mark.parametrize("requested, dtype", [("bfloat16", torch.bfloat16), ("float32", torch.float32)])
def test_an_explicit_precision_means_what_it_says(bf16_cpu, requested, dtype):
    for method, params in (("mp", MP), ("gradient", {})):
        watcher, record = explain(method, requested, **params)
        assert watcher.gradient == {dtype}, method
        assert record["gradient_precision"] == requested
        assert "requested_precision" not in record


def test_a_black_box_method_records_no_gradient_precision(bf16_cpu):
    _, record = explain("occlusion", "fast", window=16, stride=16)
    assert "gradient_precision" not in record


def test_a_gradient_block_sets_fast_inside_it_and_notes_what_ran():
    classifier = Classifier(DtypeWatcher().model, engine="torch", precision="fast")
    explicit = Classifier(DtypeWatcher().model, engine="torch", precision="float16")
    images = torch.rand(1, 3, 8, 8)
    assert classifier.gradient_precision == "float32"
    with gradient_passes("bfloat16") as ran:
        assert classifier.gradient_precision == "bfloat16" and explicit.gradient_precision == "float16"
        with torch.no_grad():
            classifier.logits(images)
        assert ran == set()  # a pass without gradient is not a gradient pass
        classifier.logits(images.requires_grad_(True)).sum().backward()
        assert ran == {"bfloat16"}
    assert classifier.gradient_precision == "float32"
    with pytest.raises(ValueError, match="int8"):
        with gradient_passes("int8"):
            pass


def test_a_worker_copy_keeps_asking_for_fast():
    classifier = Classifier(DtypeWatcher().model, engine="torch", precision="fast")
    assert classifier.engine_settings()["precision"] == "fast"


def test_bfloat16_is_read_from_the_cpu_flags(tmp_path):
    flags = "flags\t\t: fpu sse2 avx2 avx512f {}\n"
    native, emulated = tmp_path / "native", tmp_path / "emulated"
    native.write_text("processor\t: 0\n" + flags.format("avx512_bf16"))
    emulated.write_text("processor\t: 0\n" + flags.format("avx512bw"))
    assert precision.cpu_has_bfloat16(native)
    assert not precision.cpu_has_bfloat16(emulated)
    assert not precision.cpu_has_bfloat16(tmp_path / "absent")


def test_the_table_is_what_the_benchmark_validated():
    """Every method in the table is an optimisation method the fidelity benchmark validated,
    and every method it validated is in the table."""
    assert set(precision.FAST_GRADIENTS) <= set(method_names())
    if not RESULTS.exists():
        pytest.skip(f"{RESULTS} is not here")
    methods = json.loads(RESULTS.read_text())["methods"]
    validated = {name for name, entry in methods.items() if entry["summary"]["validated"]}
    assert {name for name, devices in precision.FAST_GRADIENTS.items() if "cpu" in devices} == validated
