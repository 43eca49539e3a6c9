"""Hostile inputs a tester found: each is a one-line error with the right exit status, never a
traceback, and touches no file outside the run's own.

Exit status 2: a bad argument, checked before any model is loaded where it can be (the tests
pass a model path that does not exist to show that the argument was refused first). Exit
status 1: a run that failed on its way (a full disk; a photo that cannot be read). A genuine
bug (a plain ValueError from inside a method) keeps its traceback.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import struct
import subprocess
import sys
import time
import warnings
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from maskscope.cli.main import main
from maskscope.core.explanation import saved_record
from maskscope.core.model.view import ClassifierView
from maskscope.data.dataset import Sample
from maskscope.data.images import ImageLoadError, load_image
from maskscope.errors import MaskscopeError
from maskscope.models import TinyCNN

#: a one-pass method, on torch (no export of the model to an engine first)
QUICK = ["--method", "gradient", "--engine", "torch", "--quiet"]


@pytest.fixture()
def tiny_model(tmp_path) -> Path:
    """A 1000-class TorchScript model (untrained) that runs in milliseconds."""
    torch.manual_seed(0)
    path = tmp_path / "tiny.pt"
    torch.jit.save(torch.jit.script(TinyCNN(1000, width=4).eval()), str(path))
    return path


@pytest.fixture()
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("first", "second", "third"):
        Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    return folder


def bomb_png(path: Path, side: int = 30000) -> Path:
    """A 60-byte PNG whose header declares side×side RGB pixels (the data is never there)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b""))
    return path


def files_of(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``: its size and modification time."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


@contextmanager
def untouched(folder: Path, own: Path | None = None):
    """Assert that no file under ``folder`` outside ``own`` (the run's output) was made, changed or removed."""
    before = files_of(folder)
    yield
    after = files_of(folder)
    if own is not None:
        before = {k: v for k, v in before.items() if not k.startswith(str(own))}
        after = {k: v for k, v in after.items() if not k.startswith(str(own))}
    assert after == before


def one_line_error(capsys, command: str = "explain") -> str:
    """The error printed on stderr, checked to be one line of ``maskscope COMMAND: error: …``."""
    error = capsys.readouterr().err
    assert "Traceback" not in error
    lines = error.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"maskscope {command}: error: "), error
    return lines[0]


def test_a_huge_seed_is_refused_before_the_model_is_loaded(photos, tmp_path, capsys):
    out = tmp_path / "out"
    with untouched(tmp_path):
        status = main(["explain", str(photos), "--model", str(tmp_path / "missing.pt"), "--out", str(out),
                       "--seed", str(10**30), *QUICK])  # fmt: skip
    assert status == 2
    assert "--seed must be between 0 and 4294967295" in one_line_error(capsys)


def test_an_unknown_layer_is_named_with_close_names(photos, tiny_model, tmp_path, capsys):
    out = tmp_path / "out"
    with untouched(tmp_path, out):
        status = main(["explain", str(photos), "--model", str(tiny_model), "--out", str(out), "--method", "gradcam",
                       "--param", "layer=featurs", "--quiet"])  # fmt: skip
    assert status == 2
    error = one_line_error(capsys)
    assert "no layer 'featurs'" in error and "did you mean features" in error
    assert not out.exists()  # refused before anything was written


@pytest.mark.parametrize(
    "device, message",
    [("banana", "device 'banana' is not a device"), ("cuda:7", "device 'cuda:7': ")],
)
def test_a_device_this_machine_lacks_is_refused_before_the_model_is_read(photos, tmp_path, capsys, device, message):
    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    with untouched(tmp_path):
        status = main(["explain", str(photos), "--model", str(tmp_path / "missing.pt"), "--device", device,
                       "--out", str(tmp_path / "out"), *QUICK])  # fmt: skip
    assert status == 2
    assert message in one_line_error(capsys)


