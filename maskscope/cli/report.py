"""``maskscope report RUN_DIR [--out DIR]``: an HTML page of a bench run or an explain folder.

The page (``DIR/report.html``, default ``RUN_DIR/report/``) opens from disk with no network:
summary tables with intervals and counts, deletion and insertion curves, a gallery of every
map over its photo that can be filtered and sorted, the failed and skipped items, and the
configuration. Thumbnails are written beside it. Nothing in the run can run in the page (names
are escaped, links are relative files of the run, a Content-Security-Policy forbids the rest),
and ``--out`` never replaces a ``report.html`` that ``maskscope report`` did not write.
"""

from __future__ import annotations

import argparse
import sys

from maskscope.cli.errors import CommandError
from maskscope.errors import MaskscopeError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("report", help="an HTML report of a bench run or an explain folder",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a maskscope bench --out folder, or a maskscope explain --out folder")
    parser.add_argument("--out", help="folder of the page and its thumbnails (default: RUN_DIR/report); "
                        "a report.html there that maskscope report did not write is never replaced")
    parser.add_argument("--quiet", action="store_true", help="no progress")


def run(args: argparse.Namespace) -> int:
    from maskscope.report import write_report

    try:
        page = write_report(args.run_dir, args.out, progress=not args.quiet)
    except MaskscopeError as error:
        raise CommandError(str(error)) from error
    print(f"wrote {page}", file=sys.stderr)
    return 0
