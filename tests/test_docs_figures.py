"""The docs build draws each method's figure with :data:`docs.hooks.FIGURE_SETTINGS`: they must stay
valid, a rebuild with nothing changed must run no model, and the defaults tables read as written."""

import hashlib
import importlib.util
import json
from pathlib import Path

import pytest
from skimage import data

from maskscope.methods.registry import METHODS, get_method

HOOKS = Path(__file__).resolve().parents[1] / "docs" / "hooks.py"


def load_hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", HOOKS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_docs_figure_setting_names_real_parameters():
    settings = load_hooks().FIGURE_SETTINGS
    for name, params in settings.items():
        get_method(name, **params)  # raises ParameterError on a renamed or unknown parameter
    # every method has a figure but the learned explainer, which must be trained first
    assert set(METHODS) - set(settings) == {"explainer"}
    assert set(settings) <= set(METHODS)
    assert set(load_hooks().GOAL_MISSED) <= set(settings)  # a figure allowed to miss its goal, and why


def test_docs_defaults_tables_show_floats_as_written():
    hooks = load_hooks()
    assert hooks.literal(9.999999999999999e-06) == "1e-05"
    assert hooks.literal((0.0001, 3.1622776601683795e-05)) == "(0.0001, 3.16228e-05)"
    assert hooks.literal((0.1,)) == "(0.1,)" and hooks.literal("blur:10") == "'blur:10'"
    assert "9.999999999999999e-06" not in hooks.defaults_table("fgvis")


def test_docs_figures_are_cached_by_their_inputs_and_a_rebuild_runs_no_model(tmp_path, monkeypatch):
    hooks = load_hooks()
    key = hooks.figure_key("mp", "photo-a")
    assert key == hooks.figure_key("mp", "photo-a")
    assert key != hooks.figure_key("mp", "photo-b")  # another photo
    monkeypatch.setitem(hooks.FIGURE_SETTINGS, "mp", {"steps": 61})
    assert key != hooks.figure_key("mp", "photo-a")  # other settings
    # every figure cached under its current key: the build draws nothing (no model is loaded)
    monkeypatch.setattr(hooks, "GENERATED", tmp_path)
    photo = hashlib.sha256(data.chelsea().tobytes()).hexdigest()
    folder = tmp_path / "figures"
    folder.mkdir()
    for name in hooks.FIGURE_SETTINGS:
        (folder / f"{hooks._slug(name)}.png").write_bytes(b"png")
        record = {"key": hooks.figure_key(name, photo), "settings": "{}", "seconds": 1.0, "goal_met": True,
                  "score_before": 0.9, "score_after": 0.1}
        (folder / f"{hooks._slug(name)}.json").write_text(json.dumps(record))
    import maskscope

    def no_model(*_, **__):
        raise AssertionError("a rebuild with nothing changed loaded the model")

    monkeypatch.setattr(maskscope.Classifier, "default", no_model)
    hooks.method_figures()
    markdown = hooks.figure_markdown("mp")
    assert "`steps=61` (the defaults otherwise)" in markdown and "p 0.90 → 0.10, its goal met" in markdown
    # a changed input (here the settings' cache entry) is drawn again
    (folder / "mp.json").write_text(json.dumps({**record, "key": "stale"}))
    with pytest.raises(AssertionError, match="loaded the model"):
        hooks.method_figures()
