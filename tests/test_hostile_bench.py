"""``bench`` against hostile input: a run owns its folder, holds a lock, heals its environment's
failures, and every bad argument or failed run is one line with its exit status.

Every run here is in-process (``main([...])``) on a tiny TorchScript classifier and a few shape
photos, with the cheapest method (``centre``) and metric.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
from pathlib import Path

import numpy as np
import pytest
from test_bench import write_tiny_bench_task

from maskscope.bench.folder import LOCK_NAME
from maskscope.bench.records import RecordLog
from maskscope.bench.summary import summary_rows
from maskscope.cli.main import main
from maskscope.methods import METHODS

METRIC = "deletion:rise-batch"
COUNT = 4


@pytest.fixture(scope="module")
def task(tmp_path_factory) -> Path:
    """``tiny.pt`` and ``data/``: 4 shape photos with an ImageNet-style labels.csv."""
    folder = tmp_path_factory.mktemp("hostile")
    write_tiny_bench_task(folder, COUNT)
    return folder


def bench(task: Path, out: Path, *extra: str, methods: str = "centre", data: Path | None = None) -> int:
    return main(["bench", "--data", str(data or task / "data"), "--model", str(task / "tiny.pt"), "--methods", methods,
                 "--metrics", METRIC, "--images-per-batch", "2", "--out", str(out), "--quiet", "--no-report", *extra])


def one_error_line(capsys) -> str:
    """The run's stderr, asserted to be one line."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` and its content."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def raw_lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]


# --- a run owns its folder -------------------------------------------------------------------------------


def test_force_deletes_the_runs_files_and_no_foreign_one(task, tmp_path, capsys):
    out = tmp_path / "d"
    (out / "maps" / "europe").mkdir(parents=True)
    (out / "maps" / "europe" / "france.svg").write_text("keep")
    assert bench(task, out) == 0
    (out / "maps" / "centre" / "notes.txt").write_text("mine")
    (out / "paper.md").write_text("mine too")
    assert len(list((out / "maps" / "centre").glob("*.npy"))) == COUNT
    assert bench(task, out, "--seed", "1", "--force") == 0
    assert (out / "maps" / "europe" / "france.svg").read_text() == "keep"
    assert (out / "maps" / "centre" / "notes.txt").read_text() == "mine"
    assert (out / "paper.md").read_text() == "mine too"
    assert json.loads((out / "config.json").read_text())["seed"] == 1
    assert len(raw_lines(out)) == COUNT  # the old run's records went, the new run's came


def test_force_refuses_a_folder_that_holds_no_run(task, tmp_path, capsys):
    out = tmp_path / "d"
    out.mkdir()
    (out / "summary.md").write_text("my own summary")
    (out / "maps" / "centre").mkdir(parents=True)
    (out / "maps" / "centre" / "x.npy").write_bytes(b"mine")
    before = snapshot(out)
    for extra in ((), ("--force",)):
        assert bench(task, out, *extra) == 2
        line = one_error_line(capsys)
        assert "summary.md" in line and "no bench run" in line
    assert snapshot(out) == before


def test_a_run_of_other_settings_neither_overwrites_nor_adds(task, tmp_path, capsys):
    out = tmp_path / "d"
    assert bench(task, out) == 0
    capsys.readouterr()
    before = snapshot(out)
    assert bench(task, out, "--seed", "3") == 2
    assert "seed differ" in one_error_line(capsys)
    assert snapshot(out) == before


def test_a_second_run_into_a_locked_folder_stops_at_once_naming_the_pid(task, tmp_path, capsys):
    out = tmp_path / "d"
    out.mkdir()
    descriptor = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(descriptor, b"4242\n")
        assert bench(task, out) == 2
        line = one_error_line(capsys)
        assert "pid 4242" in line and "in use by another bench run" in line
        assert main(["bench", "--summarise", str(out)]) == 2  # no run here yet
        capsys.readouterr()
    finally:
        os.close(descriptor)
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]
    assert bench(task, out) == 0  # the lock released, the run goes


