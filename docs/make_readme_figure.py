"""The README's figure: the bundled cat photo explained by several methods, side by side.

    python docs/make_readme_figure.py [--out docs/readme-figure.png]

Uses the default model (EfficientNet-Lite0) and settings cheap enough for a laptop CPU
(a minute or two); every map is drawn on its own range, as its colour bar says.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from skimage import data

from maskscope import Classifier, load_image, plot_explanations
from maskscope.methods import RISE, GradCAM, IntegratedGradients, MeaningfulPerturbation

#: the methods shown, with settings that keep the script short
METHODS = (MeaningfulPerturbation(steps=150), RISE(samples=2000), GradCAM(), IntegratedGradients(points=32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("readme-figure.png"))
    args = parser.parse_args()
    classifier = Classifier.default()
    image = classifier.view(load_image(data.chelsea()))[None]
    explanations = [method(classifier, image, seed=0) for method in METHODS]
    figure = plot_explanations(explanations, image, size=2.7)
    figure.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
