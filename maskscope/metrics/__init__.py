"""Metrics of explanations: localisation, faithfulness, segmentation."""

from maskscope.metrics.pointing import PointingResult, near_object, pointing_game

__all__ = ["PointingResult", "near_object", "pointing_game"]