def test_a_shard_still_running_is_not_merged(task, tmp_path, capsys):
    shards = [tmp_path / "s0", tmp_path / "s1"]
    for offset, shard in enumerate(shards):
        assert bench(task, shard, "--shard", f"{offset}/2") == 0
    descriptor = os.open(shards[1] / LOCK_NAME, os.O_RDWR)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.pwrite(descriptor, b"777\n", 0)
        capsys.readouterr()
        code = main(["bench", "--merge", *map(str, shards), "--out", str(tmp_path / "m"), "--no-report", "--quiet"])
        assert code == 2 and "pid 777" in one_error_line(capsys)
    finally:
        os.close(descriptor)
    assert not (tmp_path / "m" / "records.jsonl").exists()
    code = main(["bench", "--merge", *map(str, shards), "--out", str(shards[0] / "m"), "--no-report", "--quiet"])
    assert code == 2 and "overlap" in one_error_line(capsys)


def test_evaluate_obeys_the_same_folder_rules(task, tmp_path, capsys):
    maps = tmp_path / "mine"
    maps.mkdir()
    for k in range(COUNT):
        np.save(maps / f"c{k}.npy", np.random.default_rng(k).random((224, 224)).astype(np.float32))
    out = tmp_path / "d"
    (out / "maps" / "mine").mkdir(parents=True)
    np.save(out / "maps" / "mine" / "c0.npy", np.zeros((2, 2), np.float32))  # not the run's: evaluate writes no maps

    def evaluate(*extra: str) -> int:
        return main(["evaluate", "--maps", str(maps), "--data", str(task / "data"), "--model", str(task / "tiny.pt"),
                     "--metrics", METRIC, "--out", str(out), "--quiet", *extra])

    assert evaluate() == 0
    assert evaluate("--seed", "1", "--force") == 0
    assert (out / "maps" / "mine" / "c0.npy").exists()
    assert len(raw_lines(out)) == COUNT
    capsys.readouterr()
    assert evaluate("--seed", "2") == 2
    assert "seed differ" in one_error_line(capsys)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "records.jsonl").write_text("")
    code = main(["evaluate", "--maps", str(maps), "--data", str(task / "data"), "--model", str(task / "tiny.pt"),
                 "--metrics", METRIC, "--out", str(tmp_path / "other"), "--quiet"])
    assert code == 2 and "no bench run" in one_error_line(capsys)


@pytest.mark.parametrize("where", ["same", "inside", "holding"])
def test_data_and_out_may_not_overlap(task, tmp_path, capsys, where):
    data = tmp_path / "photos"
    data.mkdir()
    for path in (task / "data").iterdir():
        (data / path.name).write_bytes(path.read_bytes())
    if where == "holding":
        data = tmp_path / "photos"
        out = tmp_path
    else:
        out = data if where == "same" else data / "run"
    before = snapshot(data)
    assert bench(task, out, data=data) == 2
    assert "overlap" in one_error_line(capsys)
    assert snapshot(data) == before


# --- failures that heal ----------------------------------------------------------------------------------


def test_a_full_disk_stops_the_run_with_one_line_and_a_resume_completes_it(task, tmp_path, capsys, monkeypatch):
    out = tmp_path / "d"
    append = RecordLog.append
    calls = []

    def full_on_the_second_batch(self, records):
        calls.extend([len(records)] if records else [])
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        append(self, records)

    monkeypatch.setattr(RecordLog, "append", full_on_the_second_batch)
    assert bench(task, out) == 1
    line = one_error_line(capsys)
    assert "the disk is full" in line and "run the same command again" in line
    kept = raw_lines(out)
    assert len(kept) == 2 and all(r["status"] == "ok" for r in kept)
    assert not (out / "summary.md").exists()
    monkeypatch.setattr(RecordLog, "append", append)
    assert bench(task, out) == 0
    records = raw_lines(out)
    assert records[:2] == kept
    triples = [(r["image"], r["method"], r["metric"]) for r in records]
    assert len(triples) == len(set(triples)) == COUNT


