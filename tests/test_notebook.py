"""A real Jupyter kernel shows explanations and figures as pictures, with no magic and no warning.

The notebook is what a new user types: import maskscope, explain two images, look at the
explanation, the grid of ``plot_explanations`` and ``Explanation.plot``. It runs in a fresh
``ipykernel`` (the kernel of this Python) with a tiny untrained CNN, so it takes seconds.
"""

from __future__ import annotations

import pytest

nbformat = pytest.importorskip("nbformat", reason="the notebook test needs the test extra (nbformat, nbclient)")
nbclient = pytest.importorskip("nbclient", reason="the notebook test needs the test extra (nbformat, nbclient)")
pytest.importorskip("ipykernel", reason="the notebook test needs the test extra (ipykernel)")

CELLS = [
    "import torch\nimport maskscope\nfrom maskscope import Classifier, plot_explanations, get_method",
    "torch.manual_seed(0)\n"
    "model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),\n"
    "                            torch.nn.Flatten(), torch.nn.Linear(4, 3))\n"
    "classifier = Classifier(model, class_names=['disc', 'square', 'tiger cat'])\n"
    "images = torch.rand(2, 3, 32, 32)\n"
    "explanation = get_method('gradcam', layer='0')(classifier, images)\n"
    "other = get_method('centre')(classifier, images)\n"
    "explanation",
    "plot_explanations([explanation, other])",
    "explanation.plot(1)",
]


def run_notebook() -> list[list[dict]]:
    """Each cell's outputs after running :data:`CELLS` in a fresh kernel."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in CELLS])
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3").execute()
    return [cell["outputs"] for cell in notebook.cells]


def test_a_notebook_shows_explanations_and_figures_as_pictures_without_magic():
    imports, explained, grid, single = run_notebook()
    assert not [output for output in imports if output.get("name") == "stderr"], imports  # no warning on import
    html = explained[-1]["data"]["text/html"]
    assert html.count("data:image/png;base64,") == 1 and "gradcam" in html
    for outputs in (grid, single):
        data = outputs[-1]["data"]
        assert "image/png" in data, outputs  # a picture, not "<Figure size … with 6 Axes>"
        assert len(data["image/png"]) > 1000
