"""Checks of a model or of an explanation method itself (see docs/checks.md)."""

from maskscope.checks.adversarial import BlackImageResult, black_image_test
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
    "BlackImageResult",
    "VARIANTS",
    "EntropyRow",
    "RandomisationResult",
    "RandomisationStep",
    "black_image_test",
    "entropy",
    "model_randomisation",
    "parametrised_layers",
    "randomised_copy",
    "reference_entropy",
    "references",
]
