"""The class names that ship with the library: ImageNet-1k's, in the standard order."""

from __future__ import annotations

from importlib import resources


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet-1k class names in the standard (sorted synset) order."""
    text = resources.files("maskscope.data").joinpath("imagenet_classes.txt").read_text()
    return [line.split("\t")[1] for line in text.splitlines() if line]
