"""The noise floor of a reference-agreement row: two runs of the *same* side, compared alike.

``reference_agreement.py`` saves each side of its slow rows as ``maps/<row>.<side>.pt``. Run one
side twice in different settings — maskscope's EP in the project's environment (torch 2.13)
and again in the peers' (torch 2.14.1), say — and this script compares the two files as the
row compares maskscope with the peer: Spearman over pixels, the distance between the
maps' maxima and the peak height, on the photos both hold. Agreement between two codes
cannot be expected to be closer than this floor::

    PYTHONPATH=$PWD /work/refenv/bin/python benchmarks/agreement/reference_agreement.py --rows ep --photos 3 \\
        --sides maskscope --out benchmarks/results/agreement/reference_agreement/torch-2.14
    python benchmarks/agreement/side_noise_floor.py benchmarks/results/agreement/reference_agreement/maps/ep.maskscope.pt \\
        benchmarks/results/agreement/reference_agreement/torch-2.14/maps/ep.maskscope.pt \\
        --out benchmarks/results/agreement/reference_agreement/ep_noise_floor.json

or the peer against itself with its input moved by noise far below one grey level::

    PYTHONPATH=$PWD /work/refenv/bin/python benchmarks/agreement/reference_agreement.py --rows ep --photos 16 \\
        --sides reference --ep-reference-noise 1e-6 --out benchmarks/results/agreement/reference_agreement/reference-noise
    python benchmarks/agreement/side_noise_floor.py benchmarks/results/agreement/reference_agreement/maps/ep.reference.pt \\
        benchmarks/results/agreement/reference_agreement/reference-noise/maps/ep.reference.pt \\
        --out benchmarks/results/agreement/reference_agreement/ep_reference_noise_floor.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.map_agreement import agreement
from benchmarks.common.records import machine, write_record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path, help="a side file, maps/<row>.<side>.pt")
    parser.add_argument("second", type=Path, help="the same side run again")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    first, second = torch.load(args.first), torch.load(args.second)
    names = [name for name in first["names"] if name in second["names"]]
    if not names:
        raise SystemExit("the two files hold no photo in common")
    a = torch.stack([first["masks"][first["names"].index(name)] for name in names])
    b = torch.stack([second["masks"][second["names"].index(name)] for name in names])
    record = {
        "files": [str(args.first), str(args.second)],
        "code": [first["code"], second["code"]],
        "photos": names,
        **agreement(a, b),
        **machine(),
    }
    shown = ("photos", "spearman", "peak_distance_px", "peak_height", "maxima_within_15px")
    write_record(args.out, record, {key: record[key] for key in shown})


if __name__ == "__main__":
    main()
