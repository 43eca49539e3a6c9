"""MkDocs hooks: pages and figures made from the code and the committed results at build time.

Before the build, ``docs/generated/`` receives
- ``cli.md``: every ``maskscope`` command's ``--help``, from the argparse parsers;
- ``results.md`` (and its images): the summary tables of the runs under ``benchmarks/results/``
  and the JSON every benchmark script wrote there;
- ``figures/<method>.png``: each method's map of the bundled cat photo with the default model,
  at settings where its goal is met and that keep the build short (:data:`FIGURE_SETTINGS`).
  A figure is cached by its inputs: ``figures/<method>.json`` holds the hash of the method's
  name and settings, the source of the method's file and of the plotting code, and the photo
  (:func:`figure_key`), with what the run measured; a build whose inputs did not change runs
  no model. ``MASKSCOPE_DOCS_FIGURES=refresh`` redraws them all. A figure whose optimisation
  missed its goal is a warning (an error under ``mkdocs build --strict``).
On each page, ``<!-- defaults: NAME -->`` becomes the table of method NAME's default parameters.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ROOT / "docs" / "generated"
RESULTS = ROOT / "benchmarks" / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

LOG = logging.getLogger("mkdocs.hooks.figures")
#: the modules whose code draws every figure (a change to one redraws them all)
PLOTTING = ("maskscope/plotting/figures.py", "maskscope/plotting/overlay.py", "maskscope/plotting/scaling.py")

#: method → the settings its docs figure is made with: its goal met on the cat photo, and cheap
#: (the whole build stays short); the optimisation methods' pages say how they differ from the defaults
FIGURE_SETTINGS: dict[str, dict[str, Any]] = {
    "mp": {"steps": 100}, "mp-g": {"steps": 20, "resolution": 14},
    "fgvis": {"game": "generation", "l1_weights": (1e-10,), "steps": 500},  # the search's smallest λ, one round
    "igos": {"noise": 0.0, "tv_weight": 0.2}, "igos++": {"steps": 8, "points": 8},
    "ep": {"areas": (0.3,), "steps": 400, "area_growth": 1.0035 ** (800 / 400)},  # λ's schedule of 800 steps, in 400
    "rise": {"samples": 2000}, "occlusion": {"stride": 16}, "sliding_patch": {"stride": 14},
    "lime": {"samples": 250}, "integrated_gradients": {"points": 16}, "gradient": {}, "gradcam": {},
    "scorecam": {}, "hipe": {"levels": 3},
    "centre": {}, "random": {}, "whole": {},
}


#: torch threads the figures are drawn with on any machine: the optimisations amplify float
#: rounding, which follows the thread count, so a figure (and whether it meets its goal) would
#: otherwise depend on the machine that builds the docs
FIGURE_THREADS = 2

#: methods whose figure shows a missed goal knowingly, and why (said in the caption; no build warning);
#: none at present: every optimisation method's figure meets its goal on the cat photo
GOAL_MISSED: dict[str, str] = {}


def on_pre_build(config, **_) -> None:
    GENERATED.mkdir(exist_ok=True)
    _write(GENERATED / "cli.md", cli_reference())
    _write(GENERATED / "results.md", results_page())
    method_figures()


def on_page_markdown(markdown: str, page, config, files, **_) -> str:
    markdown = re.sub(r"<!-- figure: ([\w+-]+) -->", lambda match: figure_markdown(match.group(1)), markdown)
    return re.sub(r"<!-- defaults: ([\w+-]+) -->", lambda match: defaults_table(match.group(1)), markdown)


def figure_markdown(name: str) -> str:
    """Method ``name``'s figure (on a page under ``methods/``) and a caption saying how it was made:
    its settings, the score before → after (and, for a keeping game, the share of the image kept),
    whether the goal was met, and the seconds it took."""
    slug = _slug(name)
    record = json.loads((GENERATED / "figures" / f"{slug}.json").read_text())
    settings = ", ".join(f"`{key}={literal(value)}`" for key, value in FIGURE_SETTINGS[name].items())
    after = "" if record["score_after"] is None else f" → {record['score_after']:.2f}"
    if record.get("kept_area") is not None and _keeps(name):  # a keeping game's goal depends on the area too
        after += f" with {100 * record['kept_area']:.0f} % of the image kept"
    goal = {True: ", its goal met", False: ", its goal NOT met", None: ""}[record["goal_met"]]
    if record["goal_met"] is False and name in GOAL_MISSED:
        goal += f" ({GOAL_MISSED[name]})"
    return (f"![{name} on the bundled cat photo](../generated/figures/{slug}.png)\n\n"
            f"Made by the docs build (`docs/hooks.py`) with the default model and "
            f"{settings + ' (the defaults otherwise)' if settings else 'the defaults'}: "
            f"p {record['score_before']:.2f}{after}{goal}; {record['seconds']:.0f} s on the machine that built "
            "this site. The colour bar says how the map was scaled.")


def defaults_table(name: str) -> str:
    from maskscope.methods import METHODS

    method = METHODS[name]
    lines = [f"`{method.__name__}` (`--method {name}`) defaults:", "", "| parameter | default |", "|---|---|"]
    lines += [f"| `{key}` | `{literal(value)}` |" for key, value in method.defaults().items()]
    return "\n".join(lines)


def literal(value) -> str:
    """``repr(value)`` with floats at 6 significant digits: ``1e-05``, not ``9.999999999999999e-06``."""
    if isinstance(value, float):
        return repr(float(f"{value:.6g}"))
    if isinstance(value, tuple):
        return f"({', '.join(literal(item) for item in value)}{',' if len(value) == 1 else ''})"
    if isinstance(value, list):
        return f"[{', '.join(literal(item) for item in value)}]"
    return repr(value)


def cli_reference() -> str:
    """Every command's help text, sub-commands included, in the order of the parser."""
    import argparse

    from maskscope.cli.main import build_parser

    os.environ["COLUMNS"] = "100"
    parser, _ = build_parser()
    parts = ["# Command-line reference", "",
             "Generated from the argparse parsers by the docs build (`docs/hooks.py`): each block is the "
             "command's `--help`.", ""]

    def walk(current: argparse.ArgumentParser, name: str, depth: int) -> None:
        parts.extend([f"{'#' * depth} `{name}`", "", "```text", current.format_help().rstrip(), "```", ""])
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child, subparser in action.choices.items():
                    walk(subparser, f"{name} {child}", min(depth + 1, 4))

    walk(parser, "maskscope", 2)
    return "\n".join(parts)


