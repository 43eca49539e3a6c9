"""The learned explainer on the synthetic multi-object task, next to MP, RISE and Grad-CAM.

A tiny multi-label CNN learns which of four shapes (square, disc, triangle, cross; one to
three an image on clutter, 64 px) an image holds. Explainers are trained against it and
scored on held-out images with exact ground truth:

* the class-specific masking table (rows: images containing class t; columns: the mask of
  each class, binarised at 0.1…0.9; mean softmax probability of t; plus the unmasked column);
* Acc / IoU / Sal / MAE of the aggregated mask (max over the image's classes) against the
  union of the objects, beside the all-0, all-0.5, all-1 and ground-truth sanity masks, and
  the same scores for MP (preservation game, 16×16 mask, blur σ 8, 100 steps; its mask as
  it is), I-GOS (deletion, 8×8 mask, mean-colour filler, λ1 = λ2 = 0.3, 5 path points, 12
  iterations: the settings of its synthetic test; its saliency ``1 − up(M)``), RISE and
  Grad-CAM (their maps, which are no masks, scaled to [0, 1] per image by their maximum),
  each explaining the set of present classes;
* seconds per image.

Explainers (``--explainers``): ``light`` — the built-in U-Net with the vgg16-voc preset's
loss weights and Adam at 1e-3 (the preset's 1e-5 suits a long run on VOC, not minutes on a
CPU); ``features`` — the classifier-features network with a frozen encoder and the
non-target area weight raised to 2.0 (the unit test's setting). Training resumes from
WORK/<name>/last.pt, so a run can be extended with a larger ``--epochs``; ``--explainers ''``
with ``--methods`` naming some of the other methods re-runs only those and keeps the rest of
``--out``.

    python benchmarks/investigations/explainer_synthetic.py --work runs/explainer_synthetic \\
        --out benchmarks/results/investigations/explainer_synthetic.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from maskscope.core.model.classifier import Classifier
from maskscope.core.model.view import ClassifierView
from maskscope.data.synthetic import make_shapes
from maskscope.methods import IGOS, RISE, GradCAM, MeaningfulPerturbation
from maskscope.methods.explainer import Explainer
from maskscope.metrics.class_masking import class_masking_table
from maskscope.metrics.segmentation import sanity_rows, segmentation_scores
from maskscope.models import TinyCNN, train_tiny_classifier
from maskscope.training import TrainingConfig, TrainingImages, train_explainer

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.records import machine, write_record

EXPLAINERS = {
    "light": dict(network="light", learning_rate=1e-3),
    "features": dict(network="classifier-features", network_options={"width": 32, "train_encoder": False},
                     learning_rate=2e-3, batch_size=8, weights={"area_nontarget": 2.0}),
}  # fmt: skip


def shapes_classifier(work: Path) -> Classifier:
    """The multi-label tiny CNN, trained once; its weights are kept in ``work`` (a module, so Grad-CAM can hook it)."""
    path = work / "classifier.pt"
    names = ["square", "disc", "triangle", "cross"]
    if not path.is_file():
        train = make_shapes(800, objects=(1, 3), seed=1)
        trained = train_tiny_classifier(train.images, train.labels, names, multilabel=True, epochs=8, seed=0)
        torch.save(trained.model.state_dict(), path)
    model = TinyCNN(len(names))
    model.load_state_dict(torch.load(path, weights_only=True))
    return Classifier(model, mean=(0.5,) * 3, std=(0.5,) * 3, output="sigmoid", class_names=names,
                      view=ClassifierView(resize=None, crop=64), name="tiny-cnn-multilabel")  # fmt: skip


def scores_of(saliency: torch.Tensor, objects: torch.Tensor, classifier, images, present) -> dict:
    return segmentation_scores(saliency, objects, classifier=classifier, images=images, target=present).means()


def to_unit_range(maps: torch.Tensor) -> torch.Tensor:
    """Maps scaled to [0, 1] per image by their maximum (negative values clipped)."""
    maps = maps.clamp_min(0)
    return maps / maps.flatten(1).amax(1).clamp_min(1e-12)[:, None, None]


def timed(method, classifier, images, present, batch_size: int) -> tuple[torch.Tensor, float]:
    maps, started = [], time.perf_counter()
    for start in range(0, len(images), batch_size):
        chunk = slice(start, start + batch_size)
        maps.append(method(classifier, images[chunk], present[chunk]).saliency)
    return torch.cat(maps), (time.perf_counter() - started) / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for the classifier and explainer runs")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/investigations/explainer_synthetic.json"))
    parser.add_argument("--explainers", default="light,features", help=f"comma-separated: {', '.join(EXPLAINERS)}")
    parser.add_argument("--methods", default="mp,igos,rise,gradcam", help="the other methods, comma-separated")
    parser.add_argument("--train-images", type=int, default=800)
    parser.add_argument("--test-images", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--rise-masks", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (tiny convolutions gain little from more)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    classifier = shapes_classifier(args.work)
    train = make_shapes(args.train_images, objects=(1, 3), seed=3)
    test = make_shapes(args.test_images, objects=(1, 3), seed=2)
    present = [row.nonzero().flatten().tolist() for row in test.labels]
    objects = test.masks.any(1)
    with torch.no_grad():
        accuracy = ((classifier.probabilities(test.images) > 0.5) == test.labels.bool()).float().mean().item()
    record = {"machine": machine(), "classifier_label_accuracy": accuracy, "test_images": len(test),
              "sanity": sanity_rows(objects, classifier, test.images, present), "explainers": {}, "methods": {}}  # fmt: skip
    earlier = json.loads(args.out.read_text()) if args.out.is_file() else {}
    if earlier.get("test_images") == len(test):
        record["explainers"], record["methods"] = earlier["explainers"], earlier["methods"]  # re-run only what is named
    data = TrainingImages(list(train.images), train.labels, [f"shapes_{i}" for i in range(len(train))], classifier.view)
    for name in filter(None, args.explainers.split(",")):
        config = TrainingConfig(**{**EXPLAINERS[name], "epochs": args.epochs, "patience": 10})
        started = time.perf_counter()
        result = train_explainer(classifier, data, args.work / name, config, resume=True, progress=False)
        training_seconds = time.perf_counter() - started
        explainer = Explainer(result.checkpoint)
        masks = explainer.class_masks(classifier, test.images)  # (loads the network before the timing)
        saliency, seconds = timed(explainer, classifier, test.images, present, 50)
        table = class_masking_table(classifier, test.images, test.labels, masks)
        record["explainers"][name] = {
            "config": {key: value for key, value in vars(config).items()},
            "epochs": result.epochs, "best_epoch": result.best_epoch, "best_validation_loss": result.best_loss,
            "training_seconds_this_call": training_seconds, "seconds_per_image": seconds,
            "segmentation": scores_of(saliency, objects, classifier, test.images, present),
            "class_masking": {"values": table.values.tolist(), "counts": table.counts.tolist(),
                              "diagonal": table.diagonal().tolist(), "off_diagonal": table.off_diagonal().tolist(),
                              "markdown": table.to_markdown()},
        }  # fmt: skip
    others = {  # method, images per call, whether its map is a mask in [0, 1] already
        "mp": (MeaningfulPerturbation(game="preservation", resolution=16, filler="blur:8", steps=100), 25, True),
        "igos": (IGOS(resolution=8, l1_weight=0.3, tv_weight=0.3, points=5, steps=12, filler="mean"), 25, True),
        "rise": (RISE(samples=args.rise_masks), 10, False),
        "gradcam": (GradCAM(), 50, False),
    }
    for name in filter(None, args.methods.split(",")):
        method, batch_size, is_mask = others[name]
        print(f"explaining with {name}", flush=True)
        saliency, seconds = timed(method, classifier, test.images, present, batch_size)
        maps = saliency if is_mask else to_unit_range(saliency)
        record["methods"][name] = {"seconds_per_image": seconds,
                                   "segmentation": scores_of(maps, objects, classifier, test.images, present)}  # fmt: skip
    shown = {name: {"table": entry["class_masking"]["markdown"], **entry["segmentation"]}
             for name, entry in record["explainers"].items()}  # fmt: skip
    write_record(args.out, record, shown={**shown, "methods": record["methods"], "sanity": record["sanity"]})


if __name__ == "__main__":
    main()
