"""Benchmark runs: records per (image, method, metric), resume after kill -9, summaries, evaluate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from maskscope.bench import BenchConfig, ConfigMismatch, RecordLog, evaluate_maps, run_bench, summarise
from maskscope.bench.scoring import check_metric
from maskscope.cli.main import main
from maskscope.data.dataset import Dataset, ObjectBox, Sample

ROOT = Path(__file__).resolve().parents[1]


class ShapesPhotos(Dataset):
    """Shape images written as PNG files, with boxes and masks of their single object."""

    name = "shapes"


def _write_png(path: Path, image: torch.Tensor) -> None:
    Image.fromarray((image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path)


def shapes_dataset(task, folder: Path, count: int, wrong_label_for: int | None = None) -> tuple[Dataset, torch.Tensor]:
    """The first ``count`` correctly classified test images as a dataset (and their object masks)."""
    folder.mkdir(parents=True, exist_ok=True)
    images, classes, masks = task.correctly_classified(count)
    names = task.classifier.class_names
    samples = []
    for index, (image, cls, mask) in enumerate(zip(images, classes, masks)):
        path = folder / f"img{index:02d}.png"
        _write_png(path, image)
        label = names[int(cls)] if index != wrong_label_for else names[(int(cls) + 1) % 4]
        ys, xs = mask.nonzero(as_tuple=True)
        box = ObjectBox(label, float(xs.min()), float(ys.min()), float(xs.max()) + 1, float(ys.max()) + 1)
        samples.append(Sample(path.stem, path, [label], [box], tuple(mask.shape),
                              read_masks=lambda m=mask.numpy(), lab=label: {lab: m}))
    return ShapesPhotos(samples, names), masks


def test_complete_run_writes_every_record_and_the_summary(shapes_task, tmp_path):
    dataset, _ = shapes_dataset(shapes_task, tmp_path / "data", 6)
    metrics = ["deletion:rise-batch", "insertion:rise-batch", "pointing", "weak_localisation", "segmentation"]
    config = BenchConfig("shapes", ["centre", "random"], metrics, images_per_batch=4, model="tiny-cnn")
    log = run_bench(shapes_task.classifier, dataset, config, tmp_path / "run", progress=False)
    triples = [(r["image"], r["method"], r["metric"]) for r in log.records]
    assert len(triples) == len(set(triples)) == 6 * 2 * 5
    assert all(r["status"] == "ok" for r in log.records), [r.get("reason") for r in log.records]
    rows = summarise(tmp_path / "run")
    assert {"centre-point"} < {row["method"] for row in rows}
    assert (tmp_path / "run" / "curves.png").stat().st_size > 0
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    assert stored["seed"] == 0 and stored["model_name"] == "tiny-cnn" and "torch" in stored["versions"]
    table = (tmp_path / "run" / "summary.md").read_text()
    assert "| centre |" in table and "weak_localisation:value@0.25" in table


def test_a_bare_deletion_or_insertion_takes_the_default_protocol_and_says_so():
    config = BenchConfig("shapes", ["centre"], ["deletion", "insertion", "insertion:igos", "pointing"])
    assert config.metrics == ["deletion:rise", "insertion:rise", "insertion:igos", "pointing"]
    assert check_metric("insertion") == "insertion:rise"
    with pytest.raises(ValueError, match="unknown metric 'deletion:fast'.*deletion \\(= deletion:rise\\)"):
        check_metric("deletion:fast")


def test_oracle_maps_rank_above_random_maps(shapes_task, tmp_path):
    dataset, masks = shapes_dataset(shapes_task, tmp_path / "data", 8)
    rng = np.random.default_rng(0)
    for name, maps in (("oracle", masks.float().numpy()), ("noise", rng.random(masks.shape).astype(np.float32))):
        (tmp_path / name).mkdir()
        for sample, saliency in zip(dataset, maps):
            np.save(tmp_path / name / f"{sample.name}.npy", saliency)
    means = {}
    for name in ("oracle", "noise"):
        config = BenchConfig("shapes", [name], ["insertion:rise-batch", "pointing"], images_per_batch=4)
        out = tmp_path / f"out-{name}"
        evaluate_maps(shapes_task.classifier, dataset, tmp_path / name, config, out, progress=False)
        means[name] = {(r["method"], r["metric"]): r["mean"] for r in summarise(out)}
    assert means["oracle"][("oracle", "pointing")] == 1.0
    assert means["oracle"][("oracle", "insertion:rise-batch")] > means["noise"][("noise", "insertion:rise-batch")] + 0.1


def test_evaluate_records_wrong_shape_nan_and_missing_maps_as_failed(shapes_task, tmp_path):
    dataset, masks = shapes_dataset(shapes_task, tmp_path / "data", 4)
    maps = tmp_path / "maps"
    maps.mkdir()
    np.save(maps / "img00.npy", masks[0].float().numpy())
    np.save(maps / "img01.npy", np.zeros((10, 12), np.float32))
    nan_map = masks[2].float().numpy()
    nan_map[3, 3] = np.nan
    np.save(maps / "img02.npy", nan_map)
    config = BenchConfig("shapes", ["maps"], ["pointing"])
    log = evaluate_maps(shapes_task.classifier, dataset, maps, config, tmp_path / "out", progress=False)
    by_image = {r["image"]: r for r in log.records}
    assert by_image["img00"]["status"] == "ok" and by_image["img00"]["values"]["hit"] == 1.0
    assert by_image["img01"]["status"] == "failed" and "shape (10, 12)" in by_image["img01"]["reason"]
    assert by_image["img02"]["status"] == "failed" and "NaN" in by_image["img02"]["reason"]
    assert by_image["img03"]["status"] == "failed" and "no map img03.npy" in by_image["img03"]["reason"]
    row = next(r for r in summarise(tmp_path / "out") if r["metric"] == "pointing" and r["method"] == "maps")
    assert (row["n"], row["failed"]) == (1, 3)


def test_image_without_an_object_of_the_target_class_is_a_recorded_skip(shapes_task, tmp_path):
    dataset, _ = shapes_dataset(shapes_task, tmp_path / "data", 3, wrong_label_for=1)
    config = BenchConfig("shapes", ["centre"], ["pointing", "deletion:rise-batch"])
    log = run_bench(shapes_task.classifier, dataset, config, tmp_path / "out", progress=False)
    skipped = [r for r in log.records if r["status"] == "skipped"]
    assert {(r["image"], r["metric"]) for r in skipped} == {("img01", "pointing"), ("img01", "deletion:rise-batch")}
    assert all("no object of the target class" in r["reason"] for r in skipped)
    assert sum(r["status"] == "ok" for r in log.records) == 4
    table = (summarise(tmp_path / "out"), (tmp_path / "out" / "summary.md").read_text())[1]
    assert "1 skipped" in table


def test_truncated_last_line_is_dropped_and_the_file_repaired(tmp_path):
    path = tmp_path / "records.jsonl"
    good = [{"image": "a", "method": "m", "metric": "pointing", "status": "ok"},
            {"image": "b", "method": "m", "metric": "pointing", "status": "ok"}]
    text = "".join(json.dumps(r) + "\n" for r in good)
    path.write_text(text + '{"image": "c", "meth')
    log = RecordLog(path)
    assert log.records == good and log.done == {("a", "m", "pointing"), ("b", "m", "pointing")}
    assert path.read_text() == text
    log.append([{"image": "c", "method": "m", "metric": "pointing", "status": "ok"}])
    assert len(RecordLog(path).records) == 3


def test_a_different_configuration_in_the_same_folder_is_refused(shapes_task, tmp_path):
    dataset, _ = shapes_dataset(shapes_task, tmp_path / "data", 2)
    config = BenchConfig("shapes", ["centre"], ["pointing"])
    run_bench(shapes_task.classifier, dataset, config, tmp_path / "out", progress=False)
    changed = BenchConfig("shapes", ["centre"], ["pointing"], seed=1)
    with pytest.raises(ConfigMismatch, match="seed"):
        run_bench(shapes_task.classifier, dataset, changed, tmp_path / "out", progress=False)
    log = run_bench(shapes_task.classifier, dataset, changed, tmp_path / "out", force=True, progress=False)
    assert len(log.records) == 2


class PooledLinear(torch.nn.Module):
    """A very cheap classifier of any image size: 8×8 average pooling, then a linear layer."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.pool = torch.nn.AdaptiveAvgPool2d(8)
        self.linear = torch.nn.Linear(3 * 64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.pool(x).flatten(1))


