"""Checks of a model and of a method: reference entropy and model randomisation, with their commands."""

import json
import math

import pytest
import torch

from maskscope.checks import entropy, model_randomisation, parametrised_layers, randomised_copy, reference_entropy
from maskscope.cli.main import main
from maskscope.methods.registry import get_method


def test_entropy_of_known_distributions():
    uniform = torch.full((1, 10), 0.1)
    certain = torch.tensor([[1.0, 0.0, 0.0]])
    assert entropy(uniform).item() == pytest.approx(math.log(10))
    assert entropy(certain).item() == 0


def test_reference_entropy_on_the_shapes_task(shapes_task):
    images, _, _ = shapes_task.correctly_classified(6)
    rows = {row.reference: row for row in reference_entropy(shapes_task.classifier, images)}
    assert list(rows) == ["zero", "noise σ=8", "noise σ=32", "blur σ=5", "blur σ=10", "photos", "maximum log C"]
    maximum = rows["maximum log C"].entropy
    assert maximum == pytest.approx(math.log(shapes_task.classifier.num_classes))
    assert all(row.entropy <= maximum + 1e-6 for row in rows.values())
    assert rows["zero"].count == 1 and rows["photos"].count == 6 and rows["noise σ=8"].count == 6
    # a trained model is confident on the images it classifies correctly, less so on a flat image
    assert rows["photos"].entropy < rows["zero"].entropy


def test_randomised_copy_leaves_the_model_unchanged(shapes_task):
    classifier = shapes_task.classifier
    before = {k: v.clone() for k, v in classifier.model.state_dict().items()}
    layers = parametrised_layers(classifier.model)
    assert layers[-1][0] == "classifier"  # the logits layer is the top
    clone = randomised_copy(classifier, [name for name, _ in layers])
    after = classifier.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not torch.equal(clone.model.classifier.weight, classifier.model.classifier.weight)
    assert not any(p.requires_grad for p in clone.model.parameters())
    with pytest.raises(ValueError, match="no layer"):
        randomised_copy(classifier, ["no.such.layer"])


def test_gradient_maps_lose_their_structure_under_randomisation(shapes_task):
    classifier = shapes_task.classifier
    before = {k: v.clone() for k, v in classifier.model.state_dict().items()}
    images, _, _ = shapes_task.correctly_classified(4)
    result = model_randomisation(classifier, get_method("gradient"), images, steps=[1, 3])
    steps = {(step.variant, step.layers): step.similarity for step in result.steps}
    count = result.num_layers
    assert set(steps) == {("cascading", k) for k in (0, 1, 3, count)} | {("independent", k) for k in (1, 3)}
    assert steps[("cascading", 0)]["spearman"] == pytest.approx(1.0, abs=1e-6)
    assert steps[("cascading", 0)]["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert steps[("cascading", count)]["spearman_abs"] < 0.5
    assert result.passed is True and result.full_spearman_abs == steps[("cascading", count)]["spearman_abs"]
    assert all(torch.equal(before[k], v) for k, v in classifier.model.state_dict().items())


def test_randomisation_rejects_bad_steps(shapes_task):
    images, _, _ = shapes_task.correctly_classified(1)
    with pytest.raises(ValueError, match="out of range"):
        model_randomisation(shapes_task.classifier, get_method("gradient"), images, steps=[0])
    with pytest.raises(ValueError, match="unknown variant"):
        model_randomisation(shapes_task.classifier, get_method("gradient"), images, variants=("shuffled",))


@pytest.mark.slow
def test_check_entropy_command_on_the_default_model(tmp_path, capsys):
    from PIL import Image
    from skimage import data

    path = tmp_path / "chelsea.png"
    Image.fromarray(data.chelsea()).save(path)
    out = tmp_path / "entropy.json"
    assert main(["check", "entropy", str(path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| zero |" in printed and "| photos |" in printed
    rows = {row["reference"]: row for row in json.loads(out.read_text())["rows"]}
    assert rows["maximum log C"]["entropy"] == pytest.approx(math.log(1000))
    assert rows["zero"]["entropy"] > rows["photos"]["entropy"]
    assert (tmp_path / "entropy.png").stat().st_size > 1000  # the figure beside the JSON


def test_check_randomisation_command(tmp_path, capsys):
    torch.manual_seed(0)
    from maskscope.models import TinyCNN

    model = tmp_path / "tiny.pt"
    torch.jit.save(torch.jit.script(TinyCNN(10, width=4).eval()), str(model))
    status = main(["check", "randomisation", "--model", str(model), "--method", "gradient"])
    assert status == 2  # a TorchScript model's layers cannot be re-initialised: a clear error
    assert "reset_parameters" in capsys.readouterr().err


def test_check_randomisation_command_reports_a_verdict(shapes_task, tmp_path, monkeypatch, capsys):
    from PIL import Image

    images, _, _ = shapes_task.correctly_classified(2)
    paths = []
    for index, image in enumerate(images):
        paths.append(tmp_path / f"shape{index}.png")
        Image.fromarray((image.permute(1, 2, 0).numpy() * 255).round().astype("uint8")).save(paths[-1])
    monkeypatch.setattr("maskscope.cli.check.randomisation.load_classifier", lambda args: shapes_task.classifier)
    out = tmp_path / "randomisation.json"
    status = main(["check", "randomisation", *map(str, paths), "--steps", "2", "--out", str(out)])
    printed = capsys.readouterr().out
    assert status == 0 and "gradient passes" in printed
    record = json.loads(out.read_text())
    assert [step["layers"] for step in record["steps"]] == [0, 1, record["num_layers"]]
    assert (tmp_path / "randomisation.png").stat().st_size > 1000  # the figure beside the JSON
