"""``write_report``: the HTML page of a run, with its thumbnails beside it.

The page is one file, ``OUT/report.html``, with its script, style and data inlined (no CDN,
no network: it opens from disk), and the thumbnails in ``OUT/thumbs/<method>/<image>.jpg``,
loaded lazily as the gallery scrolls. The gallery shows rows in pages, so a run of 1,000
photos × 7 methods keeps a small page.
"""

from __future__ import annotations

import html
import json
import math
import os
from importlib import resources
from pathlib import Path

from maskscope.core.progress import progress_bar
from maskscope.report.collect import RunData, collect
from maskscope.report.thumbnails import is_fresh, load_map, map_thumbnail, overlay_thumbnail, photo_view


def write_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """Write the report of the run in ``run_dir`` to ``out`` (default ``run_dir/report``); returns the page."""
    run = collect(run_dir)
    out = Path(out) if out is not None else Path(run_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    data = page_data(run, out, progress)
    page = out / "report.html"
    page.write_text(render(data))
    return page


def page_data(run: RunData, out: Path, progress: bool = True) -> dict:
    """The JSON the page's script reads, drawing the thumbnails it names."""
    images = []
    for entry in progress_bar(run.images, desc="report thumbnails", unit="photo", disable=not progress):
        photo = None
        cells = {}
        for method, cell in entry.cells.items():
            shown = {"v": {k: round(v, 5) for k, v in cell.values.items()}, "s": cell.status}
            if cell.reason:
                shown["r"] = cell.reason
            thumb = out / "thumbs" / method / f"{entry.name}.jpg"
            try:
                if cell.overlay_path is not None:
                    if not is_fresh(thumb, cell.overlay_path):
                        overlay_thumbnail(cell.overlay_path, thumb)
                    shown["f"] = _relative(cell.overlay_path, out)
                if cell.map_path is not None:
                    saliency = load_map(cell.map_path)
                    draw = cell.overlay_path is None and not is_fresh(thumb, cell.map_path, entry.photo_path)
                    if draw and photo is None and entry.photo_path is not None:
                        photo = photo_view(entry.photo_path, saliency.shape[-1])
                    shown["k"] = map_thumbnail(saliency, method, thumb if draw else None,
                                               photo if photo is not None and photo.shape[:2] == saliency.shape else None)
                if thumb.is_file():
                    shown["t"] = _relative(thumb, out)
            except (OSError, ValueError) as error:
                shown["x"] = f"no thumbnail: {error}"
            cells[method] = shown
        images.append({"n": entry.name, "l": entry.label, "c": cells})
    return {"title": run.title, "kind": run.kind, "methods": run.methods, "metrics": run.metrics,
            "summary": run.summary, "curves": run.curves, "problems": run.problems, "config": run.config,
            "notes": run.notes, "images": images}


def render(data: dict) -> str:
    """The page: the template with the style, the script and ``data`` inlined."""
    folder = resources.files("maskscope.report")
    template = (folder / "report.html").read_text()
    payload = json.dumps(_finite(data), allow_nan=False, default=str).replace("</", "<\\/")
    return (template.replace("{{title}}", html.escape(data["title"]))
            .replace("{{style}}", (folder / "report.css").read_text())
            .replace("{{data}}", payload)
            .replace("{{script}}", (folder / "report.js").read_text()))


def _finite(value):
    """``value`` with every NaN or infinite float replaced by ``None`` (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _relative(path: Path, out: Path) -> str:
    return Path(os.path.relpath(path.resolve(), out.resolve())).as_posix()
