"""Explainer checkpoints on disk: written atomically every epoch, read back to resume or to explain.

A checkpoint is a ``torch.save`` dict of plain values and tensors (readable with
``weights_only=True``)::

    format       "maskscope-explainer/1"
    network      {"name", "options", "num_classes", "state"}
    classifier   ClassifierRecord as a dict (how it was fed, classes, groups, probe logits)
    config       the training configuration
    epoch        epochs completed; best_loss, best_epoch, stale_epochs (early stopping)
    history      one row of loss terms per epoch and split
    optimiser, scaler   their state dicts (to resume)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from maskscope.core.atomic import atomic_path
from maskscope.core.model.classifier import Classifier
from maskscope.errors import MaskscopeValueError, MissingFileError
from maskscope.methods.explainer.classifier_record import ClassifierRecord
from maskscope.methods.explainer.networks import build_network

FORMAT = "maskscope-explainer/1"


def save_checkpoint(path: str | os.PathLike, checkpoint: dict[str, Any]) -> None:
    """Write ``checkpoint`` to ``path`` through a temporary file, so an interruption never leaves half a file."""
    with atomic_path(path) as temporary:
        torch.save({"format": FORMAT, **checkpoint}, temporary)


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Read an explainer checkpoint; a clear error for a missing file or anything else."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: no such explainer checkpoint")
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # torch raises several types for files that are not its own
        raise MaskscopeValueError(f"{path}: not an explainer checkpoint ({str(error).splitlines()[0]})") from error
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise MaskscopeValueError(f"{path}: not an explainer checkpoint (expected format {FORMAT})")
    return checkpoint


def classifier_record(checkpoint: dict[str, Any]) -> ClassifierRecord:
    return ClassifierRecord(**checkpoint["classifier"])


def network_from_checkpoint(checkpoint: dict[str, Any], classifier: Classifier) -> nn.Module:
    """The trained network, on the classifier's device, in eval mode (checks the classifier first)."""
    classifier_record(checkpoint).check(classifier)
    spec = checkpoint["network"]
    network = build_network(spec["name"], spec["num_classes"], classifier, **spec["options"])
    network.load_state_dict(spec["state"])
    return network.to(classifier.device).eval()


def classifier_for_checkpoint(path: str | os.PathLike, classifier: Classifier) -> Classifier:
    """``classifier``'s model fed as the checkpoint's classifier was (normalisation, view, classes,
    groups); raises :class:`CheckpointMismatch` if the model is not the one it was trained for."""
    record = classifier_record(load_checkpoint(path))
    fed = record.apply(classifier)
    record.check(fed)
    return fed
