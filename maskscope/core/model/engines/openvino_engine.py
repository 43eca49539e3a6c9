"""The OpenVINO engine: the exported graph compiled for the CPU at float32, bfloat16 or int8.

* ``float32`` compiles with ``INFERENCE_PRECISION_HINT = f32`` (OpenVINO would otherwise pick
  bfloat16 by itself on CPUs that have it).
* ``bfloat16`` compiles with ``INFERENCE_PRECISION_HINT = bf16``: weights and activations in
  bfloat16 on CPUs with AVX-512 BF16 or AMX, accumulation in float32.
* ``int8`` quantises the graph with NNCF's post-training quantisation (``nncf.quantize``,
  its default mixed preset: symmetric int8 weights per channel, activations per tensor) on
  calibration images: the photos the user gives, or else the first batch the classifier runs
  (in a method, the images being explained). The quantised model is cached on disk under a
  key of the graph and the calibration images. :meth:`record` says which images were used.

Threads (``INFERENCE_NUM_THREADS``) follow the process's torch thread count
(:func:`~maskscope.core.model.engines.threads.engine_threads`); a model is compiled once per input
size and thread count.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from maskscope.core.model.engines.base import EngineError, InferenceEngine
from maskscope.core.model.engines.cache import cached_file
from maskscope.core.model.engines.threads import engine_threads

INSTALL_HINT = "pip install openvino"
PRECISION_HINTS = {"float32": "f32", "bfloat16": "bf16", "int8": "f32"}


class OpenVinoEngine(InferenceEngine):
    """Run an ONNX file with OpenVINO on the CPU.

    Args:
        model_file: ``(height, width) -> path`` of the ONNX graph for that input size.
        precision: ``float32``, ``bfloat16`` or ``int8``.
        calibration: normalised images N×3×H×W to calibrate ``int8`` on, with a word on where
            they came from (for the record); ``None``: the first batch the engine runs.
    """

    name = "openvino"
    precisions = ("float32", "bfloat16", "int8")

    def __init__(
        self,
        model_file: Callable[[int, int], Path],
        precision: str = "float32",
        calibration: tuple[torch.Tensor, str] | None = None,
    ) -> None:
        super().__init__(precision)
        try:
            import openvino
        except ImportError as error:
            raise EngineError(f"engine openvino is not installed: {INSTALL_HINT}") from error
        if precision == "int8":
            try:
                import nncf  # noqa: F401
            except ImportError as error:
                raise EngineError("precision int8 on openvino needs NNCF: pip install nncf") from error
        self._openvino = openvino
        self._core = openvino.Core()
        self.model_file = model_file
        self.calibration = calibration
        self._compiled: dict[tuple[int, int], tuple[int, Any]] = {}

    def compiled(self, height: int, width: int, first_batch: torch.Tensor):
        """The compiled model for this input size and the current torch thread count."""
        threads = engine_threads()
        known = self._compiled.get((height, width))
        if known is not None and known[0] == threads:
            return known[1]
        path = self.model_file(height, width)
        if self.precision == "int8":
            try:
                path = self.quantised(path, first_batch)
            except Exception as error:  # NNCF raises many kinds; any means: no int8 model
                reason = (str(error).splitlines() or [type(error).__name__])[0]
                raise EngineError(f"NNCF could not quantise {path.name} to int8 ({reason})") from error
        try:
            model = self._core.read_model(str(path))
            compiled = self._core.compile_model(
                model,
                "CPU",
                {"INFERENCE_PRECISION_HINT": PRECISION_HINTS[self.precision], "INFERENCE_NUM_THREADS": threads},
            )
        except RuntimeError as error:
            raise EngineError(f"{path}: OpenVINO cannot compile it ({str(error).splitlines()[0]})") from error
        self._compiled[(height, width)] = (threads, compiled)
        return compiled

    def quantised(self, path: Path, first_batch: torch.Tensor) -> Path:
        """The NNCF int8 model of the graph at ``path``, calibrated and cached."""
        if self.calibration is None:
            self.calibration = (first_batch.detach().cpu().float(), f"the first {len(first_batch)} images run")
        images = self.calibration[0].contiguous().numpy().astype(np.float32)
        key = hashlib.sha256(path.name.encode() + images.tobytes()).hexdigest()[:32]

        def quantise(target: Path) -> None:
            import nncf

            model = self._core.read_model(str(path))
            dataset = nncf.Dataset([image[None] for image in images])
            quantised = nncf.quantize(model, dataset, subset_size=len(images))
            target.mkdir()
            self._openvino.save_model(quantised, str(target / "model.xml"), compress_to_fp16=False)

        return cached_file(key, "-int8", quantise) / "model.xml"

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        compiled = self.compiled(inputs.shape[-2], inputs.shape[-1], inputs)
        batch = inputs.detach().to("cpu", torch.float32).contiguous().numpy()
        logits = compiled(batch)[0]
        return torch.from_numpy(np.asarray(logits, dtype=np.float32)).to(inputs.device)

    def record(self) -> dict[str, Any]:
        record = super().record()
        if self.precision == "int8":
            record["calibration"] = None if self.calibration is None else self.calibration[1]
        return record
