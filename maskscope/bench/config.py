"""A benchmark's configuration: what is run (compared on resume) and where it ran (recorded)."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from maskscope.bench.folder import check_unclaimed, read_run_config, remove_run_files
from maskscope.bench.scoring import with_default_protocol
from maskscope.core.atomic import atomic_path
from maskscope.core.model.spec import (
    DEFAULT_DEVICE,
    DEFAULT_ENGINE,
    DEFAULT_MODEL,
    DEFAULT_PRECISION,
    ModelSpec,
    spec_value,
)
from maskscope.errors import MaskscopeValueError

#: Keys that decide the records; resuming a run needs them unchanged.
IDENTITY_KEYS = ("dataset", "methods", "metrics", "params", "seed", "limit", "target", "model", "precision", "shard",
                 "checkpoint", "mean", "std", "size", "class_names")
#: images explained and scored together unless told
IMAGES_PER_BATCH = 4
#: keys of configurations written before a rename → what the key is now (docs/vocabulary.md); a file
#: that holds one is refused with a line naming the new key, so no value changes meaning silently
RENAMED_KEYS = {"score_batch_size": "batch_size (perturbed images per forward pass), and the old batch_size "
                "(images per batch) is now images_per_batch"}


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
        images_per_batch: images explained and scored together (one call of a method, one
            task of a worker).
        batch_size: perturbed images per forward pass when scoring curves; ``None``: the
            device's default (:func:`~maskscope.core.scoring.perturbations.default_batch_size`,
            8 on a CPU, 64 on a GPU), as every metric's.
        device: where the classifier runs.
        precision: the classifier's forward passes (``float32``, ``bfloat16``, ``float16``, ``int8``,
            ``fast``).
        engine: where the passes that need no gradient run (``torch``, ``onnxruntime``,
            ``openvino``, ``auto``); not part of the identity, as every engine gives the same
            float32 scores within 1e-4.
        shard: ``"K/N"``: only every N-th of the images from the K-th (counting from 0), for
            runs split over the jobs of a scheduler and merged afterwards; ``None``: all of them.
        calibration: photos ``int8`` is calibrated on (a folder or a file); ``None``: the first
            images the classifier runs. Not part of the identity, as ``engine``.
        checkpoint, mean, std, size, class_names: the model's weights file (``timm:``,
            ``torchvision:``), normalisation, input size ``[height, width]`` and class-names file
            where they were given (``None``: the model's own); see
            :class:`~maskscope.core.model.spec.ModelSpec`. Part of the identity: they change the scores.

    The model's defaults are :class:`~maskscope.core.model.spec.ModelSpec`'s; :meth:`model_spec`
    is the classifier the run loads.
    """

    dataset: str
    methods: list[str]
    metrics: list[str]
    params: dict = field(default_factory=dict)
    seed: int = 0
    limit: int | None = None
    target: str = "top1"
    model: str = DEFAULT_MODEL
    images_per_batch: int = IMAGES_PER_BATCH
    batch_size: int | None = None
    device: str = DEFAULT_DEVICE
    precision: str = DEFAULT_PRECISION
    shard: str | None = None
    engine: str = DEFAULT_ENGINE
    calibration: str | None = None
    checkpoint: str | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    size: list[int] | None = None
    class_names: str | None = None

    def __post_init__(self) -> None:
        self.metrics = [with_default_protocol(spec) for spec in self.metrics]
        for key in ("mean", "std", "size"):  # kept as JSON writes them back, so that a resumed run compares equal
            value = getattr(self, key)
            setattr(self, key, None if value is None else list(spec_value(key, value)))

    def model_spec(self) -> ModelSpec:
        """The classifier the run loads."""
        return ModelSpec.from_values(**{key: getattr(self, key) for key in MODEL_KEYS})

    @staticmethod
    def model_fields(spec: ModelSpec) -> dict:
        """The fields of a configuration that hold ``spec`` (:meth:`model_spec` gives it back)."""
        return {key: getattr(spec, key) for key in MODEL_KEYS}

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
        """Read a JSON file with the same keys; ``overrides`` (not None) win.

        Raises:
            MaskscopeValueError: the file cannot be read, is empty, is not a JSON object, or has
                an unknown key, a renamed key (:data:`RENAMED_KEYS`), a missing key or a value of
                the wrong type (the message names the file).
        """
        try:
            text = Path(path).read_text(encoding="utf-8")
            data = json.loads(text) if text.strip() else None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise MaskscopeValueError(f"{path}: cannot read the configuration ({error})") from error
        if not isinstance(data, dict):
            what = "it is empty" if data is None else f"a JSON object is needed, not {type(data).__name__}"
            raise MaskscopeValueError(f"{path}: not a bench configuration ({what})")
        renamed = [f"{key} is now {now}" for key, now in RENAMED_KEYS.items() if key in data]
        if renamed:
            raise MaskscopeValueError(f"{path}: {'; '.join(renamed)}: rename them (docs/vocabulary.md)")
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known - RECORDED_KEYS
        if unknown:
            raise MaskscopeValueError(f"{path}: unknown configuration keys {sorted(unknown)}")
        data = {key: value for key, value in data.items() if key in known}
        data.update({key: value for key, value in overrides.items() if value is not None})
        missing = [key for key in ("dataset", "methods", "metrics") if key not in data]
        if missing:
            raise MaskscopeValueError(f"{path}: no {', '.join(missing)} (in the file or as options)")
        for key, value in data.items():
            if not _has_type(value, FIELD_TYPES[key]):
                raise MaskscopeValueError(f"{path}: {key} must be {FIELD_TYPES[key][1]}, not {value!r}")
        return cls(**data)


