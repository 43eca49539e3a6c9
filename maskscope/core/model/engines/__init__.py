"""Inference engines: where a classifier's forward passes that need no gradient run.

``torch`` runs the module as it is (eager, optionally under autocast); ``onnxruntime`` and
``openvino`` run the module's ONNX export (made once and cached, see
:mod:`maskscope.core.model.engines.cache`) or a user's ONNX file. ``auto`` picks the fastest engine
installed for the requested precision on the classifier's device, by the measurements in
``benchmarks/speed/engines.py``:

=========  ====================================================
precision  ``auto`` picks
=========  ====================================================
float32    onnxruntime, else openvino, else torch
bfloat16   openvino, else torch
float16    torch (autocast; for GPUs)
int8       openvino (needs NNCF)
=========  ====================================================

On a GPU ``auto`` is always ``torch``. ``fast`` is the reduced precision this project
recommends for the black-box methods and the metrics (see :data:`FAST_PRECISION`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from torch import nn

from maskscope.core.model.engines.base import EngineError, InferenceEngine
from maskscope.core.model.engines.cache import exported_onnx, weights_digest
from maskscope.core.model.engines.onnxruntime_engine import OnnxRuntimeEngine
from maskscope.core.model.engines.openvino_engine import OpenVinoEngine
from maskscope.core.model.engines.torch_engine import TorchEngine

ENGINES = {engine.name: engine for engine in (TorchEngine, OnnxRuntimeEngine, OpenVinoEngine)}
ENGINE_CHOICES = (*ENGINES, "auto")
#: every precision some engine runs
PRECISIONS = ("float32", "bfloat16", "float16", "int8")
#: what ``precision="fast"`` means
FAST_PRECISION = "bfloat16"
PRECISION_CHOICES = (*PRECISIONS, "fast")
#: engine -> the packages it imports
PACKAGES = {"torch": ("torch",), "onnxruntime": ("onnxruntime",), "openvino": ("openvino",)}
#: precision -> the engines ``auto`` tries, fastest first
AUTO_ORDER = {
    "float32": ("onnxruntime", "openvino", "torch"),
    "bfloat16": ("openvino", "torch"),
    "float16": ("torch",),
    "int8": ("openvino",),
}


def installed(engine: str) -> bool:
    """Whether the packages ``engine`` needs can be imported (without importing them)."""
    return all(importlib.util.find_spec(package) is not None for package in PACKAGES[engine])


def resolve_precision(precision: str) -> str:
    """``fast`` as the precision it stands for; any other known precision as it is."""
    if precision not in PRECISION_CHOICES:
        raise ValueError(f"precision must be one of {', '.join(PRECISION_CHOICES)}, got {precision!r}")
    return FAST_PRECISION if precision == "fast" else precision


def resolve_engine(engine: str, precision: str, device: str = "cpu", compiled_ok: bool = True) -> str:
    """The engine that will run: ``engine`` itself, or what ``auto`` picks.

    Args:
        engine: one of :data:`ENGINE_CHOICES`.
        precision: a resolved precision (see :func:`resolve_precision`).
        device: the classifier's device type; the compiled engines run on the CPU.
        compiled_ok: ``False`` when the model cannot be exported (a plain callable), so
            ``auto`` means ``torch``.
    """
    if engine not in ENGINE_CHOICES:
        raise ValueError(f"engine must be one of {', '.join(ENGINE_CHOICES)}, got {engine!r}")
    if engine != "auto":
        if precision not in ENGINES[engine].precisions:
            raise ValueError(
                f"precision {precision!r} is not available on engine {engine}; it runs {', '.join(ENGINES[engine].precisions)}"
            )
        if engine != "torch" and device != "cpu":
            raise ValueError(f"engine {engine} runs on the CPU here; use engine torch on {device}")
        return engine
    if device != "cpu" or not compiled_ok:
        if precision not in TorchEngine.precisions:
            raise ValueError(f"precision {precision!r} needs a compiled engine on the CPU (openvino)")
        return "torch"
    for candidate in AUTO_ORDER[precision]:
        if installed(candidate):
            return candidate
    raise ValueError(f"precision {precision!r} needs engine openvino: pip install openvino nncf")


def compiled_module(module: nn.Module, engine: str, precision: str = "float32") -> InferenceEngine:
    """A compiled engine (``onnxruntime`` or ``openvino``, not int8) for any module that maps an
    image batch B×3×H×W to outputs with the batch first, such as the learned explainer's
    network. It exports the module once per input size through the cache, at the first pass,
    and raises :class:`EngineError` then when the module does not export."""
    if engine not in ("onnxruntime", "openvino") or precision == "int8":
        raise ValueError(f"a module compiles on onnxruntime or openvino at float32 or bfloat16, not {engine} {precision}")
    digest = weights_digest(module)

    def model_file(height: int, width: int) -> Path:
        return exported_onnx(module, height, width, digest)

    if engine == "onnxruntime":
        return OnnxRuntimeEngine(model_file, precision)
    return OpenVinoEngine(model_file, precision)


__all__ = [
    "ENGINES",
    "ENGINE_CHOICES",
    "EngineError",
    "FAST_PRECISION",
    "InferenceEngine",
    "OnnxRuntimeEngine",
    "OpenVinoEngine",
    "PRECISIONS",
    "PRECISION_CHOICES",
    "TorchEngine",
    "compiled_module",
    "installed",
    "resolve_engine",
    "resolve_precision",
]
