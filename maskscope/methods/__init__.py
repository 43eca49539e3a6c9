"""Explanation methods, one module each, all returning an ``Explanation``."""

from maskscope.methods.base import Method
from maskscope.methods.meaningful_perturbation import MeaningfulPerturbation
from maskscope.methods.registry import METHODS, get_method, register

__all__ = ["METHODS", "MeaningfulPerturbation", "Method", "get_method", "register"]