#: the fields that hold the :class:`~maskscope.core.model.spec.ModelSpec`, named as its own
MODEL_KEYS = ("model", "device", "engine", "precision", "calibration", "checkpoint", "mean", "std", "size", "class_names")
#: keys ``config.json`` records besides the configuration
RECORDED_KEYS = {"versions", "threads", "started", "model_name", "command"}
#: each field's check and its description, for files read by :meth:`BenchConfig.from_file`
FIELD_TYPES = {
    "dataset": ("str", "a string"), "methods": ("strs", "a list of strings"), "metrics": ("strs", "a list of strings"),
    "params": ("params", "an object of objects ({method: {key: value}})"), "seed": ("int", "an integer"),
    "limit": ("int?", "an integer or null"), "target": ("str", "a string"), "model": ("str", "a string"),
    "images_per_batch": ("int", "an integer"), "batch_size": ("int?", "an integer or null"),
    "device": ("str", "a string"), "precision": ("str", "a string"), "shard": ("str?", "a string or null"),
    "engine": ("str", "a string"), "calibration": ("str?", "a string or null"),
    "checkpoint": ("str?", "a string or null"), "mean": ("numbers?", "a list of numbers or null"),
    "std": ("numbers?", "a list of numbers or null"), "size": ("numbers?", "a list [height, width] or null"),
    "class_names": ("str?", "a string or null"),
}


def _has_type(value, kind: tuple[str, str]) -> bool:
    check = kind[0]
    if check.endswith("?"):
        if value is None:
            return True
        check = check[:-1]
    if check == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if check == "str":
        return isinstance(value, str)
    if check == "strs":
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    if check == "numbers":
        return isinstance(value, (list, tuple)) and all(isinstance(item, (int, float)) and not isinstance(item, bool)
                                               for item in value)
    return isinstance(value, dict) and all(isinstance(item, dict) for item in value.values())


def check_claim(config: BenchConfig, out: str | os.PathLike, force: bool = False) -> dict | None:
    """The ``config.json`` of the run in ``out`` (``None`` for none) if ``config`` may run there:
    the same settings, or ``force``; the errors of :func:`write_or_check` otherwise. Writes nothing."""
    out = Path(out)
    previous = read_run_config(out)
    if previous is None:
        check_unclaimed(out)
    elif not force:
        current = json.loads(json.dumps(config.identity()))
        # a key missing from an older run's file had its default then
        changed = [key for key in IDENTITY_KEYS if previous.get(key, getattr(BenchConfig, key, None)) != current[key]]
        if changed:
            raise ConfigMismatch(
                f"{out} holds a run with a different configuration ({', '.join(changed)} differ); "
                "use another --out, or --force to start it afresh"
            )
    return previous


def write_or_check(config: BenchConfig, out: Path, force: bool = False, model_name: str | None = None,
                   command: str = "bench") -> None:
    """Make ``out`` the run of ``config``: resume the same run, or write ``out/config.json`` (with the
    classifier's ``model_name`` and the ``command`` that writes the run).

    With ``force``, a run of other settings in ``out`` is started afresh: the files it wrote
    are deleted (:func:`~maskscope.bench.folder.remove_run_files`), nothing else.

    Raises:
        ConfigMismatch: the existing run differs (the message lists the keys) and not ``force``.
        RunFolderError: ``out`` holds a run's files without a run's ``config.json``, or a
            ``config.json`` that is not a run's.
    """
    out = Path(out)
    previous = check_claim(config, out, force)
    if previous is not None and not force:
        return
    if previous is not None:
        remove_run_files(out, previous)
    out.mkdir(parents=True, exist_ok=True)
    resolved = {**config.resolved(), "model_name": model_name, "command": command}
    with atomic_path(out / "config.json") as temporary:
        temporary.write_text(json.dumps(resolved, indent=2) + "\n")
