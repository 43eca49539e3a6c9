"""I-GOS and iGOS++ on real photos with the default model: the deletion mask must move.

Two imagenet-samples photos the model is confident about, one batch each, at the methods'
defaults except fewer path points and iterations (to fit the suite's time): resolution,
λ values, filler, noise and line-search constants as documented.
"""

import pytest
import torch

from maskscope import load_image
from maskscope.methods import IGOS, IGOSPlusPlus

pytestmark = pytest.mark.slow

#: imagenet-samples photos the default model classifies with top-1 probability 0.93-0.94
PHOTOS = ("n01440764", "n01443537")
CHEAP = dict(points=8, steps=6)


@pytest.fixture(scope="module")
def photos(shared_data, default_classifier):
    folder = shared_data / "imagenet-samples" / "images"
    return torch.stack([default_classifier.view(load_image(folder / f"{name}.jpg")) for name in PHOTOS])


def test_igos_mask_moves_and_keeps_most_of_the_photo(photos, default_classifier):
    explanation = IGOS(**CHEAP)(default_classifier, photos)
    masks = explanation.mask[:, 0]
    assert (explanation.scores_before > 0.9).all()
    # before the line search judged steps by the integrated objective, the mask stayed at
    # min 0.92-0.999 on these photos and the end-point probability did not change
    assert (masks.flatten(1).amin(1) < 0.75).all(), masks.flatten(1).amin(1)
    assert (explanation.scores_after < explanation.scores_before - 0.005).all()
    assert ((masks >= 0.9).float().flatten(1).mean(1) > 0.5).all()  # it did not delete everything


@pytest.mark.xfail(strict=True, reason="known shortfall: at 6 iterations and 8 path points iGOS++ lowers p only from "
                   "0.93 to 0.80 on these photos; the goal is below half")
def test_igos_plus_plus_deletion_removes_the_evidence_and_keeps_most_of_the_photo(photos, default_classifier):
    explanation = IGOSPlusPlus(**CHEAP)(default_classifier, photos)
    combined = explanation.mask.prod(1)  # M = M_d·M_i
    assert (explanation.scores_after < 0.5 * explanation.scores_before).all(), explanation.scores_after
    assert ((combined >= 0.9).float().flatten(1).mean(1) > 0.5).all()  # it did not delete everything
