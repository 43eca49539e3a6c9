"""Merge the run folders of ``bench --shard K/N`` jobs into one run folder.

Shards are the same configuration with a different ``shard``; each holds every N-th image
from its K-th. The merged folder gets the configuration without ``shard`` (so running the
full command on it resumes any image a shard did not finish), every shard's records, each
(image, method, metric) once, and every shard's cached maps. Merging into a folder that holds
some of them already adds only what is missing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Sequence

from maskscope.bench.batch import mark_done, parse_shard
from maskscope.bench.config import IDENTITY_KEYS, BenchConfig, ConfigMismatch, write_or_check
from maskscope.bench.records import RecordLog
from maskscope.core.atomic import atomic_path


def merge_shards(shards: Sequence[str | os.PathLike], out: str | os.PathLike, force: bool = False) -> list[int]:
    """Combine the shard folders ``shards`` into ``out``; returns the offsets K missing from 0..N-1.

    Raises:
        ConfigMismatch: the shards differ in a key other than ``shard`` (the message names the
            key and the folders), or ``out`` holds a different run.
        ValueError: a folder is not a shard run, or two folders are the same shard.
    """
    folders = [Path(folder) for folder in shards]
    if not folders:
        raise ValueError("--merge needs at least one shard folder")
    configs = []
    for folder in folders:
        path = folder / "config.json"
        if not path.exists():
            raise ValueError(f"{folder}: not a bench run (no config.json)")
        configs.append(json.loads(path.read_text()))
    first = configs[0]
    for folder, config in zip(folders[1:], configs[1:]):
        changed = [key for key in IDENTITY_KEYS if key != "shard" and config.get(key) != first.get(key)]
        if changed:
            raise ConfigMismatch(f"{folders[0]} and {folder} are shards of different runs ({', '.join(changed)} differ)")
    offsets: dict[int, Path] = {}
    count: int | None = None
    for folder, config in zip(folders, configs):
        if not config.get("shard"):
            raise ValueError(f"{folder}: not a shard (it was run without --shard)")
        offset, total = parse_shard(config["shard"])
        if count is not None and total != count:
            raise ConfigMismatch(f"{folder} is shard {config['shard']}, the others are of {count}")
        if offset in offsets:
            raise ValueError(f"{offsets[offset]} and {folder} are both shard {config['shard']}")
        count, offsets[offset] = total, folder
    assert count is not None  # there is at least one folder
    out = Path(out)
    merged = dataclasses.replace(BenchConfig.from_file(folders[0] / "config.json"), shard=None)
    write_or_check(merged, out, force, first.get("model_name"))
    log = RecordLog(out / "records.jsonl")
    done = log.done
    for folder in folders:
        if (folder / "records.jsonl").exists():
            records = RecordLog(folder / "records.jsonl").records
            log.append(mark_done(done, [r for r in records if (r["image"], r["method"], r["metric"]) not in done]))
        _copy_maps(folder / "maps", out / "maps")
    return sorted(set(range(count)) - set(offsets))


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
