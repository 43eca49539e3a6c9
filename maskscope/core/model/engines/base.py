"""What every inference engine offers: normalised batch in, logits out, and a record.

An engine runs a classifier's forward passes that need no gradient. It receives the
*normalised* batch B×3×H×W (the wrapper has already applied ``(x − mean) / std``) and returns
float32 logits B×C on the batch's device. Gradient passes never reach an engine: the
``Classifier`` sends them to its torch module.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch


class EngineError(RuntimeError):
    """An engine could not be built for this model (export, compilation or calibration failed)."""


class InferenceEngine(ABC):
    """A forward-only runtime for one model at one precision."""

    #: the engine's name as the user spells it (``torch``, ``onnxruntime``, ``openvino``)
    name: str = ""
    #: the precisions this engine can run
    precisions: tuple[str, ...] = ()

    def __init__(self, precision: str) -> None:
        if precision not in self.precisions:
            raise ValueError(
                f"precision {precision!r} is not available on engine {self.name}; it runs {', '.join(self.precisions)}"
            )
        self.precision = precision

    @abstractmethod
    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        """Logits B×C (float32) for the normalised batch ``inputs`` B×3×H×W."""

    def record(self) -> dict[str, Any]:
        """What a run record says about this engine."""
        return {"engine": self.name, "precision": self.precision}
