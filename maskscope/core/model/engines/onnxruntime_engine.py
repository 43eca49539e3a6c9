"""The ONNX Runtime engine: the exported graph on ONNX Runtime's CPU provider, float32.

ONNX Runtime's CPU provider fuses convolutions with their batch norms and activations and
runs them with its own kernels; for EfficientNet-Lite0 on this project's CPU that is about 3×
the forward passes of eager torch, with probabilities within 1e-5 of it. It runs float32
only (its CPU kernels have no bfloat16 path). Threads follow the process's torch thread count
(:func:`~maskscope.core.model.engines.threads.engine_threads`): the session is rebuilt when that
number changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from maskscope.core.model.engines.base import EngineError, InferenceEngine
from maskscope.core.model.engines.threads import engine_threads

INSTALL_HINT = "pip install onnxruntime"


class OnnxRuntimeEngine(InferenceEngine):
    """Run an ONNX file with ONNX Runtime.

    Args:
        model_file: ``(height, width) -> path`` of the ONNX graph for that input size (an
            exported module asks the cache; a user's ONNX file is the same file for any size).
        precision: ``float32``.
        providers: execution providers in order of preference (default: the CPU provider).
    """

    name = "onnxruntime"
    precisions = ("float32",)

    def __init__(
        self, model_file: Callable[[int, int], Path], precision: str = "float32", providers: list[str] | None = None
    ) -> None:
        super().__init__(precision)
        try:
            import onnxruntime
        except ImportError as error:
            raise EngineError(f"engine onnxruntime is not installed: {INSTALL_HINT}") from error
        self._runtime = onnxruntime
        self.model_file = model_file
        self.providers = providers or ["CPUExecutionProvider"]
        self._sessions: dict[tuple[int, int], tuple[int, object, str]] = {}

    def session(self, height: int, width: int):
        """The session for this input size (and the current torch thread count), and its input's name."""
        threads = engine_threads()
        known = self._sessions.get((height, width))
        if known is not None and known[0] == threads:
            return known[1], known[2]
        path = self.model_file(height, width)
        options = self._runtime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            session = self._runtime.InferenceSession(str(path), options, providers=self.providers)
        except Exception as error:  # ONNX Runtime raises its own exception types for bad graphs
            raise EngineError(f"{path}: ONNX Runtime cannot open it ({str(error).splitlines()[0]})") from error
        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise EngineError(f"{path}: a classifier takes one input (the image batch), this model takes {len(inputs)}")
        self._sessions[(height, width)] = (threads, session, inputs[0].name)
        return session, inputs[0].name

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        session, input_name = self.session(*inputs.shape[-2:])
        batch = inputs.detach().to("cpu", torch.float32).contiguous().numpy()
        logits = session.run(None, {input_name: batch})[0]
        return torch.from_numpy(logits).to(inputs.device, torch.float32)
