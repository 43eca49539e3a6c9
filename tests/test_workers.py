"""Worker processes on this machine (``--workers``): the maps and records of one process, and a killed worker."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_bench import write_tiny_bench_task
from test_bench_ray import KillerAndPoisoned

from maskscope.bench import BenchConfig, run_bench
from maskscope.bench.workers import WorkerDied, worker_plan
from maskscope.cli.main import main
from maskscope.core.model.classifier import Classifier
from maskscope.data.registry import open_dataset
from maskscope.errors import MaskscopeValueError

METRICS = ["deletion:rise-batch", "insertion:rise-batch"]


@pytest.fixture(scope="module")
def task(tmp_path_factory) -> Path:
    """``tiny.pt`` (a TorchScript classifier) and 8 shape photos in ``data``."""
    folder = tmp_path_factory.mktemp("workers")
    write_tiny_bench_task(folder, 8)
    return folder


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_default_is_a_worker_per_core_and_one_for_a_single_batch():
    assert worker_plan(None, None, batches=10, cores=2) == (2, 1)
    assert worker_plan(None, None, batches=3, cores=16) == (3, 5)
    assert worker_plan(None, None, batches=1, cores=16) == (1, None)  # one photo: one process, torch's threads
    assert worker_plan(None, None, batches=10, device="cuda", cores=16) == (1, None)
    assert worker_plan(4, 2, batches=2, cores=2) == (2, 2)  # never more workers than batches
    assert worker_plan(1, None, batches=10, cores=2) == (1, None)  # today's single process
    with pytest.raises(MaskscopeValueError, match="--worker-threads must be at least 1, got 0"):
        worker_plan(2, 0, batches=10)


@pytest.fixture
def one_thread():
    """Torch's thread count for the test, restored after it: ``--workers 1 --worker-threads 1`` sets it
    in this process, and one thread adds up in the order each one-thread worker does."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _without_seconds(record: dict) -> dict:
    return {key: value for key, value in record.items() if key != "seconds"}


def test_explain_on_two_workers_saves_the_maps_and_records_of_one_process(task, tmp_path, capsys, one_thread):
    photos = [str(task / "data" / f"c{k}.png") for k in range(4)]
    common = ["explain", *photos, "--model", str(task / "tiny.pt"), "--method", "mp", "--param", "steps=4",
              "--engine", "torch", "--images-per-batch", "2", "--quiet"]
    assert main([*common, "--workers", "1", "--worker-threads", "1", "--out", str(tmp_path / "one")]) == 0
    one = capsys.readouterr().out.splitlines()
    assert main([*common, "--workers", "2", "--worker-threads", "1", "--out", str(tmp_path / "two")]) == 0
    two = capsys.readouterr().out.splitlines()  # printed by this process, as each batch came back
    assert len(one) == 4 and sorted(line.split(":")[0] for line in two) == sorted(line.split(":")[0] for line in one)
    arrays = sorted((tmp_path / "one").glob("*.npy"))  # each photo's map, mask and mask history
    assert len(arrays) == 3 * 4 and len(list((tmp_path / "two").glob("*.npy"))) == 3 * 4
    for path in arrays:
        np.testing.assert_array_equal(np.load(tmp_path / "two" / path.name), np.load(path))
    for path in (tmp_path / "one").glob("c?.json"):
        record, other = (json.loads((folder / path.name).read_text())
                         for folder in (tmp_path / "one", tmp_path / "two"))
        assert _without_seconds(record) == _without_seconds(other)


def test_bench_on_two_workers_writes_the_records_and_maps_of_one_process(task, tmp_path, one_thread):
    dataset = open_dataset(str(task / "data"))
    config = BenchConfig(str(task / "data"), ["centre", "gradient", "random"], METRICS, images_per_batch=3)
    make = functools.partial(Classifier.from_torchscript, task / "tiny.pt")  # TorchScript does not pickle
    one = run_bench(make(), dataset, config, tmp_path / "one", progress=False, workers=1, worker_threads=1)
    two = run_bench(make(), dataset, config, tmp_path / "two", progress=False, workers=2, worker_threads=1,
                    make_classifier=make)
    key = lambda r: (r["image"], r["method"], r["metric"])  # noqa: E731
    assert [_without_seconds(r) for r in sorted(two.records, key=key)] == [
        _without_seconds(r) for r in sorted(one.records, key=key)]
    assert sum(r["status"] == "ok" for r in two.records) == 8 * 3 * 2
    maps = sorted((tmp_path / "one" / "maps").glob("*/*.npy"))
    assert len(maps) == 8 * 3
    for path in maps:
        np.testing.assert_array_equal(np.load(tmp_path / "two" / path.relative_to(tmp_path / "one")), np.load(path))


def _killer(scripted: str, marker: str) -> Classifier:
    """The tiny classifier, whose process kills itself (kill -9) at its 60th forward pass (26 make
    an image's records) unless another one did (``marker``)."""
    return Classifier(KillerAndPoisoned(torch.jit.load(scripted), marker, kill_at=60), name="tiny")


def test_a_killed_worker_keeps_the_finished_records_and_the_rerun_makes_only_the_rest(task, tmp_path):
    dataset = open_dataset(str(task / "data"))
    config = BenchConfig(str(task / "data"), ["centre", "gradient"], METRICS, images_per_batch=1)
    tiny = functools.partial(Classifier.from_torchscript, task / "tiny.pt")
    killer = functools.partial(_killer, str(task / "tiny.pt"), str(tmp_path / "killed"))
    out = tmp_path / "run"
    with pytest.raises(WorkerDied):
        run_bench(tiny(), dataset, config, out, progress=False, workers=2, worker_threads=1, make_classifier=killer)
    assert (tmp_path / "killed").exists()
    before = (out / "records.jsonl").read_bytes()
    finished = _lines(out / "records.jsonl")
    expected = {(f"c{k}", m, metric) for k in range(8) for m in config.methods for metric in METRICS}
    assert 0 < len(finished) < len(expected)
    images = {r["image"] for r in finished}  # whole batches: every triple of an image written is there
    assert {(r["image"], r["method"], r["metric"]) for r in finished} == {t for t in expected if t[0] in images}
    run_bench(tiny(), dataset, config, out, progress=False, workers=2, worker_threads=1, make_classifier=tiny)
    after = (out / "records.jsonl").read_bytes()
    assert after.startswith(before)
    triples = [(r["image"], r["method"], r["metric"]) for r in _lines(out / "records.jsonl")]
    assert len(triples) == len(set(triples)) and set(triples) == expected
