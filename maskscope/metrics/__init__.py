"""Metrics of explanations: localisation, faithfulness, segmentation, robustness."""

from maskscope.metrics.deletion_insertion import (
    PROTOCOLS,
    CurveResult,
    Protocol,
    deletion,
    fgvis_schedule,
    igos_schedule,
    insertion,
    rise_schedule,
    road_schedule,
    saliency_ranks,
)
from maskscope.metrics.pointing import PointingResult, near_object, pointing_game
from maskscope.metrics.road import NoisyLinearImputer, linear_imputation
from maskscope.metrics.robustness import SIMILARITIES, PairwiseScores, hog_pearson, pairwise_robustness, spearman, ssim
from maskscope.metrics.segmentation import SegmentationScores, sanity_masks, sanity_rows, segmentation_scores
from maskscope.metrics.weak_localisation import (
    THRESHOLDS,
    AlphaSelection,
    LocalisationResult,
    bounding_boxes,
    box_iou,
    select_alpha,
    threshold_map,
    weak_localisation,
)

__all__ = [
    "PROTOCOLS",
    "SIMILARITIES",
    "THRESHOLDS",
    "AlphaSelection",
    "CurveResult",
    "LocalisationResult",
    "NoisyLinearImputer",
    "PairwiseScores",
    "PointingResult",
    "Protocol",
    "SegmentationScores",
    "bounding_boxes",
    "box_iou",
    "deletion",
    "fgvis_schedule",
    "hog_pearson",
    "igos_schedule",
    "insertion",
    "linear_imputation",
    "near_object",
    "pairwise_robustness",
    "pointing_game",
    "rise_schedule",
    "road_schedule",
    "saliency_ranks",
    "sanity_masks",
    "sanity_rows",
    "segmentation_scores",
    "select_alpha",
    "spearman",
    "ssim",
    "threshold_map",
    "weak_localisation",
]