def _imagenet_style_folder(folder: Path, count: int) -> None:
    from maskscope.data.synthetic import make_shapes

    folder.mkdir()
    shapes = make_shapes(count, seed=3)
    rows = ["file,class_index,synset,name"] + [f"c{k}.png,{k},s{k},class_{k}" for k in range(count)]
    for k in range(count):
        _write_png(folder / f"c{k}.png", shapes.images[k])
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")


def write_tiny_bench_task(folder: Path, count: int) -> None:
    """``folder/tiny.pt`` (a seeded TorchScript classifier) and ``folder/data``: ``count`` shape photos."""
    torch.manual_seed(0)
    torch.jit.script(PooledLinear(count).eval()).save(str(folder / "tiny.pt"))
    _imagenet_style_folder(folder / "data", count)


def test_a_run_killed_mid_way_resumes_with_nothing_lost_or_duplicated(tmp_path):
    torch.manual_seed(0)
    count = 24
    model = torch.jit.script(PooledLinear(count).eval())
    model.save(str(tmp_path / "tiny.pt"))
    _imagenet_style_folder(tmp_path / "data", count)
    out = tmp_path / "run"
    args = ["bench", "--data", str(tmp_path / "data"), "--model", str(tmp_path / "tiny.pt"), "--methods",
            "centre,random,gradient", "--metrics", "deletion:rise-batch,insertion:rise-batch", "--images-per-batch", "1",
            "--out", str(out), "--quiet"]
    before = kill_bench_midway(args, out / "records.jsonl", lines=4, timeout=60)
    before = before[: before.rfind(b"\n") + 1]
    lines_before = before.count(b"\n")
    expected = {(f"c{k}", m, k2) for k in range(count) for m in ("centre", "random", "gradient")
                for k2 in ("deletion:rise-batch", "insertion:rise-batch")}
    assert 4 <= lines_before < len(expected)
    assert_resumed_with_each_triple_once(args, out, before, expected)


