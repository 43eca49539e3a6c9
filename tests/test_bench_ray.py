"""``bench`` on a local Ray cluster: the local runner's records, a killed worker, a killed driver."""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_bench import assert_resumed_with_each_triple_once, kill_bench_midway, write_tiny_bench_task

from maskscope.bench import BenchConfig, run_bench
from maskscope.bench.ray_runner import RayOptions, run_bench_ray
from maskscope.cli.main import main
from maskscope.core.model.classifier import Classifier
from maskscope.data.registry import open_dataset

ROOT = Path(__file__).resolve().parents[1]
METRICS = ["deletion:rise-batch", "insertion:rise-batch"]
RED = torch.tensor([1.0, 0.0, 0.0])


@pytest.fixture(scope="session")
def ray_address():
    """One Ray instance of 2 CPUs for every test here; its workers import this checkout and tests/."""
    ray = pytest.importorskip("ray")
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests")] + ([before] if before else []))
    try:
        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    finally:
        os.environ.pop("PYTHONPATH") if before is None else os.environ.__setitem__("PYTHONPATH", before)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """12 shape photos in an ImageNet-style folder, a truncated file, and a TorchScript classifier."""
    folder = tmp_path_factory.mktemp("ray")
    write_tiny_bench_task(folder, 12)
    (folder / "data" / "c11.png").write_bytes((folder / "data" / "c11.png").read_bytes()[:60])
    return folder


def _without_seconds(records):
    return sorted(({k: v for k, v in r.items() if k != "seconds"} for r in records),
                  key=lambda r: (r["image"], r["method"], r["metric"]))


def test_ray_workers_make_the_local_runners_records_and_maps(ray_address, photos, tmp_path):
    dataset = open_dataset(str(photos / "data"))
    config = BenchConfig(str(photos / "data"), ["centre", "gradient", "random"], METRICS, images_per_batch=3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each worker runs, so that sums are added in the same order
    try:
        local = run_bench(Classifier.from_torchscript(photos / "tiny.pt"), dataset, config, tmp_path / "local",
                          progress=False)
    finally:
        torch.set_num_threads(threads)
    make = functools.partial(Classifier.from_torchscript, photos / "tiny.pt")
    run = run_bench_ray(make, dataset, config, tmp_path / "ray", RayOptions(workers=2), progress=False)
    assert run.workers == 2 and run.tasks == 4 and run.lost_workers == 0
    assert _without_seconds(run.log.records) == _without_seconds(local.records)
    assert sum(r["status"] == "failed" and "cannot read the image" in r["reason"] for r in run.log.records) == 6
    assert sum(r["status"] == "ok" for r in run.log.records) == 11 * 3 * 2
    for path in sorted((tmp_path / "local" / "maps").glob("*/*.npy")):
        np.testing.assert_array_equal(np.load(path), np.load(tmp_path / "ray" / path.relative_to(tmp_path / "local")))
    assert json.loads((tmp_path / "ray" / "config.json").read_text())["model_name"] == "tiny"


class KillerAndPoisoned(torch.nn.Module):
    """PooledLinear that kills its own process (kill -9) at its ``kill_at``-th forward pass if it
    is the one to create ``marker`` (created exclusively, so of workers that get there at the
    same moment only one dies, once), and raises on a pure red image."""

    def __init__(self, model: torch.nn.Module, marker: str, kill_at: int) -> None:
        super().__init__()
        self.model, self.marker, self.kill_at, self.calls = model, marker, kill_at, 0
        mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
        self.register_buffer("red", ((RED - mean) / std)[None, :, None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.kill_at and self._claim_the_death():
            os.kill(os.getpid(), signal.SIGKILL)
        if ((x - self.red).abs().flatten(1).amax(1) < 1e-3).any():
            raise ValueError("a poisoned image")
        return self.model(x)

    def _claim_the_death(self) -> bool:
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return False
        return True


def _killer_classifier(scripted: str, marker: str) -> Classifier:
    return Classifier(KillerAndPoisoned(torch.jit.load(scripted), marker, kill_at=6), name="killer")


def test_a_killed_worker_loses_nothing_and_an_image_that_raises_is_recorded_as_failed(ray_address, photos, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for path in (photos / "data").glob("c*.png"):
        (data / path.name).write_bytes(path.read_bytes())
    Image.new("RGB", (64, 64), (255, 0, 0)).save(data / "c11.png")
    (data / "labels.csv").write_text((photos / "data" / "labels.csv").read_text())
    config = BenchConfig(str(data), ["centre", "gradient"], METRICS, images_per_batch=2)
    marker = tmp_path / "killed"
    make = functools.partial(_killer_classifier, str(photos / "tiny.pt"), str(marker))
    run = run_bench_ray(make, open_dataset(str(data)), config, tmp_path / "out", RayOptions(workers=2),
                        progress=False)
    assert marker.exists() and run.lost_workers == 1
    triples = [(r["image"], r["method"], r["metric"]) for r in run.log.records]
    expected = {(f"c{k}", m, metric) for k in range(12) for m in config.methods for metric in METRICS}
    assert len(triples) == len(set(triples)) and set(triples) == expected
    on_disk = [json.loads(line) for line in (tmp_path / "out" / "records.jsonl").read_text().splitlines()]
    assert len(on_disk) == len(expected)
    failed = [r for r in on_disk if r["status"] == "failed"]
    assert {r["image"] for r in failed} == {"c11"} and all("a poisoned image" in r["reason"] for r in failed)
    assert sum(r["status"] == "ok" for r in on_disk) == 11 * 2 * 2


def test_a_killed_driver_resumes_on_the_same_cluster_with_nothing_lost_or_duplicated(ray_address, photos, tmp_path):
    out = tmp_path / "run"
    args = ["bench", "--data", str(photos / "data"), "--model", str(photos / "tiny.pt"), "--methods",
            "centre,random,gradient", "--metrics", METRICS[0], "--images-per-batch", "1", "--ray", ray_address,
            "--workers", "1", "--out", str(out), "--quiet"]
    before = kill_bench_midway(args, out / "records.jsonl", lines=3, timeout=120)
    expected = {(f"c{k}", m, METRICS[0]) for k in range(12) for m in ("centre", "random", "gradient")}
    assert 3 <= before.count(b"\n") < len(expected)
    assert_resumed_with_each_triple_once(args, out, before, expected)


def test_without_ray_the_option_stops_with_one_line_naming_the_extra(photos, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)
    code = main(["bench", "--data", str(photos / "data"), "--model", str(photos / "tiny.pt"), "--methods", "centre",
                 "--metrics", "pointing", "--ray", "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in error and "pip install 'maskscope[ray]'" in error
    assert not (tmp_path / "out").exists()
