"""maskscope: explain image classifiers by perturbation, and measure the explanations."""

from maskscope.core import Classifier, Explanation
from maskscope.core.model.view import ClassifierView
from maskscope.data.images import load_image
from maskscope.methods import MeaningfulPerturbation, get_method
from maskscope.plotting.figures import plot_explanations

__version__ = "0.1.0"

__all__ = ["Classifier", "ClassifierView", "Explanation", "MeaningfulPerturbation", "get_method", "load_image",
           "plot_explanations", "__version__"]