def test_a_full_disk_writing_a_map_stops_the_run_and_records_no_failure(task, tmp_path, capsys, monkeypatch):
    from maskscope.bench.maps import MapFolder

    out = tmp_path / "d"
    put = MapFolder.put
    written = []

    def full_on_the_third_map(self, method, image, array):
        if len(written) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(image)
        put(self, method, image, array)

    monkeypatch.setattr(MapFolder, "put", full_on_the_third_map)
    assert bench(task, out, "--images-per-batch", "1") == 1
    assert "the disk is full" in one_error_line(capsys)
    assert [r["status"] for r in raw_lines(out)] == ["ok", "ok"]
    monkeypatch.setattr(MapFolder, "put", put)
    assert bench(task, out) == 0
    assert [r["status"] for r in raw_lines(out)] == ["ok"] * COUNT


def test_a_full_disk_while_plotting_is_one_line(task, tmp_path, capsys, monkeypatch):
    out = tmp_path / "d"
    assert bench(task, out) == 0

    def no_space(*args, **kwargs):
        raise OSError(errno.EDQUOT, "Disk quota exceeded")

    monkeypatch.setattr("maskscope.bench.plots.plot_curves", no_space)
    capsys.readouterr()
    assert main(["bench", "--summarise", str(out)]) == 1
    assert "disk quota is exhausted" in one_error_line(capsys)


