"""Peak resident memory of the gradient methods follows ``batch_size``, not the number of photos.

Each run is a fresh interpreter that explains N random 112×112 images with a small CNN whose
full-resolution features take 0.8 MB an image, and reports its peak RSS. Without chunking,
the 8 path points of N images go through one pass (measured: 12 photos took 344 MiB more than
one for I-GOS, 1235 MiB more for iGOS++); chunked at ``batch_size = 4`` they took 7 and 6 MiB more.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

RUN = """
import json, resource, sys
import torch
from torch import nn
from maskscope import Classifier
from maskscope.methods import get_method

torch.manual_seed(0)
torch.set_num_threads(2)
model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4))
classifier = Classifier(model, mean=(0.5,) * 3, std=(0.5,) * 3)
method = get_method(sys.argv[1], **json.loads(sys.argv[3]))
images = torch.rand(int(sys.argv[2]), 3, 112, 112, generator=torch.Generator().manual_seed(1))
method(classifier, images, target=0)
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
"""

SHORT = {
    "igos": {"steps": 1, "points": 8, "batch_size": 4},
    "igos++": {"steps": 1, "points": 8, "batch_size": 4},
}


def peak_mib(method: str, photos: int) -> float:
    result = subprocess.run(
        [sys.executable, "-c", RUN, method, str(photos), json.dumps(SHORT[method])],
        capture_output=True, text=True, cwd=ROOT, check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("method", sorted(SHORT))
def test_peak_memory_does_not_grow_with_the_number_of_photos(method):
    one, twelve = peak_mib(method, 1), peak_mib(method, 12)
    assert twelve - one < 100, (one, twelve)
