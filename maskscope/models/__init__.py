"""Small models that ship with the library."""

from maskscope.models.tiny_cnn import TinyCNN, train_tiny_classifier

__all__ = ["TinyCNN", "train_tiny_classifier"]