def test_an_environment_failure_is_retried_on_resume_and_counted_once(task, tmp_path, capsys, monkeypatch):
    out = tmp_path / "d"
    centre = METHODS["centre"]
    explain = centre._explain
    calls = []

    def io_error_once(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OSError(errno.EIO, "Input/output error")
        return explain(self, *args, **kwargs)

    monkeypatch.setattr(centre, "_explain", io_error_once)
    assert bench(task, out, "--images-per-batch", "1", "--workers", "1") == 0  # the patch is this process's
    assert "1 of 4 records failed (1 for the environment's sake" in capsys.readouterr().err
    failed = [r for r in raw_lines(out) if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["failure"] == "environment" and "Input/output" in failed[0]["reason"]
    monkeypatch.setattr(centre, "_explain", explain)
    assert bench(task, out) == 0
    lines = raw_lines(out)
    assert len(lines) == COUNT + 1  # the failed line stays, the retry's line follows it
    log = RecordLog(out / "records.jsonl")
    assert len(log.records) == COUNT and all(r["status"] == "ok" for r in log.records)
    (row,) = summary_rows(log.records)
    assert (row["n"], row["failed"]) == (COUNT, 0)
    assert "(n=4)" in (out / "summary.md").read_text()


def test_an_images_failure_is_kept_on_resume_and_made_again_with_retry_failed(task, tmp_path, capsys):
    data = tmp_path / "photos"
    data.mkdir()
    for path in (task / "data").iterdir():
        (data / path.name).write_bytes(path.read_bytes())
    (data / "c1.png").write_bytes((data / "c1.png").read_bytes()[:60])
    out = tmp_path / "d"
    assert bench(task, out, data=data) == 0
    (failed,) = [r for r in raw_lines(out) if r["status"] == "failed"]
    assert failed["image"] == "c1" and failed["failure"] == "image"
    before = (out / "records.jsonl").read_bytes()
    assert bench(task, out, data=data) == 0
    assert (out / "records.jsonl").read_bytes() == before
    assert bench(task, out, "--retry-failed", data=data) == 0
    assert len(raw_lines(out)) == COUNT + 1
    assert len(RecordLog(out / "records.jsonl").records) == COUNT


def test_records_written_twice_count_once_and_old_failures_still_read(tmp_path):
    path = tmp_path / "records.jsonl"
    ok = {"method": "centre", "metric": "pointing", "status": "ok", "target": 0, "values": {"hit": 1.0, "centre_hit": 0.0}}
    lines = [{**ok, "image": f"i{k}"} for k in range(6)] * 2  # two runs into one folder, before the lock
    lines += [{"image": "old-io", "method": "centre", "metric": "pointing", "status": "failed",
               "reason": "centre failed: OSError: [Errno 5] Input/output error"},
              {"image": "old-bad", "method": "centre", "metric": "pointing", "status": "failed",
               "reason": "cannot read the image: truncated"}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    log = RecordLog(path)
    rows = {row["method"]: row for row in summary_rows(log.records)}
    assert (rows["centre"]["n"], rows["centre"]["failed"]) == (6, 2)
    settled = log.settled()
    assert ("old-bad", "centre", "pointing") in settled and ("old-io", "centre", "pointing") not in settled
    assert ("old-bad", "centre", "pointing") not in log.settled(retry_failed=True)


# --- one line for every bad argument, before the model is loaded -----------------------------------------


@pytest.mark.parametrize(("extra", "message"), [
    (["--limit", "-2"], "--limit must be at least 1, got -2"),
    (["--limit", "0"], "--limit must be at least 1, got 0"),
    (["--seed", str(2**70)], "--seed must be between 0 and 4294967295"),
    (["--methods", "gradcam,grad-cam"], "grad-cam is gradcam"),
    (["--methods", "explainer"], "explainer needs a trained checkpoint"),
    (["--metrics", "deletion:nope"], "unknown metric 'deletion:nope'"),
    (["--shard", "2/2"], "--shard '2/2': use K/N"),
])
def test_a_bad_argument_is_one_line_before_the_model_is_loaded(task, tmp_path, capsys, extra, message):
    args = ["bench", "--data", str(task / "data"), "--model", str(tmp_path / "no-such-model.pt"), "--methods",
            "centre", "--metrics", METRIC, "--out", str(tmp_path / "out"), "--quiet", *extra]
    assert main(args) == 2
    assert message in one_error_line(capsys)
    assert not (tmp_path / "out" / "config.json").exists()


def test_target_label_on_an_unlabelled_folder_is_one_line(task, tmp_path, capsys):
    data = tmp_path / "plain"
    data.mkdir()
    for path in (task / "data").glob("*.png"):
        (data / path.name).write_bytes(path.read_bytes())
    assert bench(task, tmp_path / "out", "--target", "label", data=data) == 2
    assert "labels none of its images" in one_error_line(capsys)


def test_every_image_failing_is_a_failed_run(task, tmp_path, capsys):
    data = tmp_path / "broken"
    data.mkdir()
    for path in (task / "data").glob("*.png"):
        (data / path.name).write_bytes(path.read_bytes()[:60])
    out = tmp_path / "out"
    assert bench(task, out, data=data) == 1
    assert one_error_line(capsys).startswith("maskscope bench: error: every record failed (4)")
    assert "n=0, 0 skipped, 4 failed" in (out / "summary.md").read_text()
    assert len(RecordLog(out / "records.jsonl").records) == COUNT


@pytest.mark.parametrize("content", ["", "[]", "{"])
def test_an_unusable_config_json_is_one_line_naming_the_file(task, tmp_path, capsys, content):
    given = tmp_path / "given.json"
    given.write_text(content)
    assert main(["bench", "--config", str(given), "--out", str(tmp_path / "a"), "--quiet"]) == 2
    assert str(given) in one_error_line(capsys)
    out = tmp_path / "b"
    out.mkdir()
    (out / "config.json").write_text(content)
    assert bench(task, out) == 2
    assert str(out / "config.json") in one_error_line(capsys)
    assert main(["bench", "--summarise", str(out)]) == 2
    assert str(out / "config.json") in one_error_line(capsys)


def test_a_records_line_missing_keys_is_one_line_naming_it(task, tmp_path, capsys):
    out = tmp_path / "d"
    assert bench(task, out) == 0
    with (out / "records.jsonl").open("a") as handle:
        handle.write(json.dumps({"image": "c0", "status": "ok"}) + "\n")
    capsys.readouterr()
    assert main(["bench", "--summarise", str(out)]) == 2
    line = one_error_line(capsys)
    assert f"records.jsonl:{COUNT + 1}" in line and "method, metric" in line
