"""``maskscope explain`` and ``maskscope methods`` end to end, including bad inputs."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from maskscope.cli.main import main
from maskscope.models import TinyCNN

FAST = ["--param", "steps=3", "--param", "init='ones'", "--quiet"]


@pytest.fixture()
def torchscript_model(tmp_path):
    """A 1000-class TorchScript model (untrained) that runs in milliseconds."""
    torch.manual_seed(0)
    path = tmp_path / "tiny.pt"
    torch.jit.save(torch.jit.script(TinyCNN(1000, width=4).eval()), str(path))
    return path


@pytest.fixture()
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("first", "second"):
        Image.fromarray(rng.integers(0, 255, (80, 100, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    return folder


def test_a_broken_file_does_not_stop_the_others(photos, torchscript_model, tmp_path, capsys):
    out = tmp_path / "out"
    status = main(["explain", str(photos), "--model", str(torchscript_model), "--out", str(out), *FAST])
    printed = capsys.readouterr()
    assert status == 1
    assert "broken.jpg: unreadable or truncated image" in printed.err
    lines = sorted(printed.out.splitlines())  # one line per photo: class, probability before → after, seconds
    assert len(lines) == 2 and lines[0].startswith("first: ") and " → " in lines[0] and lines[0].endswith(" s")
    for name in ("first", "second"):
        assert (out / f"{name}.npy").is_file() and (out / f"{name}.png").is_file()
        record = json.loads((out / f"{name}.json").read_text())
        assert record["method"] == "mp" and record["params"]["steps"] == 3
        assert np.load(out / f"{name}.npy").shape == (224, 224)


def test_bad_targets_and_empty_folders_are_one_line_errors(photos, torchscript_model, tmp_path, capsys):
    image = str(photos / "first.png")
    model = ["--model", str(torchscript_model), "--out", str(tmp_path / "o"), *FAST]
    assert main(["explain", image, "--target", "1000", *model]) == 2
    assert "target 1000 is out of range" in capsys.readouterr().err
    assert main(["explain", image, "--target", "no such animal", *model]) == 2
    assert "unknown class name 'no such animal'" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["explain", str(empty), *model]) == 2
    assert "no images found" in capsys.readouterr().err
    assert main(["explain", image, "--model", str(tmp_path / "missing.pt")]) == 2
    assert "missing.pt: no such model file" in capsys.readouterr().err


def test_a_model_with_nan_output_is_reported_per_image(photos, tmp_path, capsys):
    class NaNForDarkImages(torch.nn.Module):
        def forward(self, x):
            logits = torch.zeros(x.shape[0], 1000)
            dark = x.mean((1, 2, 3)) < -0.5
            return torch.where(dark[:, None], torch.full_like(logits, float("nan")), logits)

    path = tmp_path / "nan.pt"
    torch.jit.save(torch.jit.script(NaNForDarkImages()), str(path))
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(photos / "dark.png")
    status = main(["explain", str(photos), "--model", str(path), "--out", str(tmp_path / "o"), *FAST])
    error = capsys.readouterr().err
    assert status == 1 and "dark: model" in error and "NaN" in error
    assert (tmp_path / "o" / "first.npy").is_file() and not (tmp_path / "o" / "dark.npy").exists()


def test_methods_lists_defaults_and_the_papers_names(capsys):
    assert main(["methods"]) == 0
    listing = capsys.readouterr().out
    assert "mp" in listing and "steps = 300" in listing and "resolution = 28" in listing
    assert "sp-g         sliding_patch with filler='inpaint'" in listing


def test_the_papers_names_are_aliases_with_their_settings():
    from maskscope.methods import LIME, GradCAM, IntegratedGradients, SlidingPatch, get_method

    assert isinstance(get_method("grad-cam"), GradCAM) and isinstance(get_method("IG"), IntegratedGradients)
    assert get_method("sp").filler == SlidingPatch().filler
    assert get_method("sp-g").filler == "inpaint" and get_method("lime-g").filler == "inpaint"
    assert isinstance(get_method("lime-g"), LIME)
    assert get_method("sp-g", filler="blur", stride=5).filler == "blur"  # the user's settings win
    with pytest.raises(ValueError, match="unknown method 'spg'.*sp-g"):
        get_method("spg")


def test_an_onnx_model_is_refused_on_a_gpu():
    from maskscope.cli.options import load_classifier
    from maskscope.core.model.loading import ModelChoiceError
    from maskscope.core.model.spec import ModelSpec

    with pytest.raises(ModelChoiceError, match="ONNX model runs on the CPU"):
        load_classifier(ModelSpec(model="model.onnx", device="cuda"))


def test_a_map_whose_optimisation_did_not_move_is_flagged(photos, torchscript_model, tmp_path, capsys):
    (photos / "broken.jpg").unlink()
    out = tmp_path / "out"
    still = ["--param", "steps=2", "--param", "init='ones'", "--param", "lr=1e-9", "--quiet"]
    status = main(["explain", str(photos), "--model", str(torchscript_model), "--out", str(out), *still])
    error = capsys.readouterr().err
    assert status == 0
    for name in ("first", "second"):
        assert f"warning: {name}: mp did not meet its goal" in error
        record = json.loads((out / f"{name}.json").read_text())
        assert record["goal_met"] is False and record["kept_area"] == pytest.approx(1.0)
        assert record["score_after"] == pytest.approx(record["score_before"], rel=1e-4)


def test_user_errors_are_caught_once_as_one_line_with_their_exit_status(monkeypatch, capsys):
    from maskscope.cli import methods
    from maskscope.core.explanation import SaveError
    from maskscope.errors import MaskscopeValueError

    def fail_with(error):
        def run(args):
            raise error

        monkeypatch.setattr(methods, "run", run)
        return main(["methods"])

    assert fail_with(MaskscopeValueError("a bad value\n  quoted from a library\n")) == 2
    assert capsys.readouterr().err == "maskscope methods: error: a bad value; quoted from a library\n"
    assert fail_with(SaveError("cannot write out/a.npy: No space left on device")) == 1  # a failed run
    assert capsys.readouterr().err.count("\n") == 1
    with pytest.raises(RuntimeError, match="a bug"):  # anything else is a bug: its traceback is kept
        fail_with(RuntimeError("a bug"))


def test_topk_targets_write_a_map_per_class_named_by_rank(photos, torchscript_model, tmp_path, capsys):
    (photos / "broken.jpg").unlink()
    out = tmp_path / "out"
    status = main(["explain", str(photos), "--model", str(torchscript_model), "--out", str(out), "--method", "gradient",
                   "--target", "topk:2", "--quiet"])
    lines = capsys.readouterr().out.splitlines()
    assert status == 0 and len(lines) == 4
    for name in ("first", "second"):
        records = [json.loads((out / f"{name}_top{rank}.json").read_text()) for rank in (1, 2)]
        assert [record["source"] for record in records] == [str(photos / f"{name}.png")] * 2
        assert records[0]["targets"] != records[1]["targets"]  # the first and second class, a map each
        assert records[0]["score_before"] >= records[1]["score_before"]


def test_a_topk_run_resumes_photo_by_photo(photos, torchscript_model, tmp_path, capsys):
    (photos / "broken.jpg").unlink()
    out = tmp_path / "out"
    command = ["explain", str(photos), "--model", str(torchscript_model), "--out", str(out), "--method", "gradient",
               "--target", "topk:2", "--quiet"]
    assert main(command) == 0
    capsys.readouterr()
    assert main(command) == 0  # every map complete: nothing is explained again
    printed = capsys.readouterr()
    assert printed.out == "" and "2 photo(s) already explained" in printed.err
    for path in out.glob("second_top2*"):  # a run killed between the second photo's two maps
        path.unlink()
    kept = (out / "first_top1.npy").stat().st_mtime_ns
    assert main(command) == 0
    printed = capsys.readouterr()
    assert "1 photo(s) already explained" in printed.err
    assert [line.split(":")[0] for line in printed.out.splitlines()] == ["second_top1", "second_top2"]
    assert (out / "second_top2.json").is_file() and (out / "first_top1.npy").stat().st_mtime_ns == kept
    assert main([*command[:-3], "--target", "topk:3", "--quiet"]) == 2  # made otherwise: refused, nothing replaced
    assert "made otherwise" in capsys.readouterr().err


def test_an_alias_with_settings_keeps_its_own_files_and_title(photos, torchscript_model, tmp_path, capsys):
    (photos / "broken.jpg").unlink()
    out = tmp_path / "out"
    common = ["explain", str(photos / "first.png"), "--model", str(torchscript_model), "--out", str(out), "--quiet"]
    assert main([*common, "--method", "lime", "--param", "samples=16"]) == 0
    first = (out / "first.npy").read_bytes()
    assert main([*common, "--method", "lime-g", "--param", "samples=16", "--param", "filler='blur'"]) == 0
    capsys.readouterr()
    lime, lime_g = (json.loads((out / f"{stem}.json").read_text()) for stem in ("first", "first_lime-g"))
    assert (lime["method"], lime["asked_as"]) == ("lime", "lime")
    assert (lime_g["method"], lime_g["asked_as"]) == ("lime", "lime-g")
    assert (out / "first.npy").read_bytes() == first  # the lime run's files are untouched
    from maskscope.core.explanation import Explanation

    loaded = Explanation.load(out, method="lime-g")
    assert loaded.names == ["first"] and loaded.title(0).startswith("lime-g: ")
    assert Explanation.load(out / "first.json").title(0).startswith("lime: ")


def test_the_model_options_are_one_line_errors_before_anything_runs(photos, torchscript_model, tmp_path, capsys):
    image, out = str(photos / "first.png"), ["--out", str(tmp_path / "o"), *FAST]
    assert main(["explain", image, "--model", str(torchscript_model), "--model-checkpoint", "w.pth", *out]) == 2
    assert "only a timm:NAME or torchvision:NAME model takes a weights file" in capsys.readouterr().err
    assert main(["explain", image, "--model", str(torchscript_model), "--mean", "0.5,0.5", *out]) == 2
    assert "--mean needs three comma-separated numbers" in capsys.readouterr().err
    assert main(["explain", image, "--model", str(torchscript_model), "--class-names", str(tmp_path / "no.txt"), *out]) == 2
    assert "--class-names" in capsys.readouterr().err and not (tmp_path / "o").exists()
