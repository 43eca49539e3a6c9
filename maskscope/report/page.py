"""``write_report``: the HTML page of a run, with its thumbnails beside it.

The page is one file, ``OUT/report.html``, with its script, style and data inlined (no CDN,
no network: it opens from disk), and the thumbnails in ``OUT/thumbs/<method>/<image>.jpg``,
loaded lazily as the gallery scrolls. The gallery shows rows in pages, so a run of 1,000
photos × 7 methods keeps a small page.

Nothing a run holds can run in the page (see :mod:`maskscope.report.escaping`): the template
is filled in one pass with escaped text, the data sits in a JSON script element, and a
Content-Security-Policy allows only the page's own script and style (by their SHA-256) and
images from its own folder. The page is marked as maskscope's, and only such a page is replaced.
"""

from __future__ import annotations

import math
import os
import re
from importlib import resources
from pathlib import Path

from maskscope.core.progress import progress_bar
from maskscope.errors import MaskscopeValueError
from maskscope.report.collect import RunData, better, collect
from maskscope.report.escaping import csp_hash, file_segments, file_url, html_text, script_json
from maskscope.report.thumbnails import is_fresh, load_map, map_thumbnail, overlay_thumbnail, photo_view

#: the tag that marks a page written by ``maskscope report``: only such a page is replaced
MARKER = '<meta name="generator" content="maskscope report">'
#: the subtitle of the pages written before the marker existed (with their data element, they are maskscope's too)
LEGACY_MARKER = '<p class="sub">maskscope report</p>'
#: the template's placeholders, all filled in one pass (a filled value is never searched again)
PLACEHOLDER = re.compile(r"\{\{(title|csp|style|data|script)\}\}")


def write_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """Write the report of the run in ``run_dir`` to ``out`` (default ``run_dir/report``); returns the page.

    Raises:
        MaskscopeValueError: the run cannot be read, ``out`` is not a folder, or ``out/report.html``
            exists and was not written by ``maskscope report`` (nothing is written then).
    """
    run = collect(run_dir)
    out = Path(out) if out is not None else Path(run_dir) / "report"
    page = out / "report.html"
    check_replaceable(page)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as error:
        raise MaskscopeValueError(f"{out}: cannot be the report's folder ({error.strerror})") from error
    text = render(page_data(run, out, progress))
    written = out / f".report.html.{os.getpid()}"
    written.write_text(text, encoding="utf-8")
    os.replace(written, page)  # replaces a link at ``page``, never the file it points to
    return page


def check_replaceable(page: Path) -> None:
    """Refuse (one-line ``MaskscopeValueError``) when ``page`` exists and is not a page this report wrote."""
    if not page.exists() and not page.is_symlink():
        return
    if page.is_file():
        text = page.read_text(encoding="utf-8", errors="replace")
        if MARKER in text[:1000] or (LEGACY_MARKER in text and '<script id="report-data"' in text):
            return
    raise MaskscopeValueError(f"{page} exists and was not written by maskscope report; it is left as it is: "
                              "choose another --out, or move it away")


def page_data(run: RunData, out: Path, progress: bool = True) -> dict:
    """The JSON the page's script reads, drawing the thumbnails it names.

    Links go only to files inside the report folder ``out`` or the run's folder (see
    :func:`~maskscope.report.escaping.file_url`); an overlay elsewhere keeps its thumbnail
    and loses its link.
    """
    roots = (out,) if run.folder is None else (out, run.folder)
    images = []
    for entry in progress_bar(run.images, desc="report thumbnails", unit="photo", disable=not progress):
        photo = None
        cells = {}
        for method, cell in entry.cells.items():
            shown: dict = {"v": {k: round(v, 5) for k, v in cell.values.items()}, "s": cell.status}
            if cell.reason:
                shown["r"] = cell.reason
            thumb = out.joinpath("thumbs", *file_segments(method), *file_segments(f"{entry.name}.jpg"))
            try:
                if cell.overlay_path is not None:
                    if not is_fresh(thumb, cell.overlay_path):
                        overlay_thumbnail(cell.overlay_path, thumb)
                    if (link := file_url(cell.overlay_path, out, roots)) is not None:
                        shown["f"] = link
                if cell.map_path is not None:
                    saliency = load_map(cell.map_path)
                    draw = cell.overlay_path is None and not is_fresh(thumb, cell.map_path, entry.photo_path)
                    if draw and photo is None and entry.photo_path is not None:
                        photo = photo_view(entry.photo_path, saliency.shape[-1])
                    shown["k"] = map_thumbnail(saliency, cell.pixel_level, thumb if draw else None,
                                               photo if photo is not None and photo.shape[:2] == saliency.shape else None)
                if thumb.is_file() and (source := file_url(thumb, out, (out,))) is not None:
                    shown["t"] = source
            except (OSError, ValueError) as error:
                shown["x"] = f"no thumbnail: {error}"
            cells[method] = shown
        images.append({"n": entry.name, "l": entry.label, "c": cells})
    named = {*run.metrics, *run.curves, *(row["metric"] for row in run.summary),
             *(metric for image in images for cell in image["c"].values() for metric in cell["v"])}
    return {"title": run.title, "kind": run.kind, "methods": run.methods, "metrics": run.metrics,
            "summary": run.summary, "curves": run.curves, "problems": run.problems, "config": run.config,
            "notes": run.notes, "images": images, "better": {metric: better(metric) for metric in sorted(named)}}


def render(data: dict) -> str:
    """The page: the template filled in one pass with the escaped title, the policy, the style, the script and ``data``."""
    folder = resources.files("maskscope.report")
    style = (folder / "report.css").read_text(encoding="utf-8")
    script = (folder / "report.js").read_text(encoding="utf-8")
    values = {"title": html_text(data["title"]), "csp": html_text(content_security_policy(script, style)),
              "style": style, "data": script_json(_finite(data)), "script": script}
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], (folder / "report.html").read_text(encoding="utf-8"))


def content_security_policy(script: str, style: str) -> str:
    """The page's policy: its own inline ``script`` and ``style`` (by SHA-256), images from its folder, nothing else.

    No inline handler, no other script or style, no fetch, frame, form, font or media, no
    ``<base>``: with ``default-src 'none'`` every network origin is refused.
    """
    return (f"default-src 'none'; script-src {csp_hash(script)}; style-src {csp_hash(style)}; img-src 'self'; "
            "base-uri 'none'; form-action 'none'")


def _finite(value):
    """``value`` with every NaN or infinite float replaced by ``None`` (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value
