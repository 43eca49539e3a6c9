"""The README's Python quick start runs as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from maskscope.bench.scoring import check_metric
from maskscope.cli.main import build_parser
from maskscope.methods.registry import resolve_method

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_commands() -> list[list[str]]:
    """The ``maskscope`` command lines of the README's shell blocks, continuation lines joined,
    comments and the elided examples (``...``) left out."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("#", 1)[0].split("&&"):
                words = shlex.split(part)
                if words[:1] == ["maskscope"] and "..." not in words:
                    commands.append(words[1:])
    return commands


def test_the_readme_commands_parse_and_name_real_methods_and_metrics():
    commands = readme_commands()
    assert {words[0] for words in commands} >= {"explain", "bench", "report"}
    parser, _ = build_parser()
    for words in commands:
        args = parser.parse_args(words)  # an unknown option or a bad value exits
        for name in (getattr(args, "method", None) or "").split(",") + (getattr(args, "methods", None) or "").split(","):
            if name:
                resolve_method(name)
        for spec in (getattr(args, "metrics", None) or "").split(","):
            if spec:
                check_metric(spec)


@pytest.mark.slow
def test_the_readme_quick_start_runs_as_written(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) == 1, "the README has one Python quick start"
    assert len(blocks[0].strip().splitlines()) <= 15
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__readme__"}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["mp", "rise", "gradcam"]
    assert len({line.split(" ", 1)[1].rsplit(" ", 1)[0] for line in lines}) == 1  # one class, the same for all
    mp = namespace["explanations"][0]
    assert bool(mp.goal_met[0]), "the quick start's MP mask must remove the class (else its map is not evidence)"
    assert (tmp_path / "maps.png").stat().st_size > 10_000
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {"image_0.npy", "image_0.json", "image_0.png"}