def onnx_model(path: Path, input_type: int, side: int | str) -> Path:
    """A small ONNX classifier (mean colour → 10 logits) whose input is ``input_type`` B×3×side×side."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    images = helper.make_tensor_value_info("images", input_type, ["B", 3, side, side])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["B", 10])
    weights = numpy_helper.from_array(np.ones((3, 10), np.float32), "W")
    nodes = [helper.make_node("Cast", ["images"], ["x"], to=TensorProto.FLOAT),
             helper.make_node("ReduceMean", ["x"], ["m"], axes=[2, 3], keepdims=0),
             helper.make_node("MatMul", ["m", "W"], ["logits"])]  # fmt: skip
    graph = helper.make_graph(nodes, "tiny", [images], [logits], [weights])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


@pytest.mark.parametrize(
    "kind, side, message",
    [(7, 224, "input 'images' is int64; maskscope feeds float32"), (1, 64, "takes 64×64 images but its view crops 224×224")],
    ids=["int64", "fixed-64"],
)
def test_an_onnx_model_with_another_input_is_refused_when_opened(photos, tmp_path, capsys, kind, side, message):
    model = onnx_model(tmp_path / "model.onnx", kind, side)
    out = tmp_path / "out"
    with untouched(tmp_path, out):
        status = main(["explain", str(photos), "--model", str(model), "--method", "occlusion", "--out", str(out), "--quiet"])
    assert status == 2
    assert message in one_line_error(capsys)


def test_an_onnx_model_that_fits_the_view_is_accepted(tmp_path):
    from maskscope.core.model.onnx_models import load_onnx_classifier

    classifier = load_onnx_classifier(onnx_model(tmp_path / "model.onnx", 1, "H"))
    assert classifier.probabilities(torch.rand(2, 3, 224, 224)).shape == (2, 10)


def test_out_naming_a_file_is_refused_before_anything_is_computed(photos, tmp_path, capsys):
    taken = tmp_path / "notes.txt"
    taken.write_text("mine")
    with untouched(tmp_path):
        status = main(["explain", str(photos), "--model", str(tmp_path / "missing.pt"), "--out", str(taken), *QUICK])
    assert status == 2
    assert "--out" in one_line_error(capsys) and taken.read_text() == "mine"


def read_only_folder(tmp_path: Path) -> Path:
    """A folder this process cannot write to: a chmod-ed one, or /proc/self where root writes anywhere."""
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):  # root
        folder.chmod(0o755)
        if not Path("/proc/self").is_dir() or os.access("/proc/self", os.W_OK):
            pytest.skip("no read-only folder available to this user")
        return Path("/proc/self")
    return folder


def test_a_read_only_output_folder_is_refused_before_the_model_is_loaded(photos, tmp_path, capsys):
    folder = read_only_folder(tmp_path)
    try:
        with untouched(tmp_path):
            for out, message in ((folder, "the folder is not writable"), (folder / "sub", f"cannot make the folder in {folder}")):
                status = main(["explain", str(photos), "--model", str(tmp_path / "missing.pt"), "--out", str(out),
                               *QUICK])  # fmt: skip
                assert status == 2
                assert f"--out {out}: {message}" in one_line_error(capsys)
    finally:
        if folder.is_relative_to(tmp_path):
            folder.chmod(0o755)


def test_a_full_disk_ends_the_run_in_one_line_and_keeps_what_was_written(photos, tiny_model, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    real_save = np.save
    saves = []

    def fill_up(path, array, *args, **kwargs):
        saves.append(path)
        if Path(path).name.startswith("second"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(path, array, *args, **kwargs)

    monkeypatch.setattr(np, "save", fill_up)
    command = ["explain", str(photos), "--model", str(tiny_model), "--out", str(out), "--images-per-batch", "1",
               "--workers", "1", *QUICK]  # the full disk is this process's
    with untouched(tmp_path, out):
        status = main(command)
    assert status == 1
    error = one_line_error(capsys)
    assert "No space left on device" in error and "second.npy" in error and "rerun the same command" in error
    assert saved_record(out, "first") is not None and saved_record(out, "second") is None
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]  # no half-written file left behind
    monkeypatch.setattr(np, "save", real_save)
    assert main(command) == 0
    assert "1 photo(s) already explained" in capsys.readouterr().err
    assert all(saved_record(out, name) is not None for name in ("first", "second", "third"))


def test_a_zero_std_is_refused_before_the_classifier_is_loaded(tmp_path, capsys):
    with untouched(tmp_path):
        status = main(["train-explainer", "--classifier", str(tmp_path / "missing.pt"), "--std", "0,0,0",
                       "--data", "synthetic-shapes", "--out", str(tmp_path / "run"), "--quiet"])  # fmt: skip
    assert status == 2
    assert "--std needs three positive numbers" in one_line_error(capsys, "train-explainer")


def test_a_decompression_bomb_is_one_failed_photo(photos, tiny_model, tmp_path, capsys):
    bomb_png(photos / "bomb.png")
    out = tmp_path / "out"
    with untouched(tmp_path, out):
        status = main(["explain", str(photos), "--model", str(tiny_model), "--out", str(out), *QUICK])
    assert status == 1
    error = capsys.readouterr().err
    assert "Traceback" not in error
    assert [line for line in error.splitlines() if line.startswith("error:")] == [
        f"error: {photos / 'bomb.png'}: Image size (900000000 pixels) exceeds limit of 178956970 pixels: "
        "refused as a possible decompression bomb; shrink the photo"
    ]
    assert all(saved_record(out, name) is not None for name in ("first", "second", "third"))
    with pytest.raises(ImageLoadError, match="decompression bomb"):
        load_image(photos / "bomb.png")


def test_pils_limit_is_the_one_in_force(tmp_path, monkeypatch):
    photo = tmp_path / "photo.png"
    Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(photo)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 10 000 pixels: over twice the limit
    with pytest.raises(ImageLoadError, match="decompression bomb"):
        load_image(photo)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 6000)  # over the warning's limit only: decoded, reduced, quietly
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_image(photo, min_side=20).shape == (3, 20, 20)


@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_large_photos_are_decoded_reduced_and_give_the_same_view(tmp_path, suffix):
    y, x = np.mgrid[0:1200, 0:1600]
    wave = np.sin(x / 90)[..., None] * np.cos(y / 70)[..., None] * np.array([1.0, 0.5, -0.7])
    path = tmp_path / f"large.{suffix}"
    Image.fromarray((127.5 + 120 * wave).astype(np.uint8)).save(path, quality=95)  # a 1200×1600 photo
    view = ClassifierView(resize=256, crop=224)
    reduced = load_image(path, min_side=view.decode_side)
    assert reduced.shape == (3, 600, 800)  # halved while decoding: the short side stays ≥ 512
    full = load_image(path)
    assert (view(reduced) - view(full)).abs().max() < 2 / 255
    photo, size = Sample("large", path, []).load(view.decode_side)
    assert torch.equal(photo, reduced) and size == (1200, 1600)  # the annotations' size is the full photo's


def test_a_bug_inside_a_method_keeps_its_traceback(photos, tiny_model, tmp_path, monkeypatch):
    from maskscope.methods.gradient import Gradient

    def broken(*args, **kwargs):
        raise ValueError("an internal bug")

    monkeypatch.setattr(Gradient, "_explain", broken)
    with pytest.raises(ValueError, match="an internal bug") as caught:
        main(["explain", str(photos), "--model", str(tiny_model), "--out", str(tmp_path / "out"), *QUICK])
    assert not isinstance(caught.value, MaskscopeError)


def test_an_interrupted_save_is_redone_and_complete_ones_are_skipped(photos, tiny_model, tmp_path, capsys):
    out = tmp_path / "out"
    command = ["explain", str(photos), "--model", str(tiny_model), "--out", str(out), *QUICK]
    assert main(command) == 0
    capsys.readouterr()
    record = json.loads((out / "second.json").read_text())
    (out / "second.json").write_text(json.dumps({"name": "second", "method": "gradient", "pending": True}))
    (out / "second.png").unlink()  # killed after the arrays, before the overlay and the record
    (out / "third.png").unlink()  # a complete record whose overlay went missing
    assert main(command) == 0
    printed = capsys.readouterr()
    assert "1 photo(s) already explained" in printed.err
    assert sorted(line.split(":")[0] for line in printed.out.splitlines()) == ["second", "third"]
    assert json.loads((out / "second.json").read_text())["name"] == record["name"]
    assert not list(out.glob("*_gradient*"))  # redone under its own name, not beside the leftovers
    assert main([*command, "--overwrite"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert main([*command, "--seed", "1"]) == 2  # complete, but made with another seed
    assert "seed: 0 → 1" in one_line_error(capsys)


def test_explain_resumes_after_kill_9(tiny_model, tmp_path, capsys):
    folder = tmp_path / "many"
    folder.mkdir()
    rng = np.random.default_rng(1)
    names = [f"photo{i}" for i in range(5)]
    for name in names:
        Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    out = tmp_path / "out"
    command = ["explain", str(folder), "--model", str(tiny_model), "--out", str(out), "--images-per-batch", "1", *QUICK]
    process = subprocess.Popen([sys.executable, "-m", "maskscope", *command], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        while process.poll() is None and saved_record(out, "photo0") is None:
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    finished = [name for name in names if saved_record(out, name) is not None]
    assert "photo0" in finished
    assert main(command) == 0  # the same command again
    rerun = capsys.readouterr()
    assert f"{len(finished)} photo(s) already explained" in rerun.err
    assert sorted(line.split(":")[0] for line in rerun.out.splitlines()) == sorted(set(names) - set(finished))
    assert all(saved_record(out, name) is not None for name in names)
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
