"""GPU check: every method on a device against the CPU float32 maps, with timings and host traffic.

Each method that needs no trained checkpoint (``--methods``; default all of them) explains the
first ``--photos`` imagenet-samples photos (target top1, seed ``--seed``, ``--batch`` photos an
``explain`` call) with its default parameters, once on the CPU at float32 (the reference) and on
``--device`` at every precision of ``--precisions`` (on CUDA float32 and float16 and bfloat16
autocast; the classifier's ``precision``, see :class:`maskscope.Classifier`). Both sides run
the model on the torch engine, so the device and the precision are all that differ. Per
method and precision the record holds:

* the maps' agreement with the CPU float32 map of the same photo and seed: per-photo Spearman
  over pixels (1 where the maps are equal), the largest absolute difference (also as a share
  of the reference map's range) and the goals met on each side and on both;
* the wall seconds per photo on the device and on the CPU, and their ratio;
* the host traffic of one ``explain`` call on the device at float32 (the first batch, run
  again under watch): copies between the host and the device and scalar reads (``.item()``,
  ``bool(t)``), with the lines of maskscope that made them, ops whose output size depends on
  the data (``nonzero``, boolean indexing: a sync on a GPU), the synchronisations CUDA's sync
  debug mode reports (``torch.cuda.set_sync_debug_mode("warn")``), and whether the model's
  weights stayed on the device;
* with ``--compile``, the float32 run again with the model under ``torch.compile`` (and on
  CUDA under its ``reduce-overhead`` mode, which records CUDA graphs), its time and maps
  against eager: whether it helps.

``--steps-scale 0.1`` runs a tenth of each method's ``steps`` (and ``samples``), for a quick
check. The record is rewritten after every method, so a run cut short keeps what it did.
The CPU reference can be made beforehand on any machine and read on the GPU machine, so the
GPU's time goes to the GPU runs::

    python benchmarks/speed/gpu_check.py --device cpu --cpu-only --maps gpu_check_maps \\
        --out benchmarks/results/speed/gpu_check/cpu.json
    python benchmarks/speed/gpu_check.py --cpu-results benchmarks/results/speed/gpu_check/cpu.json --compile
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
import traceback
import warnings
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from maskscope import Classifier
from maskscope.core.model.classifier import check_device
from maskscope.errors import MaskscopeError
from maskscope.methods import METHODS, get_method
from maskscope.metrics import spearman

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))


#: the precisions checked on each kind of device by default
DEFAULT_PRECISIONS = {"cuda": ("float32", "float16", "bfloat16"), "cpu": ("float32", "bfloat16"),
                      "mps": ("float32", "float16")}
#: the parameters ``--steps-scale`` scales: a method's optimisation steps and sampled masks
SCALED = ("steps", "samples")
#: what CUDA's sync debug mode says on each synchronising operation
SYNC_WARNING = "called a synchronizing CUDA operation"
#: ops whose output size depends on the data, so that a GPU must wait for the values
DATA_DEPENDENT_OPS = ("nonzero", "masked_select", "unique", "_unique", "_unique2", "unique_consecutive",
                      "unique_dim", "repeat_interleave", "masked_scatter")
#: ops that index with a list of tensors: a boolean one among them is a ``nonzero`` inside
MASK_INDEXING_OPS = ("index", "index_put", "index_put_", "_index_put_impl_")
#: torch.compile modes tried with ``--compile``: ``reduce-overhead`` records CUDA graphs
COMPILE_MODES = {"cuda": ("default", "reduce-overhead"), "cpu": ("default",), "mps": ("default",)}

ClassifierFactory = Callable[[str, str], Classifier]


def default_precisions(device: torch.device) -> tuple[str, ...]:
    """:data:`DEFAULT_PRECISIONS` of the device's kind, less bfloat16 on a GPU without it (before Ampere)."""
    precisions = DEFAULT_PRECISIONS[device.type]
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return tuple(p for p in precisions if p != "bfloat16")
    return precisions


def default_methods() -> list[str]:
    """Every registered method that needs no trained checkpoint."""
    return sorted(name for name, cls in METHODS.items() if not cls.needs_checkpoint)


