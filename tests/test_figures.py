"""Honest figures: scaling said on the colour bar, visible pixel-level maps, no backend change."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import torch

from maskscope.core.explanation import Explanation
from maskscope.plotting.check_figures import save_check_figure
from maskscope.plotting.figures import panel_title, plot_explanations
from maskscope.plotting.scaling import DIVERGING, SEQUENTIAL, map_colours, shared_scale


def test_pixel_level_maps_are_clipped_so_most_pixels_get_colour():
    rng = np.random.default_rng(0)
    heat = np.abs(rng.normal(size=(64, 64))) * 0.01
    heat[0, 0] = 100.0  # one extreme pixel takes the whole range when stretched
    stretched = map_colours(heat)
    clipped = map_colours(heat, pixel_level=True)
    visible = lambda colours: np.mean((heat - colours.vmin) / (colours.vmax - colours.vmin) > 0.2)  # noqa: E731
    assert visible(stretched) < 0.01 and visible(clipped) > 0.4
    assert "99th percentile" in clipped.caption and "own range" in stretched.caption


def test_the_methods_that_make_pixel_level_maps_say_so_in_their_explanation(shapes_task):
    from maskscope.methods import Gradient, Occlusion

    images = shapes_task.test.images[:1]
    assert Gradient()(shapes_task.classifier, images).pixel_level
    assert not Occlusion(window=8, stride=8)(shapes_task.classifier, images).pixel_level


def test_signed_maps_are_diverging_and_centred_and_shared_scales_are_said():
    heat = np.linspace(-1, 3, 100).reshape(10, 10)
    colours = map_colours(heat)
    assert colours.cmap == DIVERGING and colours.vmin == -colours.vmax == -3
    assert colours.caption.startswith("signed")
    low, high = shared_scale([np.zeros((4, 4)), np.full((4, 4), 0.5)])
    shared = map_colours(np.full((4, 4), 0.25), scale=(low, high))
    assert shared.cmap == SEQUENTIAL and (shared.vmin, shared.vmax) == (0.0, 0.5) and "shared scale" in shared.caption
    rgba = map_colours(np.array([[np.nan, 1.0], [0.0, 0.5]])).rgba(0.7)
    assert rgba[0, 0, 3] == 0 and rgba[0, 1, 3] == rgba[1, 0, 3] == 0.7  # unseen pixels stay uncoloured


def test_plot_explanations_grid_and_notebook_html():
    saliency = torch.zeros(2, 16, 16)
    saliency[:, 4:8, 4:8] = 1
    first = Explanation(saliency=saliency, targets=[[0], [1]], method="mp", target_names=[["a"], ["b"]],
                        scores_before=torch.tensor([0.9, 0.8]), scores_after=torch.tensor([0.1, 0.2]))
    second = Explanation(saliency=-saliency, targets=[[0], [1]], method="gradient", target_names=[["a"], ["b"]])
    figure = plot_explanations([first, second], torch.rand(2, 3, 16, 16), shared=True)
    axes = [axis for axis in figure.axes if axis.get_title()]
    assert len(axes) == 4 and axes[0].get_title() == "mp\na\np 0.90 → 0.10"
    labels = [axis.get_ylabel() for axis in figure.axes if axis.get_ylabel()]
    assert all("shared scale -1 to 1" in label for label in labels)
    assert first.plot(1).axes[0].get_title().startswith("mp\nb")
    html = first._repr_html_()
    assert html.count("<tr>") == 3 and "data:image/png;base64," in html and "0.100" in html


def test_figures_display_as_png_and_draw_the_photo_the_explanation_holds():
    saliency = torch.rand(2, 16, 16)
    held = Explanation(saliency=saliency, targets=[[0], [1]], method="mp", images=torch.rand(2, 3, 16, 16))
    bare = Explanation(saliency=saliency, targets=[[0], [1]], method="mp")
    assert len(held.plot(1).axes[0].images) == 2  # the photo, and the map over it
    assert len(bare.plot(1).axes[0].images) == 1
    assert len(plot_explanations([held]).axes[0].images) == 2
    png = held.plot()._repr_png_()  # what IPython shows, with or without %matplotlib inline
    assert png.startswith(b"\x89PNG") and len(png) > 1000
    assert len(held[1].images) == 1 and torch.equal(held[1].images[0], held.images[1])


def test_titles_fit_their_panels_and_name_the_photo_when_it_has_a_name():
    saliency = torch.rand(1, 16, 16)
    long = Explanation(saliency=saliency, targets=[[281, 285, 282]], method="mp", names=["chelsea"],
                       target_names=[["tiger cat", "Egyptian cat", "tabby, tabby cat"]],
                       scores_before=torch.tensor([0.9]), scores_after=torch.tensor([0.5]),
                       goal_met=torch.tensor([False]))
    title = panel_title(long, 0, 24)
    assert title.splitlines()[0] == "chelsea · mp" and "goal NOT met" in title
    assert max(len(line) for line in title.splitlines()) <= 24
    assert "Egyptian cat" in title and "p 0.90 → 0.50" in title
    unnamed = Explanation(saliency=saliency, targets=[[0]], method="rise")  # a tensor input: image_0
    assert panel_title(unnamed, 0, 40).splitlines()[0] == "rise"


def test_importing_and_plotting_leaves_the_matplotlib_backend_alone():
    code = ("import matplotlib; matplotlib.use('svg'); import torch; import maskscope, maskscope.plotting.figures;"
            "from maskscope.core.explanation import Explanation;"
            "Explanation(saliency=torch.rand(1, 8, 8), targets=[[0]], method='mp').plot();"
            "print(matplotlib.get_backend())")
    printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert printed.strip() == "svg"


def test_check_figures_are_written_beside_their_json(tmp_path):
    record = {"model": "m", "undefended": {"success_rate": 1.0, "successes": 4, "classes_tried": 4},
              "defended": {"success_rate": 0.25, "successes": 1, "classes_tried": 4}}
    path = save_check_figure("adversarial", record, tmp_path / "black.json")
    assert path == tmp_path / "black.png" and path.stat().st_size > 1000
