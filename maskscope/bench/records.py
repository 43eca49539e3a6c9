"""``records.jsonl``: one JSON object a line, appended and synced to disk after each batch.

A run killed mid-write (``kill -9``) can leave a partial last line; :class:`RecordLog`
drops it and truncates the file to the last complete line, so a resumed run appends after
whole records only. ``done`` is the set of (image, method, metric) triples already written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


class RecordLog:
    """Append-only record file at ``path``; reading it repairs a truncated last line."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.records: list[dict] = self._read_and_repair()

    @property
    def done(self) -> set[tuple[str, str, str]]:
        return {(r["image"], r["method"], r["metric"]) for r in self.records}

    def append(self, records: list[dict]) -> None:
        """Write ``records`` (one line each), flush and fsync."""
        if not records:
            return
        text = "".join(json.dumps(record, sort_keys=True) + "\n" for record in records)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        self.records.extend(records)

    def _read_and_repair(self) -> list[dict]:
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        good_end = data.rfind(b"\n") + 1
        if good_end < len(data):
            with self.path.open("r+b") as handle:
                handle.truncate(good_end)
                handle.flush()
                os.fsync(handle.fileno())
        records = []
        for number, line in enumerate(data[:good_end].decode("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"{self.path}:{number}: not a JSON record ({error})") from error
        return records
