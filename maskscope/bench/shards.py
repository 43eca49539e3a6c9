"""Merge the run folders of ``bench --shard K/N`` jobs into one run folder.

Shards are the same configuration with a different ``shard``; each holds every N-th image
from its K-th. The merged folder gets the configuration without ``shard`` (so running the
full command on it resumes any image a shard did not finish), every shard's records, each
(image, method, metric) once (a shard's latest record), and every shard's cached maps. Merging
into a folder that holds some of them already adds only what is missing, and a shard's record
in place of an environment's failure there. The merge holds the locks of ``out`` and of every
shard folder (a shard still running is refused), and ``out`` may not be a shard folder nor
lie inside one.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from contextlib import ExitStack
from pathlib import Path
from typing import Sequence

from maskscope.bench.batch import parse_shard
from maskscope.bench.config import IDENTITY_KEYS, BenchConfig, ConfigMismatch, write_or_check
from maskscope.bench.folder import RunFolderError, is_disk_full, locked, read_run_config, stopped
from maskscope.bench.records import RecordLog, failure_kind
from maskscope.core.atomic import atomic_path


def merge_shards(shards: Sequence[str | os.PathLike], out: str | os.PathLike, force: bool = False) -> list[int]:
    """Combine the shard folders ``shards`` into ``out``; returns the offsets K missing from 0..N-1.

    Raises:
        ConfigMismatch: the shards differ in a key other than ``shard`` (the message names the
            key and the folders), or ``out`` holds a different run.
        RunFolderError: a folder is not a shard run, two folders are the same shard, or ``out``
            overlaps a shard folder.
        RunLocked: a run writes ``out`` or one of the shards.
        RunStopped: the disk is full.
    """
    folders = [Path(folder) for folder in shards]
    if not folders:
        raise RunFolderError("--merge needs at least one shard folder")
    for folder in folders:
        _check_not_within(Path(out), folder)
    configs = []
    for folder in folders:
        config = read_run_config(folder)
        if config is None:
            raise RunFolderError(f"{folder}: not a bench run (no config.json)")
        configs.append(config)
    first = configs[0]
    for folder, config in zip(folders[1:], configs[1:]):
        changed = [key for key in IDENTITY_KEYS if key != "shard" and config.get(key) != first.get(key)]
        if changed:
            raise ConfigMismatch(f"{folders[0]} and {folder} are shards of different runs ({', '.join(changed)} differ)")
    offsets: dict[int, Path] = {}
    count: int | None = None
    for folder, config in zip(folders, configs):
        if not config.get("shard"):
            raise RunFolderError(f"{folder}: not a shard (it was run without --shard)")
        offset, total = parse_shard(config["shard"])
        if count is not None and total != count:
            raise ConfigMismatch(f"{folder} is shard {config['shard']}, the others are of {count}")
        if offset in offsets:
            raise RunFolderError(f"{offsets[offset]} and {folder} are both shard {config['shard']}")
        count, offsets[offset] = total, folder
    assert count is not None  # there is at least one folder
    out = Path(out)
    merged = dataclasses.replace(BenchConfig.from_file(folders[0] / "config.json"), shard=None)
    with ExitStack() as stack:
        for folder in [out, *folders]:
            stack.enter_context(locked(folder))
        try:
            _merge(folders, out, merged, force, first.get("model_name"))
        except OSError as error:
            if not is_disk_full(error):
                raise
            raise stopped(out, error) from error
    return sorted(set(range(count)) - set(offsets))


def _merge(folders: list[Path], out: Path, merged: BenchConfig, force: bool, model_name: str | None) -> None:
    write_or_check(merged, out, force, model_name)
    log = RecordLog(out / "records.jsonl")
    for folder in folders:
        if (folder / "records.jsonl").exists():
            settled = log.settled()
            ours = {(r["image"], r["method"], r["metric"]): r for r in log.records}
            log.append([record for record in RecordLog(folder / "records.jsonl").records
                        if _replaces(record, ours.get((record["image"], record["method"], record["metric"])),
                                     settled)])
        _copy_maps(folder / "maps", out / "maps")


def _replaces(record: dict, current: dict | None, settled: set) -> bool:
    """Whether a shard's ``record`` goes into the merged records, which hold ``current`` for its triple."""
    if current is None:
        return True
    triple = (record["image"], record["method"], record["metric"])
    return triple not in settled and record != current and failure_kind(record) != "environment"


def _check_not_within(out: Path, folder: Path) -> None:
    """Refuse an ``out`` that is the shard ``folder`` or inside it."""
    target, shard = out.resolve(), folder.resolve()
    if target == shard or shard in target.parents:
        raise RunFolderError(f"--out {out} and the shard {folder} overlap; merge into a folder of its own")


def _copy_maps(source: Path, target: Path) -> None:
    """Copy the ``<method>/<image>.npy`` files that ``target`` lacks (temporary file, then rename)."""
    if not source.is_dir():
        return
    for path in sorted(source.glob("*/*.npy")):
        destination = target / path.parent.name / path.name
        if path.name.startswith(".") or destination.exists():
            continue
        with atomic_path(destination) as temporary:
            shutil.copyfile(path, temporary)
