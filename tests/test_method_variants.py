"""A method variant states only what differs from its parent (new parameters, changed defaults,
fixed ones) and still has, checks and reports the parent's whole parameter list."""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import pytest

from maskscope.methods import IGOS, IGOSPlusPlus, MeaningfulPerturbation, MeaningfulPerturbationG
from maskscope.methods.base import Method
from maskscope.methods.parameters import ParameterError, at_least, method_signature


class Parent(Method):
    name = "parent"
    constraints = {"size": at_least(1)}

    def __init__(self, size: int = 4, colour: str = "red", rate: float = 0.5) -> None:
        self.size = size
        self.colour = colour
        self.rate = rate


class Child(Parent):
    name = "child"
    fixed_params: ClassVar[dict[str, Any]] = {"rate": 0.0}

    def __init__(self, *, colour: str = "blue", depth: int = 2, **params: Any) -> None:
        super().__init__(colour=colour, **Child.fixed_params, **params)
        self.depth = depth


def test_a_variant_reports_its_parents_parameters_with_its_changes():
    assert list(inspect.signature(Child.__init__).parameters) == ["self", "colour", "depth", "params"]
    # the parent's order, a changed default in place, the fixed one gone, the new one last
    assert Child.defaults() == {"size": 4, "colour": "blue", "depth": 2}
    child = Child(size=7, depth=3)
    assert child.get_params() == {"size": 7, "colour": "blue", "depth": 3}
    assert child.rate == 0.0 and repr(child) == "Child(size=7, colour='blue', depth=3)"


def test_a_variant_checks_its_parents_parameters():
    with pytest.raises(ParameterError, match="parameter 'size' for child must be ≥ 1, got 0"):
        Child(size=0)
    with pytest.raises(ParameterError, match="parameter 'size' for child must be an integer, got 'big'"):
        Child(size="big")
    with pytest.raises(ParameterError, match="unknown parameter 'rate' for child; valid: size, colour, depth"):
        Child(rate=0.5)  # fixed by the variant
    with pytest.raises(ParameterError, match="child takes its parameters by name"):
        Child(5)  # the parent's parameters cannot be told apart by position
    assert Parent(5, "green").get_params() == {"size": 5, "colour": "green", "rate": 0.5}


def test_igos_plus_plus_states_only_what_differs_from_igos():
    own = [name for name in inspect.signature(IGOSPlusPlus.__init__).parameters if name not in ("self", "params")]
    assert own == ["tv_sigma", "initial_step"]
    igos = IGOS.defaults()
    for fixed in ("relax_l1", "stop_tolerance", "stop_checks"):
        del igos[fixed]
    assert IGOSPlusPlus.defaults() == {**igos, "initial_step": 1000.0, "tv_sigma": 0.01}
    method = IGOSPlusPlus(points=5, tv_sigma=0.02)
    assert (method.points, method.tv_sigma, method.initial_step, method.relax_l1) == (5, 0.02, 1000.0, False)
    assert method.get_params()["points"] == 5 and "relax_l1" not in method.get_params()
    with pytest.raises(ParameterError, match="parameter 'points' for igos\\+\\+ must be ≥ 1, got 0"):
        IGOSPlusPlus(points=0)
    with pytest.raises(ParameterError, match="parameter 'filler' for igos\\+\\+ must be"):
        IGOSPlusPlus(filler=3)  # I-GOS's type hint holds for the variant
    with pytest.raises(ParameterError, match="unknown parameter 'relax_l1' for igos\\+\\+"):
        IGOSPlusPlus(relax_l1=True)


def test_mp_g_states_only_what_differs_from_mp():
    fixed = ("smooth_sigma", "layer", "stop_tolerance", "stop_checks")
    assert list(method_signature(MeaningfulPerturbationG).parameters) == [
        name for name in MeaningfulPerturbation.defaults() if name not in fixed
    ]
    method = MeaningfulPerturbationG(game="preservation", steps=3)
    assert (method.game, method.steps, method.filler, method.init) == ("preservation", 3, "inpaint", "uniform")
    assert (method.smooth_sigma, method.layer, method.stop_tolerance) == (0.0, None, None)
    with pytest.raises(ParameterError, match="parameter 'game' for mp-g must be one of 'deletion', 'preservation'"):
        MeaningfulPerturbationG(game="insertion")
    with pytest.raises(ParameterError, match="unknown parameter 'layer' for mp-g"):
        MeaningfulPerturbationG(layer="features")
