"""A compiled engine with torch behind it: the one place an engine that cannot run falls back.

The classifier's passes that need no gradient (:class:`~maskscope.core.model.classifier.Classifier`)
and the learned explainer's network (:class:`~maskscope.methods.explainer.method.Explainer`) run
on a compiled engine opened at their first pass. A model that does not export or compile raises
:class:`~maskscope.core.model.engines.base.EngineError` then; :class:`EngineWithFallback` warns
once, keeps the reason (a run record names it) and runs every later pass on torch.
"""

from __future__ import annotations

import warnings
from typing import Callable

import torch

from maskscope.core.model.engines.base import EngineError, InferenceEngine

Pass = Callable[[torch.Tensor], torch.Tensor]


class EngineWithFallback:
    """A compiled engine, opened at the first pass, and torch in its place from the first pass it cannot run.

    Args:
        engine: the compiled engine's name (``onnxruntime``, ``openvino``), for the warning.
        label: what runs on it, for the warning (``model NAME``, ``explainer network``).
        strict: raise the :class:`EngineError` instead of falling back (a model that is an
            ONNX file has no torch module to fall back on).

    The opened engine is not pickled: a copy (a worker process's) opens its own at its first
    pass; a copy of a wrapper that fell back runs torch.
    """

    def __init__(self, engine: str, label: str, strict: bool = False) -> None:
        self.engine_name, self.label, self.strict = engine, label, strict
        #: the opened engine; None before the first pass and after a fallback
        self.engine: InferenceEngine | None = None
        #: why the engine could not run (then every pass runs torch); None while it runs
        self.failure: str | None = None

    def __call__(self, inputs: torch.Tensor, open_engine: Callable[[], InferenceEngine], fallback: Pass,
                 stacklevel: int = 2) -> torch.Tensor:
        """The engine's output for ``inputs`` (opened with ``open_engine()`` at the first pass), or
        ``fallback(inputs)`` once the engine has failed; ``stacklevel`` of the warning, counted from
        this call's caller."""
        if self.failure is None:
            try:
                if self.engine is None:
                    self.engine = open_engine()
                return self.engine(inputs)
            except EngineError as error:
                if self.strict:
                    raise
                self.failure, self.engine = str(error), None
                warnings.warn(f"{self.label}: engine {self.engine_name} is unavailable, running on torch ({error})",
                              stacklevel=stacklevel + 1)
        return fallback(inputs)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["engine"] = None
        return state
