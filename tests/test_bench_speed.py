"""benchmarks/speed/bench_speed.py: the earlier code's name for images per batch, and the
comparison of two runs' tables."""

from __future__ import annotations

from pathlib import Path

import pytest

bench_speed = pytest.importorskip("benchmarks.speed.bench_speed")


def test_the_command_takes_this_checkouts_name_for_images_per_batch(tmp_path):
    command = bench_speed.bench_command(Path(__file__).resolve().parents[1], 100, tmp_path)
    assert command[command.index("--images-per-batch") + 1] == "4"
    assert "--batch-size" not in command


def test_a_mean_outside_the_earlier_interval_is_named():
    before = {"mp deletion": [0.20, 0.18, 0.22], "rise deletion": [0.30, 0.25, 0.35], "gone": [0.1, 0.0, 0.2]}
    now = {"mp deletion": [0.21, 0.19, 0.23], "rise deletion": [0.37, 0.33, 0.41], "new": [0.1, 0.0, 0.2]}
    compared = bench_speed.compare_tables(before, now)
    assert compared["means_outside_earlier_interval"] == ["rise deletion"]
    assert compared["largest_mean_difference"] == pytest.approx(0.07)
    assert compared["rows"] == 2 and compared["missing_rows"] == ["gone", "new"]
