"""Checks of a model or of an explanation method itself (METHODS.md §9)."""

from maskscope.checks.model_randomisation import (
    PASS_SPEARMAN,
    VARIANTS,
    RandomisationResult,
    RandomisationStep,
    model_randomisation,
    parametrised_layers,
    randomised_copy,
)
from maskscope.checks.reference_entropy import EntropyRow, entropy, reference_entropy, references

__all__ = [
    "PASS_SPEARMAN",
    "VARIANTS",
    "EntropyRow",
    "RandomisationResult",
    "RandomisationStep",
    "entropy",
    "model_randomisation",
    "parametrised_layers",
    "randomised_copy",
    "reference_entropy",
    "references",
]
