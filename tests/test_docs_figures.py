"""The docs build draws each method's figure with :data:`docs.hooks.FIGURE_SETTINGS`: they must stay valid."""

import importlib.util
from pathlib import Path

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