def kill_bench_midway(args: list[str], records: Path, lines: int, timeout: float) -> bytes:
    """Run ``maskscope bench ARGS`` in a subprocess, ``kill -9`` it once ``records`` holds
    ``lines`` lines, and return what the records held then."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "maskscope.cli.main", *args], env=env, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if records.exists() and records.read_bytes().count(b"\n") >= lines:
            break
        time.sleep(0.01)
    assert process.poll() is None, "the run ended before it could be killed: " + process.stderr.read().decode()
    process.kill()
    process.wait()
    return records.read_bytes()


def assert_resumed_with_each_triple_once(args: list[str], out: Path, before: bytes, expected: set) -> None:
    """Re-running ``args`` completes the run in ``out``: the old records kept, each triple once."""
    assert main(args) == 0
    after = (out / "records.jsonl").read_bytes()
    assert after.startswith(before)
    triples = [(r["image"], r["method"], r["metric"]) for r in map(json.loads, after.decode().splitlines())]
    assert len(triples) == len(set(triples)) and set(triples) == expected
    assert (out / "summary.md").exists()


def test_methods_all_leaves_out_the_methods_that_need_a_trained_checkpoint():
    from maskscope.cli.bench import untrained_methods
    from maskscope.methods import METHODS

    chosen = untrained_methods()
    assert "explainer" in METHODS and "explainer" not in chosen
    assert {"mp", "igos", "rise", "lime", "sliding_patch"} <= set(chosen)
    assert all(not METHODS[name].needs_checkpoint for name in chosen)
