"""Progress reporting: a tqdm bar on a terminal, plain periodic lines anywhere else.

Every long loop in maskscope reports progress through :func:`progress_bar`. When standard error
is a terminal it is a ``tqdm`` bar; when it is redirected to a file or a pipe (a log, CI, a
cluster job) a bar would write a carriage-return frame per update, so instead an outer loop
(``leave=True``) prints one line ``desc: n/total unit (p%) elapsed s`` at most every
``interval`` seconds and one when it ends (unless its last line already said the same), and an
inner loop (``leave=False``) prints nothing. A long method shows one bar for its whole run
(:func:`maskscope.core.optimisation.descent.optimise_masks` takes an existing bar to advance), so
its lines come at most every :data:`INTERVAL` seconds whatever the loops inside. A loop whose
single step can take minutes (``bench``'s batches) keeps its reporter alive with
:func:`kept_alive`, which redraws it every :data:`INTERVAL` seconds while the step runs.

The terminal bar is plain ``tqdm``: ``tqdm.auto`` would warn on import in a notebook without
``ipywidgets`` (a notebook's stderr is not a terminal anyway, so it gets the plain lines).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Sized
from typing import Iterable, Iterator, Protocol

#: seconds between two plain progress lines (read when a reporter is made)
INTERVAL = 30.0


class Progress(Protocol):
    """What a long loop calls on its reporter: a tqdm bar or a :class:`PlainProgress`."""

    def update(self, n: int = 1) -> object: ...

    def set_postfix(self, **values) -> object: ...

    def close(self) -> None: ...


class PlainProgress:
    """The part of tqdm's interface maskscope uses (iterate, ``update``, ``set_postfix``, ``close``), as lines."""

    def __init__(self, iterable: Iterable | None = None, total: int | None = None, desc: str = "",
                 unit: str = "it", leave: bool = True, interval: float | None = None, stream=None) -> None:
        self.iterable = iterable
        self.total = total if total is not None else (len(iterable) if isinstance(iterable, Sized) else None)
        self.desc, self.unit, self.leave = desc, unit, leave
        self.interval = INTERVAL if interval is None else interval
        self.stream = stream if stream is not None else sys.stderr
        self.count = 0
        self.started = self.last = time.monotonic()
        self.closed = False
        self.postfix = ""
        self.printed: tuple[int, str] | None = None  # the count and postfix of the last line printed

    def __iter__(self) -> Iterator:
        if self.iterable is None:
            raise TypeError("a progress bar made without an iterable cannot be iterated (use update)")
        for value in self.iterable:
            yield value
            self.update(1)
        self.close()

    def update(self, n: int = 1) -> None:
        self.count += n
        now = time.monotonic()
        moved = self.printed is None or self.printed[0] != self.count
        if self.leave and moved and now - self.last >= self.interval:
            self.last = now
            self._line(now)

    def refresh(self) -> None:
        """Print the current line when none came for ``interval`` seconds (the loop is alive)."""
        now = time.monotonic()
        if self.leave and not self.closed and now - self.last >= self.interval:
            self.last = now
            self._line(now)

    def set_postfix(self, **values) -> None:
        self.postfix = ", ".join(f"{key}={value}" for key, value in values.items())

    def close(self) -> None:
        if not self.closed and self.leave and self.printed != (self.count, self.postfix):
            self._line(time.monotonic())
        self.closed = True

    def _line(self, now: float) -> None:
        self.printed = (self.count, self.postfix)
        share = f"/{self.total} {self.unit} ({self.count / self.total:.0%})" if self.total else f" {self.unit}"
        postfix = f" {self.postfix}" if self.postfix else ""
        print(f"{self.desc}: {self.count}{share} {now - self.started:.0f} s{postfix}", file=self.stream, flush=True)

    def __enter__(self) -> "PlainProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Silent(PlainProgress):
    def __init__(self, iterable=None, total=None, **_) -> None:
        super().__init__(iterable, total, leave=False)


@contextlib.contextmanager
def kept_alive(bar, interval: float | None = None) -> Iterator:
    """While the block runs, redraw ``bar`` (its ``refresh``: a tqdm bar's elapsed time, a
    :class:`PlainProgress` line) every ``interval`` seconds (default :data:`INTERVAL`) from a
    daemon thread, so that a step of many minutes still shows the run is working."""
    period = INTERVAL if interval is None else interval
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(period):
            bar.refresh()

    thread = threading.Thread(target=beat, name="maskscope-progress", daemon=True)
    thread.start()
    try:
        yield bar
    finally:
        stop.set()
        thread.join()


def progress_bar(iterable: Iterable | None = None, total: int | None = None, desc: str = "", unit: str = "it",
             disable: bool = False, leave: bool = True):
    """A progress reporter over ``iterable`` (or updated by hand up to ``total``).

    A tqdm bar when stderr is a terminal, else a :class:`PlainProgress`; nothing at all when
    ``disable``.
    """
    if disable:
        return _Silent(iterable, total)
    if sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave)
    return PlainProgress(iterable, total, desc, unit, leave)
