"""Progress lines when stderr is not a terminal: few, plain, and none for inner loops."""

from __future__ import annotations

import io

from maskscope.core.progress import PlainProgress, progress_bar


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