def results_page() -> str:
    """The committed runs' summary tables and the benchmark scripts' tables and JSON, as one page.

    ``benchmarks/results/`` holds a folder for each group of scripts (``agreement/``, ``speed/``,
    ``investigations/``) and ``runs/`` for runs of the command line; a script's variants sit in a
    folder named after it. A run is a folder with a ``summary.md``; every other ``.md`` and
    ``.json`` is shown under its path there."""
    parts = ["# Results from `benchmarks/results/`", "",
             "Generated by the docs build from the files committed under `benchmarks/results/` "
             "(`benchmarks/README.md` says which script made each); the "
             "[measurements](../results/measurements.md) page says how each was made and what it shows.", ""]
    images = GENERATED / "results"
    images.mkdir(exist_ok=True)
    runs = sorted(summary.parent for summary in RESULTS.rglob("summary.md"))
    for run in runs:
        config = json.loads((run / "config.json").read_text()) if (run / "config.json").is_file() else {}
        parts += [f"## Run `{run.relative_to(RESULTS).as_posix()}`", ""]
        if config:
            keys = ("dataset", "methods", "metrics", "limit", "params", "model_name", "device", "versions", "started")
            parts += ["| setting | value |", "|---|---|"]
            parts += [f"| {key} | `{json.dumps(config[key])}` |" for key in keys if key in config]
            parts.append("")
        parts += [(run / "summary.md").read_text(), ""]
        if (run / "curves.png").is_file():
            shutil.copy(run / "curves.png", images / f"{run.name}-curves.png")
            parts += [f"![mean deletion and insertion curves of {run.name}](results/{run.name}-curves.png)", ""]
    others = [path for path in sorted(RESULTS.rglob("*"))
              if path.is_file() and not any(run in path.parents for run in runs)]
    for path in (path for path in others if path.suffix == ".md"):
        parts += [f"## `{path.relative_to(RESULTS).as_posix()}`", "", path.read_text(), ""]
    parts += ["## Benchmark scripts' JSON", ""]
    for path in (path for path in others if path.suffix == ".json"):
        record = json.loads(path.read_text())
        scalars = _scalars(record)
        parts += [f"### `{path.relative_to(RESULTS).as_posix()}`", "", "| key | value |", "|---|---|"]
        parts += [f"| `{key}` | {value} |" for key, value in scalars[:40]]
        if len(scalars) > 40:
            parts.append(f"| … | {len(scalars) - 40} more values in the file |")
        parts.append("")
    return "\n".join(parts)


