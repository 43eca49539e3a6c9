"""Atomic writes: a file (or folder) appears at its path whole or not at all.

:func:`atomic_path` hands out a temporary path beside the destination, inside a hidden
temporary folder of the destination's folder, under the destination's own name (so writers
that look at the name or add a suffix, such as ``np.save``, behave as for the real path). When
the block ends without an error the entry is renamed onto the destination with
``os.replace`` — atomic within one file system — and the temporary folder is removed in any
case, so an interrupted or failed write leaves neither half a file nor a stray one beside it.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path to write ``path``'s content to (a file or a folder), renamed onto ``path`` at the end.

    The destination's folder is made if it is missing. ``os.replace`` replaces an existing
    file; onto an existing non-empty folder it raises ``OSError``, as does a failed write.

    Example::

        with atomic_path(out / "map.npy") as temporary:
            np.save(temporary, array)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent) as folder:
        temporary = Path(folder) / path.name
        yield temporary
        os.replace(temporary, path)


def remove_leftovers(path: str | os.PathLike) -> None:
    """Remove the temporary folders that :func:`atomic_path` left for ``path`` when its writer was
    killed (``.NAME.*.tmp`` beside it); call it before writing ``path`` again in a resumed run."""
    path = Path(path)
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        shutil.rmtree(leftover, ignore_errors=True)
