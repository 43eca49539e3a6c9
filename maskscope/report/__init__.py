"""The HTML report of a ``bench`` run or an ``explain`` folder: ``write_report(run_dir, out)``."""

from maskscope.report.page import write_report

__all__ = ["write_report"]
