"""One vocabulary: every method's parameters and results follow docs/vocabulary.md."""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

import pytest
import torch

import maskscope
from maskscope.core.explanation import ARRAY_FIELDS, NUMBER_FIELDS, Explanation
from maskscope.core.model.classifier import DEFAULT_SCORE
from maskscope.methods import get_method  # noqa: F401  (importing the package registers every method)
from maskscope.methods.parameters import method_signature
from maskscope.methods.registry import METHODS as REGISTRY

VOCABULARY = Path(__file__).resolve().parents[1] / "docs" / "vocabulary.md"
#: names the vocabulary retired: a method that takes one again speaks the old language
RETIRED = {"cells", "masks", "sizes", "patch", "lambdas", "mask_step", "l1", "tv", "targets"}


def documented(section: str) -> set[str]:
    """The backticked names in the first column of the table under ``## section``."""
    text = VOCABULARY.read_text().split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`(\w+)`", row.split("|")[1])}


def parameters(cls) -> list[str]:
    """Every parameter the method takes, a variant's inherited ones included."""
    return list(method_signature(cls).parameters)


def test_no_method_takes_a_retired_name():
    offenders = {cls.name: sorted(RETIRED & set(parameters(cls))) for cls in REGISTRY.values()}
    assert not {name: found for name, found in offenders.items() if found}


def test_every_parameter_two_methods_share_is_in_the_table():
    counts = Counter(name for cls in set(REGISTRY.values()) for name in parameters(cls))
    shared = {name for name, count in counts.items() if count >= 2}
    assert shared - documented("Parameters") == set()


def test_score_has_one_default_and_the_read_out_methods_take_it():
    takes_score = {cls.name for cls in REGISTRY.values() if "score" in parameters(cls)}
    assert takes_score >= {"gradient", "integrated_gradients", "gradcam", "occlusion", "sliding_patch", "rise", "lime"}
    for cls in set(REGISTRY.values()):
        if "score" in parameters(cls):
            assert cls.defaults()["score"] == DEFAULT_SCORE, cls.name


def test_the_target_matrix_has_one_name():
    # ``targets`` are class indices per image; the B×C multi-hot matrix built from them is ``target_weights``
    package = Path(maskscope.__file__).parent
    offenders = [
        f"{path.relative_to(package)}:{number}"
        for folder in ("core", "methods", "metrics")
        for path in sorted((package / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\btargets: torch\.Tensor", line)
    ]
    assert not offenders


def test_every_explanation_field_is_documented():
    assert set(ARRAY_FIELDS) | set(NUMBER_FIELDS) <= documented("Explanation fields")


def filled_explanation(count: int = 3) -> Explanation:
    """An explanation with every declared field filled (LIME-like weights of unequal length)."""
    generator = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.rand(*shape, generator=generator)

    arrays = {name: rand(count, 2, 4, 4) for name in ARRAY_FIELDS}
    arrays["superpixels"] = torch.randint(0, 5, (count, 8, 8), generator=generator)
    arrays["superpixel_weights"] = rand(count, 5)
    numbers = {name: rand(count) for name in NUMBER_FIELDS}
    numbers.update(goal_met=torch.tensor([True, False, True]), decision_changed=torch.tensor([False, True, True]))
    return Explanation(saliency=rand(count, 8, 8), targets=[[0], [1], [2]], method="test", score="logit",
                       names=[f"image_{i}" for i in range(count)], **arrays, **numbers)


def assert_same(loaded: Explanation, original: Explanation) -> None:
    assert loaded.score == original.score
    for name in ("saliency", *ARRAY_FIELDS, *NUMBER_FIELDS):
        want, got = getattr(original, name), getattr(loaded, name)
        assert got is not None, f"{name} was lost"
        assert torch.allclose(got.to(want.dtype), want, equal_nan=True), name


def test_every_field_is_saved_loaded_and_kept_by_indexing(tmp_path):
    explanation = filled_explanation()
    explanation.save(tmp_path)
    assert_same(Explanation.load(tmp_path), explanation)
    one = explanation[1]
    assert len(one) == 1 and one.names == ["image_1"]
    for name in (*ARRAY_FIELDS, *NUMBER_FIELDS):
        assert torch.equal(getattr(one, name), getattr(explanation, name)[1:2]), name


def test_weights_of_unequal_length_load_padded_with_nan(tmp_path):
    explanation = filled_explanation()
    explanation[0].save(tmp_path / "a")
    short = explanation[1]
    short.superpixel_weights = short.superpixel_weights[:, :3]
    short.save(tmp_path / "a")
    loaded = Explanation.load(tmp_path / "a")
    assert loaded.superpixel_weights.shape == (2, 5)
    assert loaded.superpixel_weights[1, 3:].isnan().all() and not loaded.superpixel_weights[0].isnan().any()


@pytest.mark.parametrize("field", ["mask", "attributions"])
def test_a_field_the_method_did_not_fill_stays_none(tmp_path, field):
    explanation = Explanation(saliency=torch.rand(1, 4, 4), targets=[[0]], method="test")
    explanation.save(tmp_path)
    assert getattr(Explanation.load(tmp_path), field) is None
    assert not list(tmp_path.glob(f"*_{field}.npy"))


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    """Every command's parser by its name (``check adversarial`` for a command of a group)."""
    from maskscope.cli.main import build_parser

    def below(parser: argparse.ArgumentParser, prefix: str) -> dict[str, argparse.ArgumentParser]:
        groups = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
        if not groups:
            return {prefix: parser}
        return {name: found for command, sub in groups[0].choices.items()
                for name, found in below(sub, f"{prefix} {command}".strip()).items()}

    return below(build_parser()[0], "")


def visible_options(parser: argparse.ArgumentParser) -> dict[str, str]:
    """The options ``--help`` shows, with their help."""
    return {option: action.help or "" for action in parser._actions if action.help != argparse.SUPPRESS
            for option in action.option_strings}


def test_every_command_names_one_quantity_one_way():
    """docs/vocabulary.md, Command-line options: images per call are ``--images-per-batch``,
    ``--batch-size`` is perturbed images per pass, and a command writes to ``--out``."""
    parsers = command_parsers()
    assert {"explain", "bench", "check adversarial", "study fillers", "train-explainer"} <= set(parsers)
    documented_options = set(re.findall(r"`(--[\w-]+)`", VOCABULARY.read_text().split("## Command-line options\n")[1]
                                        .split("\n## ")[0]))
    for name, parser in parsers.items():
        options = visible_options(parser)
        assert not {"--json", "--score-batch-size"} & set(options), name
        if "--batch-size" in options and name != "train-explainer":
            assert "per forward pass" in options["--batch-size"], name
        if name not in ("methods",):
            assert "--out" in options, f"{name} writes without --out"
    images_per_batch = {name for name, parser in parsers.items() if "--images-per-batch" in visible_options(parser)}
    assert images_per_batch == {"explain", "bench", "evaluate", "check adversarial", "study fillers",
                                "study robustness"}
    assert {"--images-per-batch", "--batch-size", "--out", "--model", "--device"} <= documented_options
