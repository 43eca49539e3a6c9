"""``maskscope train-explainer`` and ``maskscope explain --method explainer`` end to end on synthetic shapes."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from maskscope.cli.main import main
from maskscope.data.synthetic import make_shapes
from maskscope.models import TinyCNN

DATA = "synthetic-shapes:n=16,size=32,classes=3,objects=1-2"
CLASSIFIER = ["--input-size", "32", "--mean", "0.5,0.5,0.5", "--std", "0.5,0.5,0.5", "--multilabel",
              "--class-names", "square,disc,triangle"]  # fmt: skip
SMALL = ["--batch-size", "8", "--network-option", "width=4", "--network-option", "levels=2", "--quiet"]


def torchscript(path, seed: int):
    torch.manual_seed(seed)
    torch.jit.save(torch.jit.script(TinyCNN(3, width=4).eval()), str(path))
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A TorchScript classifier, an explainer trained for one epoch and then resumed to two."""
    folder = tmp_path_factory.mktemp("cli")
    model = torchscript(folder / "tiny.pt", seed=0)
    train = ["train-explainer", "--classifier", str(model), *CLASSIFIER, "--data", DATA, "--out", str(folder / "run"), *SMALL]
    assert main([*train, "--epochs", "1"]) == 0
    assert main([*train, "--epochs", "2", "--resume"]) == 0
    return folder, model, train


def test_training_writes_the_explainer_and_a_log_and_resumes(run, capsys):
    folder, _, train = run
    out = folder / "run"
    assert (out / "best.pt").is_file() and (out / "last.pt").is_file() and (out / "loss.png").is_file()
    rows = list(csv.DictReader((out / "log.csv").open()))
    assert [row["epoch"] for row in rows] == ["1", "1", "2", "2"]
    assert main([*train, "--epochs", "3"]) == 2
    assert "already holds a training run" in capsys.readouterr().err


def test_explain_with_the_checkpoint_writes_every_class_mask(run, tmp_path):
    folder, model, _ = run
    photo = tmp_path / "shapes.png"
    image = make_shapes(1, size=48, object_size=(14, 20), objects=(2, 2), seed=5).images[0]
    Image.fromarray((image.permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(photo)
    out = tmp_path / "maps"
    status = main(["explain", str(photo), "--method", "explainer", "--checkpoint", str(folder / "run" / "best.pt"),
                   "--model", str(model), "--target", "disc", "--out", str(out), "--quiet"])  # fmt: skip
    assert status == 0
    saliency, masks = np.load(out / "shapes.npy"), np.load(out / "shapes_class_masks.npy")
    assert saliency.shape == (32, 32) and masks.shape == (3, 32, 32)
    assert np.array_equal(saliency, masks[1])  # the target's own mask
    record = json.loads((out / "shapes.json").read_text())
    assert record["method"] == "explainer" and record["target_names"] == ["disc"]


def test_a_checkpoint_with_another_model_or_no_checkpoint_is_a_one_line_error(run, tmp_path, capsys):
    folder, _, _ = run
    other = torchscript(tmp_path / "other.pt", seed=1)
    common = ["--out", str(tmp_path / "o"), "--quiet"]
    assert main(["explain", "--method", "explainer", "--checkpoint", str(folder / "run" / "best.pt"),
                 "--model", str(other), *common]) == 2  # fmt: skip
    assert "probe image" in capsys.readouterr().err
    assert main(["explain", "--method", "explainer", "--model", str(other), *common]) == 2
    assert "needs --checkpoint" in capsys.readouterr().err
    assert main(["explain", "--method", "rise", "--checkpoint", str(folder / "run" / "best.pt"), *common]) == 2


def test_training_on_labels_outside_the_class_list_is_a_one_line_error(run, tmp_path, capsys):
    _, model, _ = run
    names = ["--class-names", "star,moon,sun"]
    status = main(["train-explainer", "--classifier", str(model), *CLASSIFIER, *names, "--data", DATA,
                   "--out", str(tmp_path / "bad"), *SMALL])  # fmt: skip
    assert status == 2
    assert "not among the classifier's 3 classes" in capsys.readouterr().err
