"""Explanation methods, one module each, all returning an ``Explanation``."""

from maskscope.methods.base import Method
from maskscope.methods.centre_map import CentreMap
from maskscope.methods.explainer import Explainer
from maskscope.methods.extremal_perturbation import ExtremalPerturbation
from maskscope.methods.fgvis import FGVis
from maskscope.methods.gradcam import GradCAM
from maskscope.methods.gradient import Gradient
from maskscope.methods.hierarchical_perturbation import HierarchicalPerturbation
from maskscope.methods.igos import IGOS
from maskscope.methods.igos_plus_plus import IGOSPlusPlus
from maskscope.methods.integrated_gradients import IntegratedGradients
from maskscope.methods.lime import LIME
from maskscope.methods.meaningful_perturbation import MeaningfulPerturbation
from maskscope.methods.meaningful_perturbation_g import MeaningfulPerturbationG
from maskscope.methods.occlusion import Occlusion
from maskscope.methods.random_map import RandomMap
from maskscope.methods.registry import ALIASES, METHODS, get_method, method_names, register, resolve_method
from maskscope.methods.rise import RISE
from maskscope.methods.score_cam import ScoreCAM
from maskscope.methods.sliding_patch import SlidingPatch
from maskscope.methods.whole_image import WholeImage

__all__ = [
    "ALIASES",
    "METHODS",
    "RISE",
    "CentreMap",
    "Explainer",
    "ExtremalPerturbation",
    "FGVis",
    "GradCAM",
    "IGOS",
    "IGOSPlusPlus",
    "Gradient",
    "HierarchicalPerturbation",
    "IntegratedGradients",
    "LIME",
    "MeaningfulPerturbation",
    "MeaningfulPerturbationG",
    "Method",
    "Occlusion",
    "RandomMap",
    "ScoreCAM",
    "SlidingPatch",
    "WholeImage",
    "get_method",
    "method_names",
    "register",
    "resolve_method",
]
