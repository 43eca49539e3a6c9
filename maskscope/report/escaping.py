"""How the report puts text from a run into its page: nothing a run holds can become markup or a link out.

A run's names (folders, photos, classes, methods, parameter values) are data written by whoever
made the run, and a report is made to be shared, so every such string is treated as hostile:

- text in the HTML template is HTML-escaped (``&``, ``<``, ``>``, ``"`` and ``'``);
- the data JSON is embedded in a ``<script type="application/json">`` element with ``<``, ``>``,
  ``&``, U+2028 and U+2029 written as ``\\uXXXX``, so nothing in it can close the element;
- every ``src``/``href`` is a relative URL of a file inside the run or the report folder, each
  path segment percent-encoded (so no segment can hold a scheme, a query or a fragment);
- every thumbnail file name is one safe path segment per name segment (no ``..``).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
from pathlib import Path
from urllib.parse import quote

#: the shape of every URL the page holds: ``./`` or ``../`` then percent-encoded segments (report.js checks the same)
URL_PATTERN = re.compile(r"(\./|\.\./)([A-Za-z0-9._~%-]+/)*[A-Za-z0-9._~%-]+")
#: JSON characters written as ``\uXXXX`` inside the page's script element
SCRIPT_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
#: longest file-name segment kept as it is (bytes of UTF-8); longer ones are hashed
LONGEST_SEGMENT = 180


def html_text(text: object) -> str:
    """``text`` as HTML text or attribute value: every ``&``, ``<``, ``>``, ``"`` and ``'`` escaped."""
    return html.escape(str(text), quote=True)


def script_json(value: object) -> str:
    """``value`` as JSON that can sit inside ``<script type="application/json">`` and never close it."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, default=str)
    return re.sub("[<>&\u2028\u2029]", lambda match: SCRIPT_ESCAPES[match.group()], text)


def csp_hash(text: str) -> str:
    """The Content-Security-Policy source ``'sha256-…'`` that allows the inline element whose content is ``text``."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def file_url(target: Path, page_dir: Path, roots: tuple[Path, ...]) -> str | None:
    """The relative URL of the file ``target`` from a page in ``page_dir``; ``None`` unless it lies inside one of ``roots``.

    The target is resolved (symbolic links followed) first, so neither ``..`` nor a link can
    reach a file outside the run; each segment is percent-encoded (``#`` → ``%23``, ``:`` →
    ``%3A``), and the URL starts with ``./`` or ``../``, so it can only name a file.
    """
    resolved = target.resolve()
    if not any(resolved.is_relative_to(root.resolve()) for root in roots):
        return None
    try:
        relative = Path(os.path.relpath(resolved, page_dir.resolve())).as_posix()
    except ValueError:  # another drive (Windows): no relative path exists
        return None
    segments = [segment if segment == ".." else quote(segment, safe="") for segment in relative.split("/")]
    url = "/".join(segments if segments[0] == ".." else ["."] + segments)
    return url if URL_PATTERN.fullmatch(url) else None


def file_segments(name: str) -> list[str]:
    """The path segments under which a file named after ``name`` (``/`` separating folders) is written.

    A segment that is empty, ``.`` or ``..``, holds a backslash or a NUL, or is longer than
    :data:`LONGEST_SEGMENT` bytes is replaced by ``_`` and a hash of it, so the file stays
    inside its folder whatever the name.
    """
    segments = []
    for segment in name.split("/"):
        unsafe = segment in ("", ".", "..") or "\\" in segment or "\0" in segment
        if unsafe or len(segment.encode("utf-8", "surrogatepass")) > LONGEST_SEGMENT:
            segment = "_" + hashlib.sha256(segment.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        segments.append(segment)
    return segments
