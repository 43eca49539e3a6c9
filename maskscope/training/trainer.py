"""Training an explainer network against a frozen classifier.

The images are split once (seeded) into training and validation sets. Every epoch trains on
the training images in a seeded order (Adam, the loss of :mod:`.losses`), computes the loss on
the validation images, and writes to ``out``:

* ``last.pt`` — everything needed to resume (network, optimiser, epoch, early-stopping state,
  history, classifier record, configuration), written atomically every epoch;
* ``best.pt`` — the same at the epoch of lowest validation loss: the explainer to use;
* ``log.csv`` and ``loss.png`` — every loss term per epoch and split.

Training stops after ``epochs`` epochs, or early when the validation loss has not improved by
more than ``min_delta`` for ``patience`` epochs. A run that is interrupted resumes from
``last.pt`` (``resume=True``) and, on the CPU, ends exactly where an uninterrupted run would:
the epoch order depends only on the seed and the epoch number. Resuming checks that the
classifier and the configuration are those of the checkpoint (``epochs`` and ``patience``
may change, to extend a run).

On CUDA the forward passes run under ``torch.autocast`` (float16) with a ``GradScaler``
unless ``amp=False``; the loss terms are computed in float32.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from maskscope.core.model.classifier import Classifier
from maskscope.core.progress import progress_bar
from maskscope.data.dataset import DatasetError
from maskscope.errors import MaskscopeValueError
from maskscope.methods.explainer.checkpoint import classifier_record, load_checkpoint, save_checkpoint
from maskscope.methods.explainer.classifier_record import ClassifierRecord
from maskscope.methods.explainer.networks import build_network
from maskscope.training.images import TrainingImages
from maskscope.training.log import plot_terms, write_csv
from maskscope.training.losses import build_loss, preset_named

#: configuration fields that may differ when a run is resumed
RESUMABLE_CHANGES = ("epochs", "patience")


@dataclass
class TrainingConfig:
    """What to train and how.

    Attributes:
        network: ``light``, ``deeplabv3-resnet50`` or ``classifier-features``.
        network_options: the network's parameters (``width``, ``levels``, ``train_encoder``).
        loss: ``explainer`` (the paper's) or ``rtis``.
        preset: the paper setting whose weights, learning rate and patience are used.
        weights: loss weights overriding the preset's (or the RTIS defaults).
        filler: the RTIS loss's removal content.
        learning_rate: Adam's step size (None: the preset's).
        batch_size: images per step (the paper: 16).
        epochs: the most epochs.
        patience: epochs without improvement before stopping (None: the preset's).
        min_delta: the least decrease of the validation loss that counts as an improvement.
        validation: the fraction of images held out for validation.
        multilabel: binary cross-entropy (True) or cross-entropy of the image's classes
            (False); None: multi-label when the classifier is (sigmoid output).
        seed: fixes the split, the network's initialisation and the epoch orders.
    """

    network: str = "light"
    network_options: dict[str, Any] = field(default_factory=dict)
    loss: str = "explainer"
    preset: str = "vgg16-voc"
    weights: dict[str, float] = field(default_factory=dict)
    filler: str = "blur:10"
    learning_rate: float | None = None
    batch_size: int = 16
    epochs: int = 50
    patience: int | None = None
    min_delta: float = 0.001
    validation: float = 0.2
    multilabel: bool | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        preset = preset_named(self.preset)
        if self.learning_rate is None:
            self.learning_rate = preset.learning_rate
        if self.patience is None:
            self.patience = preset.patience
        if self.batch_size < 1 or self.epochs < 1 or self.patience < 1:
            raise MaskscopeValueError("batch_size, epochs and patience must be at least 1")
        if not 0 < self.validation < 1:
            raise MaskscopeValueError(f"the validation fraction must be in (0, 1), got {self.validation}")


@dataclass
class TrainingResult:
    """Where the run ended: epochs completed, the best epoch and its validation loss, the files."""

    epochs: int
    best_epoch: int
    best_loss: float
    stopped_early: bool
    checkpoint: Path
    log: Path
    plot: Path


def train_explainer(
    classifier: Classifier,
    data: TrainingImages,
    out: str | os.PathLike,
    config: TrainingConfig | None = None,
    amp: bool = True,
    resume: bool = False,
    progress: bool = True,
) -> TrainingResult:
    """Train an explainer for ``classifier`` on ``data`` and write checkpoints and logs to ``out``.

    Training runs on the classifier's device.

    Args:
        classifier: the frozen classifier (a :class:`GroupedClassifier` to explain class groups).
        data: the training examples (:func:`open_training_images`).
        out: the run's folder.
        config: what to train (defaults: :class:`TrainingConfig`).
        amp: mixed precision on CUDA.
        resume: continue the run in ``out`` from ``last.pt``.
        progress: show progress bars.
    Raises:
        ValueError: ``out`` holds a run and ``resume`` is false; the checkpoint belongs to
            another classifier, class list or configuration; too few images.
    """
    config = config or TrainingConfig()
    # __post_init__ fills both from the preset
    assert config.learning_rate is not None and config.patience is not None
    device = classifier.device
    if data.targets.shape[1] != classifier.num_classes:
        raise MaskscopeValueError(f"the targets have {data.targets.shape[1]} classes, the classifier {classifier.num_classes}")
    if len(data) < 2:
        raise DatasetError(f"{len(data)} image(s): training needs at least 2 (one for validation)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    last, best = out / "last.pt", out / "best.pt"
    multilabel = config.multilabel
    if multilabel is None:
        multilabel = classifier.output == "sigmoid"
    loss = build_loss(config.loss, config.preset, config.weights, multilabel, config.filler)
    record = ClassifierRecord.of(classifier)
    torch.manual_seed(config.seed)
    network = build_network(config.network, classifier.num_classes, classifier, **config.network_options).to(device)
    optimiser = torch.optim.Adam([p for p in network.parameters() if p.requires_grad], lr=config.learning_rate)
    use_amp = amp and device.type == "cuda"
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp)
    state: dict[str, Any] = {"epoch": 0, "best_loss": math.inf, "best_epoch": 0, "stale_epochs": 0, "history": []}
    if last.is_file():
        if not resume:
            raise MaskscopeValueError(f"{out} already holds a training run: resume it, or choose another folder")
        checkpoint = load_checkpoint(last, device)
        _check_resumable(checkpoint, classifier, config, last)
        network.load_state_dict(checkpoint["network"]["state"])
        optimiser.load_state_dict(checkpoint["optimiser"])
        scaler.load_state_dict(checkpoint["scaler"])
        state = {key: checkpoint[key] for key in state}
    train_indices, validation_indices = split_indices(len(data), config.validation, config.seed)
    stopped_early = state["stale_epochs"] >= config.patience
    for epoch in range(state["epoch"], config.epochs):
        if stopped_early:
            break
        started = time.perf_counter()
        order = [train_indices[i] for i in torch.randperm(len(train_indices), generator=_epoch_generator(config.seed, epoch))]
        network.train()
        train_terms = _run_epoch(network, loss, classifier, data, order, config.batch_size, device, optimiser, scaler,
                                 use_amp, f"epoch {epoch + 1}/{config.epochs}", progress)  # fmt: skip
        network.eval()
        with torch.no_grad():
            validation_terms = _run_epoch(network, loss, classifier, data, validation_indices, config.batch_size,
                                          device, None, None, use_amp, "validation", progress)  # fmt: skip
        if not math.isfinite(train_terms["total"]):
            raise FloatingPointError(f"the training loss is not finite at epoch {epoch + 1}: lower the learning rate")
        seconds = time.perf_counter() - started
        state["history"] += [
            {"epoch": epoch + 1, "split": "train", **train_terms, "seconds": seconds},
            {"epoch": epoch + 1, "split": "validation", **validation_terms, "seconds": seconds},
        ]
        state["epoch"] = epoch + 1
        improved = validation_terms["total"] < state["best_loss"] - config.min_delta
        if improved:
            state["best_loss"], state["best_epoch"], state["stale_epochs"] = validation_terms["total"], epoch + 1, 0
        else:
            state["stale_epochs"] += 1
        checkpoint = {
            "network": {"name": config.network, "options": dict(config.network_options),
                        "num_classes": classifier.num_classes, "state": network.state_dict()},
            "classifier": record.to_dict(),
            "config": asdict(config),
            "optimiser": optimiser.state_dict(),
            "scaler": scaler.state_dict(),
            **state,
        }  # fmt: skip
        save_checkpoint(last, checkpoint)
        if improved:
            save_checkpoint(best, checkpoint)
        write_csv(out / "log.csv", state["history"])
        plot_terms(out / "loss.png", state["history"])
        stopped_early = state["stale_epochs"] >= config.patience
    return TrainingResult(state["epoch"], state["best_epoch"], state["best_loss"], stopped_early, best,
                          out / "log.csv", out / "loss.png")  # fmt: skip


def split_indices(count: int, validation: float, seed: int) -> tuple[list[int], list[int]]:
    """A seeded split of ``range(count)`` into training and validation indices (each at least one)."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed)).tolist()
    held_out = min(count - 1, max(1, round(count * validation)))
    return sorted(order[held_out:]), sorted(order[:held_out])


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


def _run_epoch(network, loss, classifier, data, indices, batch_size, device, optimiser, scaler, use_amp, label, progress):
    """One pass over ``indices``: a step per batch when an optimiser is given. Returns the mean terms."""
    sums: dict[str, float] = {}
    batches = [indices[start : start + batch_size] for start in range(0, len(indices), batch_size)]
    bar = progress_bar(batches, desc=label, unit="batch", disable=not progress, leave=False)
    autocast = torch.autocast(device.type, dtype=torch.float16) if use_amp else contextlib.nullcontext()
    for batch in bar:
        images, targets = data.batch(batch)
        images, targets = images.to(device), targets.to(device)
        with autocast:
            terms = loss(classifier, images, network(classifier.normalise(images)), targets)
        if optimiser is not None:
            optimiser.zero_grad(set_to_none=True)
            scaler.scale(terms["total"]).backward()
            scaler.step(optimiser)
            scaler.update()
        for name, value in terms.items():
            sums[name] = sums.get(name, 0.0) + float(value.detach()) * len(batch)
        bar.set_postfix(loss=f"{float(terms['total'].detach()):.4f}")
    return {name: total / len(indices) for name, total in sums.items()}


def _check_resumable(checkpoint: dict, classifier: Classifier, config: TrainingConfig, path: Path) -> None:
    classifier_record(checkpoint).check(classifier)
    saved = {k: v for k, v in checkpoint["config"].items() if k not in RESUMABLE_CHANGES}
    wanted = {k: v for k, v in asdict(config).items() if k not in RESUMABLE_CHANGES}
    changed = sorted(k for k in wanted if saved.get(k) != wanted[k])
    if changed:
        details = ", ".join(f"{k}: {saved.get(k)!r} → {wanted[k]!r}" for k in changed)
        raise MaskscopeValueError(f"{path} was trained with another configuration ({details}); resume with the same one")
