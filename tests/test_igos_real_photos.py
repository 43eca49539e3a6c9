"""I-GOS and iGOS++ on real photos with the default model: the deletion mask must remove the evidence.

imagenet-samples photos the model is confident about, one batch each, at the methods'
defaults except fewer path points and iterations (to fit the suite's time): resolution,
λ values, filler, noise and line-search constants as documented.
"""

import pytest
import torch

from maskscope import load_image
from maskscope.methods import IGOS, IGOSPlusPlus

pytestmark = pytest.mark.slow

#: imagenet-samples photos the default model classifies with top-1 probability 0.93-0.99
#: (tench, goldfish, ostrich)
PHOTOS = ("n01440764", "n01443537", "n01518878")
CHEAP = dict(points=8, steps=8)


@pytest.fixture(scope="module")
def photos(shared_data, default_classifier):
    folder = shared_data / "imagenet-samples" / "images"
    return torch.stack([default_classifier.view(load_image(folder / f"{name}.jpg")) for name in PHOTOS])


def test_igos_deletion_removes_the_evidence_and_keeps_most_of_the_photo(photos, default_classifier):
    explanation = IGOS(**CHEAP)(default_classifier, photos)
    masks = explanation.mask[:, 0]
    ratio = explanation.scores_after / explanation.scores_before
    assert (explanation.scores_before > 0.9).all()
    # measured p 0.934 → 0.288, 0.941 → 0.470, 0.986 → 0.046; with the authors' λ2 = 20 and the
    # step judged by the noisy path objective it was 0.93 → 0.92 (the mask hardly left M = 1)
    assert (ratio < 0.7).all() and ratio.mean() < 0.45, ratio
    assert ((masks < 0.5).float().flatten(1).mean(1) > 0.05).all()  # the mask left M = 1 over a real area
    assert ((masks >= 0.9).float().flatten(1).mean(1) > 0.5).all()  # it did not delete everything


@pytest.mark.xfail(strict=True, reason="known shortfall: at reduced iterations and path points iGOS++ lowers p only "
                   "from 0.93 to about 0.8 on these photos; the goal is below half")
def test_igos_plus_plus_deletion_removes_the_evidence_and_keeps_most_of_the_photo(photos, default_classifier):
    explanation = IGOSPlusPlus(**CHEAP)(default_classifier, photos)
    combined = explanation.mask.prod(1)  # M = M_d·M_i
    assert (explanation.scores_after < 0.5 * explanation.scores_before).all(), explanation.scores_after
    assert ((combined >= 0.9).float().flatten(1).mean(1) > 0.5).all()  # it did not delete everything
