"""Progress lines when stderr is not a terminal: few, plain, none for inner loops, and from every long method."""

from __future__ import annotations

import io
import time

import pytest

from maskscope.core import progress
from maskscope.core.progress import PlainProgress, progress_bar
from maskscope.methods.registry import get_method


def test_plain_progress_prints_periodic_lines_without_carriage_returns():
    stream = io.StringIO()
    bar = PlainProgress(total=5, desc="bench", unit="map", interval=0.0, stream=stream)
    for _ in range(5):
        bar.update(1)
    bar.set_postfix(loss="0.5")
    bar.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines[0].startswith("bench: 1/5 map (20%)")
    assert lines[-1].startswith("bench: 5/5 map (100%)") and lines[-1].endswith("loss=0.5")
    assert len(lines) == 6  # five updates and the closing line


def test_plain_progress_rate_limits_and_inner_loops_stay_silent():
    stream = io.StringIO()
    outer = PlainProgress(range(1000), desc="outer", interval=3600.0, stream=stream)
    inner = PlainProgress(range(1000), desc="inner", leave=False, interval=0.0, stream=stream)
    assert sum(outer) == sum(inner) == 499500
    assert stream.getvalue().splitlines() == [stream.getvalue().splitlines()[0]]
    assert stream.getvalue().startswith("outer: 1000/1000 it (100%)")


def test_a_kept_alive_reporter_prints_while_a_long_step_runs():
    stream = io.StringIO()
    bar = PlainProgress(total=2, desc="bench", unit="map", interval=0.05, stream=stream)
    with progress.kept_alive(bar, interval=0.05):
        time.sleep(0.4)  # one step of many minutes, in small
        bar.update(1)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len([line for line in lines if line.startswith("bench: 0/2 map")]) >= 3  # the heartbeat, step or not
    assert lines[-1].startswith("bench: 1/2 map")
    silent = progress_bar(total=2, disable=True)
    with progress.kept_alive(silent, interval=0.01):
        time.sleep(0.05)  # a disabled reporter stays silent


def test_bench_reports_while_a_batch_runs(tmp_path, monkeypatch, capsys):
    """bench's one batch of slow maps still prints a line every interval (here 0.05 s)."""
    import torch

    from maskscope.cli.main import main
    from tests.test_bench import PooledLinear, _imagenet_style_folder

    monkeypatch.setattr(progress, "INTERVAL", 0.05)
    torch.manual_seed(0)
    torch.jit.script(PooledLinear(7).eval()).save(str(tmp_path / "tiny.pt"))
    _imagenet_style_folder(tmp_path / "data", 2)
    assert main(["bench", "--data", str(tmp_path / "data"), "--model", str(tmp_path / "tiny.pt"), "--methods",
                 "rise", "--param", "rise.samples=4000", "--metrics", "deletion:rise-batch", "--out",
                 str(tmp_path / "run"), "--workers", "1"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("bench: 0/2 map")]
    assert len(lines) >= 2  # before the batch's one update, the heartbeat


def test_progress_bar_is_plain_when_stderr_is_redirected(capsys):
    bar = progress_bar(total=3, desc="job")  # pytest captures stderr: not a terminal
    assert isinstance(bar, PlainProgress)
    bar.update(3)
    bar.close()
    assert capsys.readouterr().err.startswith("job: 3/3 it (100%)")
    assert list(progress_bar(range(4), disable=True)) == [0, 1, 2, 3]
    assert capsys.readouterr().err == ""


def test_plain_progress_prints_its_last_line_once():
    stream = io.StringIO()
    bar = PlainProgress(total=2, desc="explain (fgvis)", unit="image", interval=0.0, stream=stream)
    bar.update(2)
    bar.close()
    assert stream.getvalue().splitlines() == [stream.getvalue().splitlines()[0]]
    assert stream.getvalue().startswith("explain (fgvis): 2/2 image (100%)")


@pytest.mark.parametrize("interval", [0.0, 3600.0])  # a line at every update; only the closing line
def test_an_explain_run_prints_its_final_line_once(interval, tmp_path, monkeypatch, capsys):
    """``explain (fgvis): 1/1 image (100%) … s`` was printed twice at the end of a redirected run."""
    import torch

    from maskscope.cli.main import main
    from maskscope.models import TinyCNN

    monkeypatch.setattr(progress, "INTERVAL", interval)
    torch.manual_seed(0)
    torch.jit.save(torch.jit.script(TinyCNN(1000, width=4).eval()), str(tmp_path / "tiny.pt"))
    params = ["--param", "steps=2", "--param", "l1_weights=(0.01,)", "--param", "defense=False"]
    assert main(["explain", "--model", str(tmp_path / "tiny.pt"), "--method", "fgvis", *params,
                 "--out", str(tmp_path / "out")]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert len([line for line in lines if line.startswith("explain (fgvis): 1/1 image (100%)")]) == 1, lines
    assert not [line for line in lines if line.startswith("explain (fgvis): 0/1")] or interval == 0.0


# every long optimisation method, small enough for the tiny CNN: (name, parameters, steps it runs in all)
LONG_METHODS = [
    ("mp", dict(steps=6, resolution=8), 6),
    ("mp-g", dict(steps=6, resolution=8), 6),
    ("fgvis", dict(l1_weights=(1e-4, 1e-2, 1.0), steps=4, stop_early=False), 2 * 4),  # bisection: 2 rounds of 4
    ("igos", dict(steps=4, resolution=8), 4),
    ("igos++", dict(steps=4, resolution=8), 4),
    ("ep", dict(areas=(0.1, 0.3), resolution=8, steps=5, batch_size=1), 2 * 5),  # two chunks of one row each
]


@pytest.mark.parametrize("name, params, total", LONG_METHODS, ids=[row[0] for row in LONG_METHODS])
def test_long_methods_print_progress_lines_while_they_run_when_redirected(name, params, total, shapes_task, capsys,
                                                                          monkeypatch):
    monkeypatch.setattr(progress, "INTERVAL", 0.0)  # a line at every step
    images, classes, _ = shapes_task.correctly_classified(1)
    get_method(name, **params, progress=True)(shapes_task.classifier, images, target=classes.tolist())
    lines = capsys.readouterr().err.splitlines()
    counts = [int(line.split(": ", 1)[1].split("/")[0]) for line in lines]
    assert all("\r" not in line and f"/{total} step" in line for line in lines), lines
    assert counts[0] < total and counts[-1] == total  # lines while it runs, and one at its end
    assert counts == sorted(set(counts))  # each line printed once


def test_long_methods_are_silent_without_progress(shapes_task, capsys, monkeypatch):
    monkeypatch.setattr(progress, "INTERVAL", 0.0)
    images, classes, _ = shapes_task.correctly_classified(1)
    get_method("ep", areas=(0.1,), resolution=8, steps=3)(shapes_task.classifier, images, target=classes.tolist())
    assert capsys.readouterr().err == ""
