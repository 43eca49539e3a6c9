"""The docs' notebook screenshot: what a new user sees in Jupyter, taken from a real kernel.

    python docs/make_notebook_screenshot.py [--out docs/notebook-screenshot.png]

Runs :data:`CELLS` (the default model on the bundled cat photo, Grad-CAM and MP) in a fresh
kernel of this Python, as a notebook server would, writes each cell's code and rich outputs
(the PNG or HTML the kernel sent, nothing redrawn here) to one HTML page, and has headless
Chromium photograph it. Needs the test extra (``nbformat``, ``nbclient``, ``ipykernel``) and a
``chromium`` on the PATH (Debian's ``chromium``).
"""

from __future__ import annotations

import argparse
import html
import shutil
import subprocess
import tempfile
from pathlib import Path

import nbclient
import nbformat

#: the notebook: what the getting-started page types, no ``%matplotlib`` magic
CELLS = [
    "from skimage import data\n"
    "from maskscope import Classifier, get_method, load_image, plot_explanations\n\n"
    "classifier = Classifier.default()\n"
    "photo = classifier.view(load_image(data.chelsea()))[None]",
    "explanation = get_method('gradcam')(classifier, photo)\nexplanation",
    "mp = get_method('mp', steps=60)(classifier, photo, seed=0)\nplot_explanations([explanation, mp], photo)",
]

STYLE = """
body { font-family: sans-serif; margin: 16px; width: 860px; }
.cell { margin-bottom: 14px; }
pre.code { background: #f5f5f5; border-left: 3px solid #5b8dd6; padding: 8px; font-size: 13px; margin: 0; }
.out { padding: 6px 0 0 12px; font-size: 13px; }
.out img { max-width: 820px; }
.label { color: #b04; font-family: monospace; font-size: 12px; }
"""


def execute(cells: list[str]) -> nbformat.NotebookNode:
    """The notebook of ``cells`` after a fresh kernel ran it."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3").execute()
    return notebook


def output_html(output: dict) -> str:
    """One output as the notebook front end shows it: its PNG, else its HTML, else its text."""
    data = output.get("data", {})
    if "image/png" in data:
        return f'<img src="data:image/png;base64,{data["image/png"]}">'
    if "text/html" in data:
        return "".join(data["text/html"])
    text = data.get("text/plain") or output.get("text", "")
    return f"<pre>{html.escape(''.join(text))}</pre>"


def page(notebook: nbformat.NotebookNode) -> str:
    """The executed notebook as one HTML page: each cell's code, then its outputs."""
    cells = []
    for number, cell in enumerate(notebook.cells, 1):
        outputs = "".join(output_html(output) for output in cell.get("outputs", []))
        cells.append(f'<div class="cell"><span class="label">In [{number}]:</span>'
                     f'<pre class="code">{html.escape(cell.source)}</pre><div class="out">{outputs}</div></div>')
    return f"<!doctype html><html><head><style>{STYLE}</style></head><body>{''.join(cells)}</body></html>"


def screenshot(document: str, out: Path, height: int) -> None:
    """Photograph ``document`` with headless Chromium into ``out`` (PNG, 900 px wide)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("no chromium on the PATH (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "notebook.html"
        path.write_text(document)
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--screenshot={out.resolve()}", f"--window-size=900,{height}", path.as_uri()],
                       check=True, capture_output=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("notebook-screenshot.png"))
    parser.add_argument("--height", type=int, default=1100, help="the page's height in pixels")
    args = parser.parse_args()
    screenshot(page(execute(CELLS)), args.out, args.height)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
