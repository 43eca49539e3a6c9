"""PASCAL-style XML annotations, shared by PASCAL VOC and the ImageNet (ILSVRC) validation set.

``<annotation><size><width/><height/></size><object><name/><difficult/><bndbox><xmin/>
<ymin/><xmax/><ymax/></bndbox></object>…</annotation>``. Coordinates are returned as written;
each reader knows its own pixel convention.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

from maskscope.data.dataset import DatasetError


@dataclass(frozen=True)
class XmlObject:
    """One ``<object>``: its name, ``<bndbox>`` as written, and its ``<difficult>`` flag."""

    name: str
    xmin: float
    ymin: float
    xmax: float
    ymax: float
    difficult: bool


def read_xml_annotation(path: Path) -> tuple[tuple[int, int] | None, list[XmlObject]]:
    """The photo size ``(H, W)`` (``None`` when absent) and the objects of one XML file."""
    try:
        root = ElementTree.parse(path).getroot()
        size = None
        if root.find("size/width") is not None and root.find("size/height") is not None:
            size = (int(_text(root, "size/height")), int(_text(root, "size/width")))
        objects = [_xml_object(node) for node in root.iter("object")]
    except (ElementTree.ParseError, ValueError, TypeError) as error:
        raise DatasetError(f"{path}: bad XML annotation ({error})") from error
    return size, objects


def _xml_object(node: ElementTree.Element) -> XmlObject:
    name = _text(node, "name").strip()
    xmin, ymin, xmax, ymax = (float(_text(node, f"bndbox/{key}")) for key in ("xmin", "ymin", "xmax", "ymax"))
    difficult = (node.findtext("difficult") or "0").strip() == "1"
    return XmlObject(name, xmin, ymin, xmax, ymax, difficult)


def _text(node: ElementTree.Element, key: str) -> str:
    text = node.findtext(key)
    if text is None:
        raise ValueError(f"no <{key}>")
    return text