def scaled_params(name: str, scale: float) -> dict[str, int]:
    """The parameters of :data:`SCALED` that ``name`` has, at ``scale`` of their defaults (at least 2)."""
    if scale == 1:
        return {}
    defaults = METHODS[name].defaults()
    return {key: max(2, round(defaults[key] * scale)) for key in SCALED if isinstance(defaults.get(key), int)}


def synchronise(device: torch.device) -> None:
    """Wait for the device's queued work, so the clock reads finished work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class MethodRun:
    """One method's maps (N×H×W, CPU float32), goals met (None: the method plays no game) and wall
    seconds per photo."""

    maps: torch.Tensor
    goals: list[bool | None]
    seconds_per_photo: float


def run_method(classifier: Classifier, name: str, images: torch.Tensor, params: dict[str, Any],
               seed: int = 0, batch: int = 1) -> MethodRun:
    """Explain ``images`` (already on the classifier's device) with method ``name``, ``batch``
    photos an ``explain`` call, target top1, and time it."""
    method = get_method(name, **params)
    maps: list[torch.Tensor] = []
    goals: list[bool | None] = []
    device = classifier.device
    synchronise(device)
    start = time.perf_counter()
    for first in range(0, len(images), batch):
        explanation = method.explain(classifier, images[first : first + batch], seed=seed)
        maps.append(explanation.saliency.detach().float().cpu())
        met = explanation.goal_met
        goals.extend([bool(g) for g in met] if met is not None else [None] * len(explanation))
    synchronise(device)
    return MethodRun(torch.cat(maps), goals, (time.perf_counter() - start) / len(images))


def map_spearman(reference: torch.Tensor, candidate: torch.Tensor) -> torch.Tensor:
    """Spearman over pixels of each pair of maps (N), 1 where the two maps are equal (a constant
    map has no ranks to correlate, so :func:`maskscope.metrics.spearman` gives it 0)."""
    rho = spearman(reference, candidate)
    equal = (reference == candidate).flatten(1).all(1)
    return torch.where(equal, torch.ones_like(rho), rho)


def compare_runs(reference: MethodRun, candidate: MethodRun) -> dict[str, Any]:
    """How the candidate's maps and goals agree with the reference's, photo by photo."""
    if reference.maps.shape != candidate.maps.shape:
        raise ValueError(f"maps of shape {tuple(candidate.maps.shape)} against {tuple(reference.maps.shape)}")
    rho = map_spearman(reference.maps, candidate.maps)
    difference = (reference.maps - candidate.maps).abs().flatten(1).max(1).values
    flat = reference.maps.flatten(1)
    span = (flat.max(1).values - flat.min(1).values).clamp_min(1e-12)
    record: dict[str, Any] = {
        "spearman": {"min": float(rho.min()), "mean": float(rho.mean()), "per_photo": rho.tolist()},
        "max_abs_diff": {"max": float(difference.max()), "per_photo": difference.tolist()},
        "max_abs_diff_of_range": {"max": float((difference / span).max()), "per_photo": (difference / span).tolist()},
    }
    if any(goal is not None for goal in reference.goals):
        pairs = list(zip(reference.goals, candidate.goals))
        record["goals_met"] = {"reference": sum(bool(a) for a, _ in pairs), "device": sum(bool(b) for _, b in pairs),
                               "both": sum(bool(a and b) for a, b in pairs), "photos": len(pairs),
                               "same_per_photo": all(a == b for a, b in pairs)}
    return record


def where_in_maskscope() -> str:
    """``file:line`` of the innermost frame of maskscope's own code on the stack (else the innermost frame)."""
    frames = traceback.extract_stack()[:-2]
    for frame in reversed(frames):
        path = frame.filename.replace("\\", "/")
        if "/maskscope/" in path and "/site-packages/torch/" not in path:
            return f"{path[path.rindex('/maskscope/') + 1 :]}:{frame.lineno}"
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"


def _is_mask_index(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.dtype in (torch.bool, torch.uint8)


class HostTraffic(TorchDispatchMode):
    """Counts, while active, what makes a device wait for the host or the host for the device:
    copies between the CPU and another device, scalar reads of a tensor (``.item()``, ``bool(t)``,
    ``float(t)``) and ops whose output size depends on the data; each with where in maskscope
    it happened. On a GPU, scalar reads and data-dependent ops of tensors kept on the host cost
    no wait and are left out; on a CPU every one is counted, as the syncs it would be if its
    tensor were on a GPU (a CPU run cannot tell which tensors a GPU run keeps on the host)."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        super().__init__()
        self.device = torch.device(device)
        self.to_device: Counter[str] = Counter()
        self.to_host: Counter[str] = Counter()
        self.scalar_reads: Counter[str] = Counter()
        self.data_dependent: Counter[str] = Counter()

    def _waits(self, tensor: Any) -> bool:
        """Whether an op reading ``tensor``'s values makes the host wait (see the class)."""
        return isinstance(tensor, torch.Tensor) and (self.device.type == "cpu" or tensor.device.type != "cpu")

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        op = func.overloadpacket.__name__
        if op == "_local_scalar_dense":
            if self._waits(args[0]):
                self.scalar_reads[where_in_maskscope()] += 1
        elif op in DATA_DEPENDENT_OPS or (op in MASK_INDEXING_OPS and any(map(_is_mask_index, args[1]))):
            if self._waits(args[0]):
                self.data_dependent[f"{op} at {where_in_maskscope()}"] += 1
        elif op in ("_to_copy", "copy_"):
            source, target = (args[0], out) if op == "_to_copy" else (args[1], args[0])
            if isinstance(source, torch.Tensor) and source.device.type != target.device.type:
                counter = self.to_host if target.device.type == "cpu" else self.to_device
                counter[where_in_maskscope()] += 1
        return out

    def record(self, top: int = 12) -> dict[str, Any]:
        """Totals and the ``top`` places of each count."""
        return {key: {"total": sum(counter.values()), "where": dict(counter.most_common(top))}
                for key, counter in (("to_device", self.to_device), ("to_host", self.to_host),
                                     ("scalar_reads", self.scalar_reads), ("data_dependent", self.data_dependent))}


def count_sync_warnings(caught: list[warnings.WarningMessage]) -> int:
    """How many of the caught warnings are CUDA's sync debug mode reporting a synchronisation."""
    return sum(SYNC_WARNING in str(warning.message) for warning in caught)


@contextmanager
def cuda_sync_warnings(device: torch.device) -> Iterator[list[warnings.WarningMessage] | None]:
    """On CUDA, the warnings raised while the sync debug mode warns on every synchronising
    operation; ``None`` elsewhere (a CPU does not synchronise)."""
    if device.type != "cuda":
        yield None
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            yield caught
        finally:
            torch.cuda.set_sync_debug_mode("default")


def model_on_device(classifier: Classifier, device: torch.device) -> bool:
    """Whether every weight and buffer of the classifier's module is on ``device``."""
    tensors = [*classifier.module.parameters(), *classifier.module.buffers()]
    return all(tensor.device.type == device.type for tensor in tensors)


def watch_host_traffic(classifier: Classifier, name: str, images: torch.Tensor, params: dict[str, Any],
                       seed: int = 0) -> dict[str, Any]:
    """One ``explain`` call of ``name`` on ``images`` (on the device) under :class:`HostTraffic` and,
    on CUDA, the sync debug mode: the counts per photo in the call, and whether the model stayed
    on the device."""
    device = classifier.device
    traffic = HostTraffic(device)
    with cuda_sync_warnings(device) as caught, traffic:
        get_method(name, **params).explain(classifier, images, seed=seed)
    record = {"photos": len(images), **traffic.record(),
              "cuda_syncs": None if caught is None else count_sync_warnings(caught),
              "model_on_device": model_on_device(classifier, device)}
    return record


def warm_up(classifier: Classifier, images: torch.Tensor) -> None:
    """One forward and backward pass, so the device's lazy start-up is not timed as a method's."""
    variable = images[:1].clone().requires_grad_(True)
    classifier.probabilities(variable).max().backward()
    synchronise(classifier.device)


def compiled(classifier: Classifier, mode: str, backend: str = "inductor") -> Classifier:
    """A copy of the classifier whose torch passes run its module under ``torch.compile``: whatever
    module its torch engine runs (the module itself, or a copy with its batch norms folded),
    compiled once. ``mode`` is inductor's (``default``, ``reduce-overhead``: CUDA graphs);
    another ``backend`` (``eager``: dynamo's tracing alone) takes none."""
    cache: dict[int, tuple[Callable, Callable]] = {}
    options = {"mode": mode} if backend == "inductor" else {}

    class Compiled(type(classifier)):  # type: ignore[misc]
        @property
        def torch_engine(self):
            engine = super().torch_engine
            module = engine.model
            if id(module) not in cache:  # the module is kept in the cache, so its id is not reused
                cache[id(module)] = (module, torch.compile(module, backend=backend, **options))
            engine.model = cache[id(module)][1]
            return engine

    copied = copy.copy(classifier)
    copied.__class__ = Compiled
    return copied


# ------------------------------------------------------------------------- the CPU reference
def save_maps(folder: Path, name: str, photos: list[str], run: MethodRun) -> None:
    """The run's maps as ``folder/name/PHOTO.npy``."""
    (folder / name).mkdir(parents=True, exist_ok=True)
    for photo, saliency in zip(photos, run.maps):
        np.save(folder / name / f"{photo}.npy", saliency.numpy())


def load_reference(record: dict[str, Any], name: str, photos: list[str], maps: Path) -> MethodRun:
    """Method ``name``'s CPU run from a ``--cpu-only`` record, its maps read from ``maps``."""
    cpu = record["methods"][name]["cpu"]
    stack = torch.stack([torch.from_numpy(np.load(maps / name / f"{photo}.npy")) for photo in photos])
    return MethodRun(stack.float(), cpu["goals"], cpu["seconds_per_photo"])


def check_reference(record: dict[str, Any], settings: dict[str, Any], methods: list[str]) -> None:
    """Refuse a CPU reference made with other photos, seed, batch, step scale or model, or one
    without a CPU run of every method asked for."""
    for key in ("photos", "seed", "batch", "steps_scale", "model"):
        if record["settings"][key] != settings[key]:
            raise SystemExit(f"--cpu-results was made with {key}={record['settings'][key]!r}, "
                             f"this run has {settings[key]!r}: rerun one of them to match")
    missing = [name for name in methods if "cpu" not in record["methods"].get(name, {})]
    if missing:
        raise SystemExit(f"--cpu-results holds no CPU run of {', '.join(missing)}: make one with --cpu-only --methods")


# ------------------------------------------------------------------------- the check
@dataclass
class Check:
    """The settings of one check; :meth:`run` fills :attr:`record` method by method."""

    make_classifier: ClassifierFactory
    images: torch.Tensor
    photos: list[str]
    methods: list[str]
    device: torch.device
    precisions: tuple[str, ...]
    model: str = "efficientnet-lite0"
    seed: int = 0
    batch: int = 1
    steps_scale: float = 1.0
    cpu_only: bool = False
    compile_modes: tuple[str, ...] = ()
    maps: Path | None = None
    reference: dict[str, Any] | None = None
    out: Path | None = None
    record: dict[str, Any] = field(default_factory=dict)

    def settings(self) -> dict[str, Any]:
        return {"device": str(self.device), "precisions": list(self.precisions), "photos": self.photos,
                "seed": self.seed, "batch": self.batch, "steps_scale": self.steps_scale, "model": self.model,
                "cpu_only": self.cpu_only, "compile": list(self.compile_modes),
                "maps": None if self.maps is None else str(self.maps), "engine": "torch"}

    def run(self, machine: dict[str, Any] | None = None) -> dict[str, Any]:
        settings = self.settings()
        if self.reference is not None:
            check_reference(self.reference, settings, self.methods)
        self.record = {"settings": settings, "machine": machine or {}, "methods": {},
                       "cpu_reference": "this run" if self.reference is None else self.reference.get("machine", {})}
        start = time.perf_counter()
        cpu = self.make_classifier("cpu", "float32") if self.reference is None else None
        if cpu is not None:
            warm_up(cpu, self.images)
        device_classifiers: dict[str, Classifier] = {}
        if not self.cpu_only:
            device_classifiers = {p: self.make_classifier(str(self.device), p) for p in self.precisions}
            on_device = self.images.to(self.device)
            for classifier in device_classifiers.values():
                warm_up(classifier, on_device)
        weights = self._weights()
        for index, name in enumerate(self.methods):
            entry = self._method(name, cpu, device_classifiers)
            self.record["methods"][name] = entry
            elapsed = time.perf_counter() - start
            done, left = sum(weights[m] for m in self.methods[: index + 1]), sum(weights[m] for m in self.methods[index + 1 :])
            self.record["total_seconds"] = elapsed
            self._write()
            print(f"[{index + 1}/{len(self.methods)}] {progress_line(name, entry)} | {elapsed:.0f} s elapsed, "
                  f"about {elapsed / done * left:.0f} s left", flush=True)
        return self.record

    def _weights(self) -> dict[str, float]:
        """Each method's share of the work, for the time estimate: its CPU seconds per photo where
        the reference gives them (the device runs' time follows it roughly), else equal shares."""
        if self.reference is None:
            return {name: 1.0 for name in self.methods}
        known = self.reference["methods"]
        return {name: max(known[name]["cpu"]["seconds_per_photo"], 1e-3) if name in known else 1.0
                for name in self.methods}

    def _method(self, name: str, cpu: Classifier | None, device_classifiers: dict[str, Classifier]) -> dict[str, Any]:
        params = scaled_params(name, self.steps_scale)
        entry: dict[str, Any] = {"params": params}
        try:
            reference = self._reference(name, cpu, params)
            entry["cpu"] = {"seconds_per_photo": reference.seconds_per_photo, "goals": reference.goals}
            if self.cpu_only:
                return entry
            on_device = self.images.to(self.device)
            eager = None
            for precision, classifier in device_classifiers.items():
                run = run_method(classifier, name, on_device, params, self.seed, self.batch)
                entry[precision] = {"seconds_per_photo": run.seconds_per_photo,
                                    "cpu_over_device": reference.seconds_per_photo / run.seconds_per_photo,
                                    "against_cpu_float32": compare_runs(reference, run)}
                eager = run if precision == "float32" else eager
            float32 = device_classifiers.get("float32")
            if float32 is not None:
                entry["host_traffic"] = watch_host_traffic(float32, name, on_device[: self.batch], params, self.seed)
                if eager is not None and self.compile_modes:
                    entry["compile"] = self._compiled(name, float32, on_device, params, reference, eager)
        except Exception as error:  # a failing method is a finding of the check: the others still run
            entry["error"] = "".join(traceback.format_exception_only(type(error), error)).strip()
            entry["traceback"] = traceback.format_exc()
            print(entry["traceback"], flush=True)
        return entry

    def _reference(self, name: str, cpu: Classifier | None, params: dict[str, Any]) -> MethodRun:
        if self.reference is not None:
            if self.maps is None:
                raise SystemExit("the CPU reference's maps folder is unknown: give --maps")
            return load_reference(self.reference, name, self.photos, self.maps)
        assert cpu is not None, "no CPU classifier and no CPU reference"
        run = run_method(cpu, name, self.images, params, self.seed, self.batch)
        if self.maps is not None:
            save_maps(self.maps, name, self.photos, run)
        return run

    def _compiled(self, name: str, classifier: Classifier, images: torch.Tensor, params: dict[str, Any],
                  reference: MethodRun, eager: MethodRun) -> dict[str, Any]:
        """The float32 run with the module compiled in each mode, against eager."""
        results: dict[str, Any] = {}
        for mode in self.compile_modes:
            try:
                fast = compiled(classifier, mode)
                start = time.perf_counter()
                run_method(fast, name, images[: self.batch], params, self.seed, self.batch)
                warm = time.perf_counter() - start
                run = run_method(fast, name, images, params, self.seed, self.batch)
            except Exception as error:  # a model or a loop that does not compile is what --compile asks about
                results[mode] = {"error": "".join(traceback.format_exception_only(type(error), error)).strip()}
                continue
            results[mode] = {"first_call_seconds": warm, "seconds_per_photo": run.seconds_per_photo,
                             "eager_over_compiled": eager.seconds_per_photo / run.seconds_per_photo,
                             "helps": run.seconds_per_photo < 0.95 * eager.seconds_per_photo,
                             "spearman_to_eager_min": float(map_spearman(eager.maps, run.maps).min()),
                             "against_cpu_float32": compare_runs(reference, run)}
        return results

    def _write(self) -> None:
        if self.out is not None:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.out.write_text(json.dumps(self.record, indent=2))


def progress_line(name: str, entry: dict[str, Any]) -> str:
    """One line on a method's entry: its times, agreement and host syncs."""
    if "error" in entry:
        return f"{name}: FAILED {entry['error']}"
    parts = [f"{name}: CPU {entry['cpu']['seconds_per_photo']:.2f} s/photo"]
    for key, value in entry.items():
        if isinstance(value, dict) and "against_cpu_float32" in value:
            agreement = value["against_cpu_float32"]
            goals = agreement.get("goals_met")
            met = f", goals {goals['device']}/{goals['photos']} (CPU {goals['reference']})" if goals else ""
            parts.append(f"{key} {value['seconds_per_photo']:.2f} s/photo ({value['cpu_over_device']:.1f}×), "
                         f"Spearman min {agreement['spearman']['min']:.3f}{met}")
    traffic = entry.get("host_traffic")
    if traffic:
        syncs = "" if traffic["cuda_syncs"] is None else f", CUDA syncs {traffic['cuda_syncs']}"
        parts.append(f"per call: scalar reads {traffic['scalar_reads']['total']}, "
                     f"host copies {traffic['to_device']['total']}+{traffic['to_host']['total']}{syncs}")
    return "; ".join(parts)


def main() -> None:
    from benchmarks.common.photos import imagenet_photos
    from benchmarks.common.records import machine

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="the device to check (cuda, cuda:N, mps, cpu)")
    parser.add_argument("--photos", type=int, default=16, help="imagenet-samples photos, the first N")
    parser.add_argument("--methods", default=",".join(default_methods()), help="comma-separated method names")
    parser.add_argument("--precisions", help="comma-separated; default float32,float16,bfloat16 on CUDA "
                        "(bfloat16 where the GPU has it), float32,bfloat16 on a CPU")
    parser.add_argument("--steps-scale", type=float, default=1.0, help="scale of each method's steps and samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=1, help="photos an explain call")
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--compile", action="store_true", help="also try torch.compile (and CUDA graphs on CUDA)")
    parser.add_argument("--cpu-only", action="store_true", help="run only the CPU reference (save it with --maps)")
    parser.add_argument("--cpu-results", type=Path, help="a --cpu-only record to read the CPU reference from")
    parser.add_argument("--maps", type=Path, help="folder of the CPU maps (.npy): written, or read with --cpu-results")
    parser.add_argument("--out", type=Path,
                        help="default benchmarks/results/speed/gpu_check.json (gpu_check/cpu.json with --cpu-only)")
    args = parser.parse_args()

    try:
        device = check_device("cpu" if args.cpu_only else args.device)
    except MaskscopeError as error:  # no such device here: one line, as the CLI says it
        raise SystemExit(f"gpu_check: {error}") from None
    reference = json.loads(args.cpu_results.read_text()) if args.cpu_results else None
    maps = args.maps or (Path(reference["settings"]["maps"]) if reference and reference["settings"]["maps"] else None)
    methods = args.methods.split(",")
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise SystemExit(f"unknown methods {unknown}; available: {', '.join(default_methods())}")
    precisions = tuple(args.precisions.split(",")) if args.precisions else default_precisions(device)
    out = args.out or Path("benchmarks/results/speed") / ("gpu_check/cpu.json" if args.cpu_only else "gpu_check.json")

    def make_classifier(where: str, precision: str) -> Classifier:
        return Classifier.default(args.model, device=where, engine="torch", precision=precision)

    names, images = imagenet_photos(make_classifier("cpu", "float32"), args.photos)
    check = Check(make_classifier, images, names, methods, device, precisions, model=args.model, seed=args.seed,
                  batch=args.batch, steps_scale=args.steps_scale, cpu_only=args.cpu_only,
                  compile_modes=COMPILE_MODES[device.type] if args.compile else (), maps=maps,
                  reference=reference, out=out)
    about = machine(device)
    if device.type == "cuda":
        about["gpu"] = torch.cuda.get_device_name(device)
    reference_runs = 0 if reference else 1
    runs = len(methods) * (reference_runs + (0 if args.cpu_only else len(precisions) + len(check.compile_modes)))
    where = "the CPU float32 reference" if args.cpu_only else f"{device} ({', '.join(precisions)})"
    print(f"{len(methods)} methods × {len(names)} photos on {where}: {runs} runs of each photo; writing {out}",
          flush=True)
    record = check.run(about)
    scale = "" if args.steps_scale == 1 else (
        f"; at --steps-scale 1 the step-bound methods take about {1 / args.steps_scale:.0f}× as long")
    print(f"done in {record['total_seconds']:.0f} s, record in {out}{scale}")


if __name__ == "__main__":
    main()