def method_figures() -> None:
    """``figures/<method>.png``: each method's map of the bundled photo, drawn when its inputs
    changed (see :func:`figure_key`), or always with ``MASKSCOPE_DOCS_FIGURES=refresh``."""
    folder = GENERATED / "figures"
    folder.mkdir(exist_ok=True)
    from skimage import data

    photo_hash = hashlib.sha256(data.chelsea().tobytes()).hexdigest()
    refresh = os.environ.get("MASKSCOPE_DOCS_FIGURES") == "refresh"
    keys = {name: figure_key(name, photo_hash) for name in FIGURE_SETTINGS}
    todo = [name for name in FIGURE_SETTINGS if refresh or _cached(folder, name) != keys[name]]
    for name in FIGURE_SETTINGS:
        if name not in todo:
            _check_goal(name, json.loads((folder / f"{_slug(name)}.json").read_text()))
    if not todo:
        return
    import torch

    from maskscope import Classifier, load_image
    from maskscope.methods import get_method
    from maskscope.plotting.overlay import new_figure

    classifier = Classifier.default()
    photo = load_image(data.chelsea())
    torch.set_num_threads(FIGURE_THREADS)
    for name in todo:
        torch.manual_seed(0)
        start = time.perf_counter()
        explanation = get_method(name, **FIGURE_SETTINGS[name])(classifier, classifier.view(photo)[None], seed=0)
        seconds = time.perf_counter() - start
        figure = explanation.plot(0, photo, classifier.view, ax=new_figure(4.6, 3.8).subplots())
        figure.tight_layout()
        figure.savefig(folder / f"{_slug(name)}.png", dpi=80)
        goal = None if explanation.goal_met is None else bool(explanation.goal_met[0])
        before = explanation.scores_before
        assert before is not None  # explain() always records the scores before
        record = {"key": keys[name], "settings": repr(FIGURE_SETTINGS[name]), "seconds": round(seconds, 1),
                  "goal_met": goal, "score_before": float(before[0]),
                  "score_after": None if explanation.scores_after is None else float(explanation.scores_after[0]),
                  "kept_area": None if explanation.kept_area is None else float(explanation.kept_area[0])}
        (folder / f"{_slug(name)}.json").write_text(json.dumps(record, indent=2))
        _check_goal(name, record)


def figure_key(name: str, photo_hash: str) -> str:
    """The hash of what method ``name``'s figure is made from: its settings, the source of the
    method's file and of the plotting code, and the photo's pixels."""
    from maskscope.methods import METHODS

    digest = hashlib.sha256(f"{name}\n{FIGURE_SETTINGS[name]!r}\n{photo_hash}\n".encode())
    for path in (Path(inspect.getfile(METHODS[name])), *(ROOT / module for module in PLOTTING)):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _cached(folder: Path, name: str) -> str | None:
    """The key the cached figure of ``name`` was drawn with, ``None`` if there is none."""
    record, picture = folder / f"{_slug(name)}.json", folder / f"{_slug(name)}.png"
    if not (record.is_file() and picture.is_file()):
        return None
    try:
        return json.loads(record.read_text()).get("key")
    except ValueError:
        return None


def _check_goal(name: str, record: dict) -> None:
    if record.get("goal_met") is False and name not in GOAL_MISSED:
        LOG.warning("docs figure of %s: goal not met at %s (p %.3f -> %.3f); its map is not meaningful",
                    name, record["settings"], record["score_before"], record["score_after"])


def _keeps(name: str) -> bool:
    """Whether method ``name`` at its figure's settings plays a keeping game (preservation, generation)."""
    from maskscope.core.optimisation.games import get_game
    from maskscope.methods import get_method

    game = get_method(name, **FIGURE_SETTINGS[name]).game
    return game is not None and not get_game(game).removes


def _slug(name: str) -> str:
    return name.replace("+", "p")


def _scalars(value, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [pair for key, item in value.items() for pair in _scalars(item, f"{prefix}.{key}" if prefix else str(key))]
    if isinstance(value, list):
        if all(not isinstance(item, (dict, list)) for item in value):
            shown = ", ".join(map(str, value[:8])) + (" …" if len(value) > 8 else "")
            return [(prefix, f"[{shown}]".replace("|", "\\|"))]
        return [pair for index, item in enumerate(value[:5]) for pair in _scalars(item, f"{prefix}[{index}]")]
    return [(prefix, str(value).replace("|", "\\|"))]


def _write(path: Path, text: str) -> None:
    if not path.is_file() or path.read_text() != text:  # unchanged files do not retrigger `mkdocs serve`
        path.write_text(text)
