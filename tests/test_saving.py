"""Files: explanations are named after the photos, record where each came from, are never
replaced silently, and are found again by ``Explanation.load`` without their names."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from maskscope.cli.main import main
from maskscope.core.explanation import Explanation
from maskscope.methods import GradCAM, Gradient
from maskscope.models import TinyCNN


@pytest.fixture()
def photo_files(tmp_path, shapes_task):
    """Two of the shapes task's photos as PNG files, named after what they show."""
    folder = tmp_path / "photos"
    folder.mkdir()
    paths = []
    for name, image in zip(("square", "disc"), shapes_task.test.images[:2]):
        path = folder / f"{name}.png"
        Image.fromarray((image.permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def test_two_methods_saved_to_one_folder_keep_both(photo_files, shapes_task, tmp_path):
    classifier, out = shapes_task.classifier, tmp_path / "out"
    gradient = Gradient()(classifier, photo_files, target=0)
    gradcam = GradCAM()(classifier, photo_files, target=0)
    assert gradient.names == ["square", "disc"] and gradient.sources == [str(p) for p in photo_files]
    gradient.save(out)
    gradcam.save(out)
    for name in ("square", "disc"):
        assert json.loads((out / f"{name}.json").read_text())["method"] == "gradient"
        record = json.loads((out / f"{name}_gradcam.json").read_text())
        assert record["method"] == "gradcam" and record["name"] == name
        assert record["source"] == str(photo_files[0].parent / f"{name}.png")
    assert np.allclose(np.load(out / "square.npy"), gradient.saliency[0].numpy())
    assert np.allclose(np.load(out / "square_gradcam.npy"), gradcam.saliency[0].numpy())

    loaded = Explanation.load(out, method="gradcam")  # the names are found in the folder
    assert sorted(loaded.names) == ["disc", "square"] and loaded.method == "gradcam"
    order = [gradcam.names.index(name) for name in loaded.names]
    assert torch.allclose(loaded.saliency, gradcam.saliency[order])
    assert loaded.sources == [gradcam.sources[i] for i in order]
    with pytest.raises(ValueError, match="holds explanations by gradcam, gradient; pass method="):
        Explanation.load(out)


def test_the_same_method_again_is_refused_unless_overwrite(photo_files, shapes_task, tmp_path):
    classifier, out = shapes_task.classifier, tmp_path / "out"
    first = Gradient()(classifier, photo_files, target=0)
    first.save(out)
    again = Gradient(score="probability")(classifier, photo_files, target=1)
    with pytest.raises(FileExistsError, match="square.* already holds a gradient explanation; .*--overwrite"):
        again.save(out)
    assert np.allclose(np.load(out / "square.npy"), first.saliency[0].numpy())  # untouched
    again.save(out, overwrite=True)
    assert np.allclose(np.load(out / "square.npy"), again.saliency[0].numpy())
    photo = photo_files[0].read_bytes()
    first.save(photo_files[0].parent, images=[torch.rand(3, 64, 64)] * 2, overwrite=True)  # beside the photos
    assert photo_files[0].read_bytes() == photo  # a file that is not an explanation is never replaced
    assert (photo_files[0].parent / "square_gradient.png").is_file()


def test_sub_folders_are_explained_and_mirrored_and_a_second_run_skips_them(tmp_path, capsys):
    torch.manual_seed(0)
    model = tmp_path / "tiny.pt"
    torch.jit.save(torch.jit.script(TinyCNN(1000, width=4).eval()), str(model))
    photos = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for relative in ("top.png", "cats/tabby.png", "cats/old/tom.png"):
        (photos / relative).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (60, 70, 3), dtype=np.uint8)).save(photos / relative)
    out = tmp_path / "out"
    command = ["explain", str(photos), "--method", "gradient", "--model", str(model), "--out", str(out), "--quiet"]
    assert main(command) == 0
    assert "wrote 3 explanation(s)" in capsys.readouterr().err
    for name in ("top", "cats/tabby", "cats/old/tom"):
        assert json.loads((out / f"{name}.json").read_text())["name"] == name
    assert main(command) == 0  # the same command again resumes: nothing is left to explain
    printed = capsys.readouterr()
    assert "3 photo(s) already explained" in printed.err and printed.out == ""
    assert main([*command, "--target", "1"]) == 2  # the same names, asked otherwise: refused
    assert "holds a gradient explanation made otherwise (target: 'top1' → '1')" in capsys.readouterr().err
    assert main([*command, "--overwrite"]) == 0
    assert sorted(Explanation.load(out).names) == ["cats/old/tom", "cats/tabby", "top"]


def test_a_run_that_writes_nothing_says_so(tmp_path, capsys):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    out = tmp_path / "out"
    assert main(["explain", str(broken), "--method", "gradient", "--out", str(out), "--quiet"]) == 1
    assert "nothing written: all 1 image(s) failed" in capsys.readouterr().err
    assert not out.exists()
