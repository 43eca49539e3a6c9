"""Metrics of explanations: localisation, faithfulness, segmentation."""

from maskscope.metrics.deletion_insertion import (
    PROTOCOLS,
    CurveResult,
    Protocol,
    deletion,
    fgvis_schedule,
    igos_schedule,
    insertion,
    probability_classifier,
    rise_schedule,
    saliency_ranks,
)
from maskscope.metrics.pointing import PointingResult, near_object, pointing_game

__all__ = [
    "PROTOCOLS",
    "CurveResult",
    "PointingResult",
    "Protocol",
    "deletion",
    "fgvis_schedule",
    "igos_schedule",
    "insertion",
    "near_object",
    "pointing_game",
    "probability_classifier",
    "rise_schedule",
    "saliency_ranks",
]
