"""Benchmarks: methods × metrics × dataset, one JSON record per (image, method, metric), resumable."""

from maskscope.bench.config import BenchConfig, ConfigMismatch
from maskscope.bench.folder import RunFolderError, RunLocked, RunStopped
from maskscope.bench.records import RecordLog
from maskscope.bench.runner import evaluate_maps, run_bench
from maskscope.bench.summary import summarise

__all__ = ["BenchConfig", "ConfigMismatch", "RecordLog", "RunFolderError", "RunLocked", "RunStopped", "evaluate_maps",
           "run_bench", "summarise"]
