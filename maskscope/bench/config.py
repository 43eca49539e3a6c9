"""A benchmark's configuration: what is run (compared on resume) and where it ran (recorded)."""

from __future__ import annotations

import json
import os
import platform
import shutil
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from maskscope.bench.scoring import with_default_protocol
from maskscope.errors import MaskscopeValueError

#: Keys that decide the records; resuming a run needs them unchanged.
IDENTITY_KEYS = ("dataset", "methods", "metrics", "params", "seed", "limit", "target", "model", "precision", "shard")


class ConfigMismatch(MaskscopeValueError):
    """The output folder holds a run with a different configuration."""


@dataclass
class BenchConfig:
    """What a benchmark runs.

    Attributes:
        dataset: the dataset spec (a name or a folder).
        methods: method registry names (or, for ``evaluate``, the maps' name).
        metrics: ``deletion:<protocol>``, ``insertion:<protocol>``, ``pointing``,
            ``weak_localisation``, ``segmentation``; a bare ``deletion`` or ``insertion`` is
            stored with its default protocol named (``deletion:rise``).
        params: per-method parameters, ``{method: {key: value}}``.
        seed: seed passed to every method.
        limit: the first ``limit`` images (all for ``None``).
        target: ``"top1"`` (the classifier's top class) or ``"label"`` (the dataset's label).
        model: the classifier's name.
        batch_size: images explained and scored together.
        score_batch_size: perturbed images per forward pass when scoring curves (8 is fastest
            for the default model on CPU; a GPU wants more).
        device: where the classifier runs.
        precision: the classifier's forward passes (``float32``, ``bfloat16``, ``float16``, ``int8``,
            ``fast``).
        engine: where the passes that need no gradient run (``torch``, ``onnxruntime``,
            ``openvino``, ``auto``); not part of the identity, as every engine gives the same
            float32 scores within 1e-4.
        shard: ``"K/N"``: only every N-th of the images from the K-th (counting from 0), for
            runs split over the jobs of a scheduler and merged afterwards; ``None``: all of them.
    """

    dataset: str
    methods: list[str]
    metrics: list[str]
    params: dict = field(default_factory=dict)
    seed: int = 0
    limit: int | None = None
    target: str = "top1"
    model: str = "default"
    batch_size: int = 4
    score_batch_size: int = 8
    device: str = "cpu"
    precision: str = "float32"
    shard: str | None = None
    engine: str = "auto"

    def __post_init__(self) -> None:
        self.metrics = [with_default_protocol(spec) for spec in self.metrics]

    def identity(self) -> dict:
        data = asdict(self)
        return {key: data[key] for key in IDENTITY_KEYS}

    def resolved(self) -> dict:
        """The configuration plus versions, thread count and start time, as written to ``config.json``."""
        import maskscope

        return {
            **asdict(self),
            "versions": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "numpy": np.__version__,
                "maskscope": getattr(maskscope, "__version__", "unknown"),
            },
            "threads": torch.get_num_threads(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    @classmethod
    def from_file(cls, path: str | os.PathLike, **overrides) -> "BenchConfig":
        """Read a JSON file with the same keys; ``overrides`` (not None) win."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: cannot read the configuration ({error})") from error
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known - {"versions", "threads", "started", "model_name"}
        if unknown:
            raise ValueError(f"{path}: unknown configuration keys {sorted(unknown)}")
        data = {key: value for key, value in data.items() if key in known}
        data.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**data)


def write_or_check(config: BenchConfig, out: Path, force: bool = False, model_name: str | None = None) -> None:
    """Write ``out/config.json`` (with the classifier's ``model_name``); refuse an existing, different run.

    Raises:
        ConfigMismatch: the existing run differs (the message lists the keys) and not ``force``.
    """
    path = out / "config.json"
    if path.exists() and not force:
        previous = json.loads(path.read_text())
        current = json.loads(json.dumps(config.identity()))
        # a key missing from an older run's file had its default then
        changed = [key for key in IDENTITY_KEYS if previous.get(key, getattr(BenchConfig, key, None)) != current[key]]
        if changed:
            raise ConfigMismatch(
                f"{out} holds a run with a different configuration ({', '.join(changed)} differ); "
                "use another --out, or --force to start it afresh"
            )
        return
    if force:
        for name in ("records.jsonl", "summary.csv", "summary.md", "curves.png"):
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / "maps", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**config.resolved(), "model_name": model_name}, indent=2) + "\n")
