"""The torch engine: the model's own module, eager, optionally under autocast.

``bfloat16`` and ``float16`` run the forward pass under ``torch.autocast`` in that type (the
scores come back in float32); bfloat16 suits CPUs with AVX-512 BF16 or AMX, float16 GPUs.
This engine also serves every gradient pass of the other engines' classifiers.
"""

from __future__ import annotations

from typing import Callable

import torch

from maskscope.core.model.engines.base import InferenceEngine

#: precision -> the autocast dtype (``None``: full precision)
AUTOCAST_TYPES = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}


class TorchEngine(InferenceEngine):
    """Run ``model`` (an ``nn.Module`` or a callable) as it is.

    Args:
        model: maps the normalised batch to logits.
        precision: ``float32``, ``bfloat16`` or ``float16`` (autocast; modules only).
        channels_last: feed inputs in channels-last memory order (the module's weights are
            expected to be channels-last already).
    """

    name = "torch"
    precisions = tuple(AUTOCAST_TYPES)

    def __init__(self, model: Callable, precision: str = "float32", channels_last: bool = False) -> None:
        super().__init__(precision)
        self.model = model
        self.channels_last = channels_last

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        dtype = AUTOCAST_TYPES[self.precision]
        with torch.autocast(inputs.device.type, dtype=dtype, enabled=dtype is not None):
            out = self.model(inputs)
        if isinstance(out, (tuple, list)):
            out = out[0]
        if isinstance(out, dict):
            out = out.get("logits", next(iter(out.values())))
        if isinstance(out, torch.Tensor) and out.dtype in (torch.bfloat16, torch.float16):
            out = out.float()
        return out
