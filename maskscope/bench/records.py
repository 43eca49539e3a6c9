"""``records.jsonl``: one JSON object a line, appended and synced to disk after each batch.

A run killed mid-write (``kill -9``) can leave a partial last line; :class:`RecordLog`
drops it and truncates the file to the last complete line, so a resumed run appends after
whole records only.

A failed record says whose failure it was (``"failure"``): the image's (``"image"``: it
cannot be read, the method or metric raised on it, its target is unusable) or the
environment's (``"environment"``: an ``OSError``, memory running out, a lost worker). A
resumed run makes the environment's failures again and keeps the image's, so one
(image, method, metric) can have several lines: the latest one wins, and
:attr:`RecordLog.records` holds that one only. Records written before the field existed
count as the environment's when their reason says so (an ``[Errno …]``, out of memory, a
worker that died), else as the image's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from maskscope.errors import MaskscopeValueError

Triple = tuple[str, str, str]
#: keys every record has, each a string
REQUIRED = ("image", "method", "metric", "status")
#: substrings of an old record's reason that tell an environment's failure
ENVIRONMENT_REASONS = ("[Errno", "out of memory", "MemoryError", "worker died")


def failure_kind(record: dict) -> str | None:
    """``"image"`` or ``"environment"`` for a failed record; ``None`` for any other."""
    if record["status"] != "failed":
        return None
    if record.get("failure") in ("image", "environment"):
        return record["failure"]
    reason = str(record.get("reason", ""))
    return "environment" if any(text in reason for text in ENVIRONMENT_REASONS) else "image"


class RecordLog:
    """Append-only record file at ``path``; reading it repairs a truncated last line.

    Attributes:
        records: the latest record of each (image, method, metric), in the order each
            triple first appeared.
        lines: how many records the file holds (with the ones later ones replaced).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._latest: dict[Triple, dict] = {}
        self.lines = 0
        for record in self._read_and_repair():
            self._add(record)

    @property
    def records(self) -> list[dict]:
        return list(self._latest.values())

    @property
    def done(self) -> set[Triple]:
        """Every triple with a record."""
        return set(self._latest)

    def settled(self, retry_failed: bool = False) -> set[Triple]:
        """The triples a resumed run keeps: all but the environment's failures (and, with
        ``retry_failed``, the image's failures too)."""
        return {triple for triple, record in self._latest.items()
                if failure_kind(record) is None or (failure_kind(record) == "image" and not retry_failed)}

    def append(self, records: list[dict]) -> None:
        """Write ``records`` (one line each), flush and fsync."""
        if not records:
            return
        text = "".join(json.dumps(record, sort_keys=True) + "\n" for record in records)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        for record in records:
            self._add(record)

    def _add(self, record: dict) -> None:
        self._latest[(record["image"], record["method"], record["metric"])] = record
        self.lines += 1

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
        for number, line in enumerate(data[:good_end].decode("utf-8", errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            records.append(parse_record(line, f"{self.path}:{number}"))
        return records


def parse_record(line: str, where: str) -> dict:
    """The record on ``line`` (``where``: its file and line number): a JSON object with the
    :data:`REQUIRED` keys as strings; anything else is a one-line error naming ``where``."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise MaskscopeValueError(f"{where}: not a JSON record ({error}); fix or delete the line") from error
    if not isinstance(record, dict):
        raise MaskscopeValueError(f"{where}: a record is a JSON object, not {type(record).__name__}; fix or delete the line")
    missing = [key for key in REQUIRED if not isinstance(record.get(key), str)]
    if missing:
        raise MaskscopeValueError(f"{where}: the record lacks {', '.join(missing)} (text); a bench record has "
                                  f"{', '.join(REQUIRED)}; fix or delete the line")
    return record
