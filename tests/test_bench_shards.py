"""``bench --shard K/N`` runs, and ``bench --merge`` combining them into one run folder."""

from __future__ import annotations

import dataclasses
import json

import pytest
from test_bench import write_tiny_bench_task

from maskscope.bench import BenchConfig, ConfigMismatch, RecordLog, run_bench
from maskscope.bench.shards import merge_shards
from maskscope.cli.main import main
from maskscope.core.model.classifier import Classifier
from maskscope.data.registry import open_dataset

METRICS = ["deletion:rise-batch"]


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shards")
    write_tiny_bench_task(folder, 7)
    return folder, Classifier.from_torchscript(folder / "tiny.pt"), open_dataset(str(folder / "data"))


def _triples(records):
    return [(r["image"], r["method"], r["metric"]) for r in records]


def test_shards_take_every_nth_image_and_merge_into_the_full_run(task, tmp_path, capsys):
    folder, classifier, dataset = task
    config = BenchConfig(str(folder / "data"), ["centre", "gradient"], METRICS, images_per_batch=2)
    full = run_bench(classifier, dataset, config, tmp_path / "full", progress=False)
    shards = []
    for offset in range(3):
        shard = dataclasses.replace(config, shard=f"{offset}/3")
        log = run_bench(classifier, dataset, shard, tmp_path / f"shard{offset}", progress=False)
        assert {r["image"] for r in log.records} == {f"c{k}" for k in range(offset, 7, 3)}
        shards.append(str(tmp_path / f"shard{offset}"))
    assert main(["bench", "--merge", *shards, "--out", str(tmp_path / "merged")]) == 0
    merged = RecordLog(tmp_path / "merged" / "records.jsonl").records
    assert len(_triples(merged)) == len(set(_triples(merged))) == 7 * 2
    key = lambda r: (r["image"], r["method"])  # noqa: E731
    strip = lambda records: sorted(({k: v for k, v in r.items() if k != "seconds"} for r in records), key=key)  # noqa: E731
    assert strip(merged) == strip(full.records)
    assert len(list((tmp_path / "merged" / "maps").glob("*/*.npy"))) == 7 * 2
    assert json.loads((tmp_path / "merged" / "config.json").read_text())["shard"] is None
    assert (tmp_path / "merged" / "summary.md").exists()
    # the merged folder is the full run: running it resumes with nothing left to do
    again = run_bench(classifier, dataset, config, tmp_path / "merged", progress=False)
    assert len(again.records) == 7 * 2
    # merging again adds nothing
    assert merge_shards(shards, tmp_path / "merged") == []
    assert len(RecordLog(tmp_path / "merged" / "records.jsonl").records) == 7 * 2


def test_merge_refuses_shards_of_different_runs_and_twice_the_same_shard(task, tmp_path):
    folder, classifier, dataset = task
    config = BenchConfig(str(folder / "data"), ["centre"], METRICS, limit=4)
    run_bench(classifier, dataset, dataclasses.replace(config, shard="0/2"), tmp_path / "a", progress=False)
    run_bench(classifier, dataset, dataclasses.replace(config, shard="1/2", seed=1), tmp_path / "b", progress=False)
    run_bench(classifier, dataset, dataclasses.replace(config, shard="0/2"), tmp_path / "c", progress=False)
    with pytest.raises(ConfigMismatch, match="seed differ"):
        merge_shards([tmp_path / "a", tmp_path / "b"], tmp_path / "out")
    with pytest.raises(ValueError, match="both shard 0/2"):
        merge_shards([tmp_path / "a", tmp_path / "c"], tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert merge_shards([tmp_path / "a"], tmp_path / "out") == [1]
    assert {r["image"] for r in RecordLog(tmp_path / "out" / "records.jsonl").records} == {"c0", "c2"}


def test_a_shard_that_is_not_k_of_n_is_a_one_line_error(task, tmp_path, capsys):
    folder, _, _ = task
    code = main(["bench", "--data", str(folder / "data"), "--model", str(folder / "tiny.pt"), "--methods", "centre",
                 "--metrics", METRICS[0], "--shard", "3/3", "--out", str(tmp_path / "out")])
    assert code == 2 and "--shard '3/3': use K/N with 0 <= K < N" in capsys.readouterr().err
