"""Checks of an explanation method itself (METHODS §9)."""

from maskscope.checks.adversarial import black_image_test

__all__ = ["black_image_test"]
