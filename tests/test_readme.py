"""The README's Python quick start runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_the_readme_quick_start_runs_as_written(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) == 1, "the README has one Python quick start"
    assert len(blocks[0].strip().splitlines()) <= 15
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0], str(README), "exec"), {"__name__": "__readme__"})
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["mp", "rise", "gradcam"]
    assert len({line.split(" ", 1)[1].rsplit(" ", 1)[0] for line in lines}) == 1  # one class, the same for all
    assert (tmp_path / "maps.png").stat().st_size > 10_000
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {"image_0.npy", "image_0.json", "image_0.png"}
