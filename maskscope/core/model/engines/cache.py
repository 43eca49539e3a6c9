"""The on-disk cache of exported models, keyed by the weights and the export settings.

A torch module is exported to ONNX once per model, input size and settings; a later run (or
another process of the same run) finds the file and starts at once. The key is a SHA-256 of
the module's class, every parameter and buffer (name, type, shape, bytes), the input size,
the torch version and the export format, so changing a weight makes a new file.

The folder is ``$MASKSCOPE_CACHE`` when set, else ``~/.cache/maskscope``; exported models go in
its ``engines/`` sub-folder. Files are written under a temporary name and renamed, so two
processes exporting the same model at once both end with a whole file. :func:`export_module`
is the torch → ONNX export itself (also used by :func:`maskscope.core.model.onnx_models.export_onnx`).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from maskscope.core.atomic import atomic_path
from maskscope.core.model.engines.base import EngineError

#: bump when the exported graph changes for the same module (exporter options, opset)
EXPORT_FORMAT = "onnx-1"


def cache_folder() -> Path:
    """``$MASKSCOPE_CACHE`` or ``~/.cache/maskscope``."""
    configured = os.environ.get("MASKSCOPE_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "maskscope"


def weights_digest(module: nn.Module) -> str:
    """A SHA-256 of the module's class and its parameters and buffers."""
    digest = hashlib.sha256(f"{type(module).__module__}.{type(module).__qualname__}".encode())
    for name, tensor in module.state_dict().items():
        shape = tensor.shape
        tensor = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{tensor.dtype}:{tuple(shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def cached_file(key: str, suffix: str, write: Callable[[Path], None]) -> Path:
    """``engines/KEY.SUFFIX`` in the cache, made by ``write(path)`` if it is not there yet.

    ``write`` makes a file (or a folder) at the path it is given, a temporary one that is
    then renamed into place (:func:`maskscope.core.atomic.atomic_path`).
    """
    path = cache_folder() / "engines" / f"{key}{suffix}"
    if path.exists():
        return path
    try:
        with atomic_path(path) as made:
            write(made)
    except OSError:  # another process put a whole copy there first
        if not path.exists():
            raise
    return path


def exported_onnx(module: nn.Module, height: int, width: int, digest: str, channels: int = 3) -> Path:
    """The ONNX export of ``module`` for inputs B×channels×height×width (dynamic B), from the cache.

    ``digest`` is :func:`weights_digest` of the module, computed once by the caller. A module
    that fails to export raises :class:`~maskscope.core.model.engines.base.EngineError` with the
    exporter's first line.
    """
    shape = f"{height}x{width}" if channels == 3 else f"{channels}x{height}x{width}"
    key = hashlib.sha256(f"{digest}:{shape}:{torch.__version__}:{EXPORT_FORMAT}".encode()).hexdigest()[:32]
    try:
        return cached_file(key, ".onnx", lambda path: export_module(module, path, height, width, channels))
    except Exception as error:  # an exporter failure of any kind means: no compiled engine for this module
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise EngineError(f"the model does not export to ONNX: {first_line}") from error


def export_module(module: nn.Module, path: str | os.PathLike, height: int, width: int, channels: int = 3) -> None:
    """Write ``module`` (normalised batch → logits) to ``path`` as ONNX for B×channels×height×width, B dynamic.

    Uses torch's TorchScript-based exporter, which works offline and takes a few seconds for
    EfficientNet-Lite0 (the ``torch.export``-based one takes about six times as long, and more
    than a minute to give up on a module it cannot convert). The export traces the module
    on a channels-first example of batch 2 on the module's device.
    """
    device = next((t.device for t in list(module.parameters()) + list(module.buffers())), torch.device("cpu"))
    example = torch.rand(2, channels, height, width, device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            str(path),
            dynamo=False,
            input_names=["images"],
            output_names=["logits"],
            dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
            verbose=False,
        )
