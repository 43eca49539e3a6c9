"""Integration: the README's main job on the real default model and the bundled cat photo."""

import json

import numpy as np
import pytest

from maskscope.cli.main import main

pytestmark = pytest.mark.slow


def test_explain_highlights_the_cat_not_the_background(tmp_path):
    assert main(["explain", "--out", str(tmp_path), "--quiet"]) == 0
    saliency = np.load(tmp_path / "chelsea.npy")
    record = json.loads((tmp_path / "chelsea.json").read_text())
    assert record["target_names"] == ["tiger cat"] and record["score_before"] > 0.3
    assert record["score_after"] < 0.1 * record["score_before"]  # deleting the mask removes the class
    eyes = saliency[56:112].mean()  # the band of the 224-px view that holds both eyes
    chest = saliency[168:, :84].mean()  # bottom-left: the white chest fur and background
    assert eyes > 0.8 and eyes > 2 * chest, (eyes, chest)
    assert (tmp_path / "chelsea.png").stat().st_size > 10_000
