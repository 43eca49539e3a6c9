"""Where the optimisation methods spend their time: each method at its defaults against the
floor of its own model passes, and a profile of everything else.

For each method (``--methods``, default MP, MP-G, FGVis, I-GOS, iGOS++ and EP) this runs
``get_method(name).explain(classifier, images, seed=0)`` at the method's defaults on the first
``--photos`` imagenet-samples photos and records:

* **wall** seconds and the **steps** run: the calls of the step rule (Adam, normalised SGD,
  momentum SGD, the Armijo line search), one per iteration of the optimisation loop, over
  every loop the method runs (FGVis's λ rounds, EP's chunks of rows);
* **every model pass**: a thin wrapper installed on this classifier object's ``logits`` (the
  one door every method and metric goes through; the package is not changed) notes each
  call's batch shape, whether it is a **gradient pass** (autograd on and the input requiring a
  gradient: forward here, backward in ``torch.autograd.grad``) or a **no-gradient pass**, and
  the engine a no-gradient pass ran on (``torch`` when the module has forward hooks, such as
  FGVis's defense, or when the engine is torch);
* the **floor**: the same passes replayed alone, with the same batch shapes, on a recorded
  input of each shape: a forward and a backward with respect to the input for the gradient
  passes, a no-gradient forward (inside ``Classifier.forward_only``) on the engine the pass ran
  on for the others. ``--replay N`` times at most N passes of each (kind, shape, engine) after
  one untimed pass and scales their mean to the count (0 replays every pass). **overhead** =
  wall − floor;
* a **profile** (``torch.profiler``, CPU) of ``--profile-steps`` steps of a second run after
  ``--skip-steps`` steps, which is stopped once the window is over. The window runs from the
  end of one step-rule call to the end of another, so it holds whole loop iterations (the work
  before the first step, such as MP's disc search, is outside it; its passes are in the count
  above). Every profiled operator's self time goes to one category:

  - ops under the ``record_function`` this script puts around ``Classifier.logits`` are the
    model (its forward for gradient passes, or the whole no-gradient pass; this includes the
    normalisation and output check that ``logits`` does);
  - a backward op is found by its ``autograd::engine::evaluate_function`` ancestor, whose
    sequence number is that of the forward op it differentiates (of the forward ops that
    share a number, the last to start: an op that makes no graph node does not move the
    counter): it takes that forward op's category, model forward becoming **model backward**. Where no forward op of that number
    was profiled, the node's type decides (convolution, batch norm, hardtanh, pooling, linear
    and the other node types of :data:`MODEL_BACKWARD_NODES` are model backward, anything
    else "other backward");
  - ``item``, ``_local_scalar_dense``, ``nonzero`` and ``is_nonzero`` are **host syncs**
    wherever they run;
  - any other op takes the innermost label this script puts (with ``record_function``, for
    the run only) around the package's functions: upsampling, blur, jitter/padding,
    filler/blend, inpainting, regulariser, optimiser update, line search, λ1 schedule, stop
    rule, path noise, defense hooks, perturbation and objective glue (:data:`LABELS`);
  - a label's self time (Python between its ops) counts to it; the time in the window
    outside any profiled op is "untraced Python (loop glue)".

  The profiler slows small ops more than large ones, so its shares describe the overhead's
  make-up; the overhead's size is the unprofiled wall − floor.

Run every method on the shared machine one at a time; each run updates its methods' entries
in the JSON and keeps the others (``--fresh`` starts it anew, ``--profile-only`` redoes only the
profile of a method already measured, ``--threads`` sets torch's threads: on a loaded machine
two threads wait for each other and one is much faster). ``PYTHONPATH`` picks the code profiled::

    PYTHONPATH=/work/old python benchmarks/speed/optimisation_profile.py --methods mp --threads 1 --replay 20
    python benchmarks/speed/optimisation_profile.py --table    # the docs' table from the JSON
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import defaultdict
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch.profiler import ProfilerActivity, profile, record_function

import maskscope
from maskscope import Classifier
from maskscope.methods import get_method

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.layout import import_module
from benchmarks.common.photos import imagenet_photos
from benchmarks.common.records import machine, write_record

METHODS = ("mp", "mp-g", "fgvis", "igos", "igos++", "ep")
OUT = Path("benchmarks/results/speed/optimisation_profile.json")

#: the package's step rules: one ``step`` call per iteration of the optimisation loop
STEP_RULES = (
    ("maskscope.core.optimisation.descent", "Adam"),
    ("maskscope.core.optimisation.descent", "NormalisedSGD"),
    ("maskscope.core.optimisation.descent", "MomentumSGD"),
    ("maskscope.core.optimisation.line_search", "ArmijoLineSearch"),
)

#: (module, function or Class.method, category): the package code labelled during the profile
LABELS = (
    ("maskscope.core.perturbation.masks", "Upsampler.__call__", "upsampling"),
    ("maskscope.core.perturbation.masks", "BinarisedUpsampler.__call__", "upsampling"),
    ("maskscope.core.perturbation.masks", "SmoothMaxUpsampler.__call__", "upsampling"),
    ("maskscope.core.perturbation.masks", "SmoothMaxUpsampler.full", "upsampling"),
    ("maskscope.core.perturbation.blur", "gaussian_blur", "blur"),
    ("maskscope.core.perturbation.jitter", "translate", "jitter/padding"),
    ("maskscope.core.perturbation.jitter", "Jitter.draw", "jitter/padding"),
    ("maskscope.core.perturbation.jitter", "AlternateFlip.draw", "jitter/padding"),
    ("maskscope.core.perturbation.fillers", "Filler.__call__", "filler/blend"),
    ("maskscope.core.perturbation.fillers", "blend", "filler/blend"),
    ("maskscope.core.perturbation.inpainters", "Inpainter.fill", "inpainting"),
    ("maskscope.core.optimisation.regularisers", "l1", "regulariser"),
    ("maskscope.core.optimisation.regularisers", "total_variation", "regulariser"),
    ("maskscope.core.optimisation.regularisers", "area_target", "regulariser"),
    ("maskscope.core.optimisation.regularisers", "area_bounds", "regulariser"),
    ("maskscope.core.optimisation.regularisers", "bilateral_total_variation", "regulariser"),
    ("maskscope.core.optimisation.descent", "Adam.step", "optimiser update"),
    ("maskscope.core.optimisation.descent", "NormalisedSGD.step", "optimiser update"),
    ("maskscope.core.optimisation.descent", "MomentumSGD.step", "optimiser update"),
    ("maskscope.core.optimisation.line_search", "ArmijoLineSearch.step", "line search"),
    ("maskscope.core.optimisation.directions", "IntegratedGradient._noise", "path noise"),
    ("maskscope.core.optimisation.directions", "IntegratedGradient.__call__", "objective glue"),
    ("maskscope.core.optimisation.descent", "Gradient.__call__", "objective glue"),
    ("maskscope.core.optimisation.games", "MaskProblem.perturb", "perturbation glue"),
    ("maskscope.core.model.defense", "AdversarialDefense._after_activation", "defense hooks"),
    ("maskscope.core.model.defense", "AdversarialDefense._start_pass", "defense hooks"),
    ("maskscope.core.model.defense", "AdversarialDefense._end_pass", "defense hooks"),
    ("maskscope.methods.fgvis", "FGVis.decision_changed", "stop rule"),
    ("maskscope.methods.igos", "L1Relaxation.__call__", "λ1 schedule"),
)

LABEL_PREFIX = "profile/"
MODEL_GRADIENT = LABEL_PREFIX + "model: gradient forward"
MODEL_NO_GRADIENT = LABEL_PREFIX + "model: no-gradient pass"
HOST_SYNCS = {"aten::item", "aten::_local_scalar_dense", "aten::nonzero", "aten::is_nonzero"}
#: autograd node types counted as model backward when their forward op was not profiled
MODEL_BACKWARD_NODES = (
    "ConvolutionBackward", "NativeBatchNormBackward", "CudnnBatchNormBackward", "HardtanhBackward",
    "ReluBackward", "SiluBackward", "AdaptiveAvgPool2DBackward", "MeanBackward", "AddmmBackward",
    "MmBackward", "ViewBackward", "ReshapeAliasBackward", "AddBackward", "MulBackward", "SigmoidBackward",
)
EVALUATE = "autograd::engine::evaluate_function: "


# ------------------------------------------------------------------------------- model passes
@dataclass
class PassRecorder:
    """Notes every ``logits`` call of one classifier: kind, batch shape, engine; keeps one input
    of each (kind, shape, engine) to replay. Installed on the object, never on the class."""

    classifier: Classifier
    label: bool = False
    passes: list[tuple[str, tuple[int, ...], str]] = field(default_factory=list)
    samples: dict[tuple[str, tuple[int, ...], str], torch.Tensor] = field(default_factory=dict)

    def __enter__(self) -> "PassRecorder":
        original = self.classifier.logits

        def logits(images: torch.Tensor) -> torch.Tensor:
            gradient = torch.is_grad_enabled() and images.requires_grad
            engine = "torch" if self.classifier.needs_torch(images) else self.classifier.engine
            key = ("gradient" if gradient else "no-gradient", tuple(images.shape), engine)
            self.passes.append(key)
            if key not in self.samples:
                self.samples[key] = images.detach().clone()
            if not self.label:
                return original(images)
            with record_function(MODEL_GRADIENT if gradient else MODEL_NO_GRADIENT):
                return original(images)

        self.original = original
        self.classifier.logits = logits  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        del self.classifier.logits

    def summary(self) -> dict[str, Any]:
        """Count and images of the gradient and no-gradient passes, by engine and shape."""
        out: dict[str, Any] = {}
        for kind in ("gradient", "no-gradient"):
            mine = [key for key in self.passes if key[0] == kind]
            groups: dict[str, dict[str, int]] = defaultdict(lambda: {"passes": 0, "images": 0})
            for _, shape, engine in mine:
                group = groups[f"{engine} {'x'.join(map(str, shape))}"]
                group["passes"] += 1
                group["images"] += shape[0]
            out[kind] = {"passes": len(mine), "images": sum(key[1][0] for key in mine), "by_engine_and_shape": dict(groups)}
        return out


def replay_pass(classifier: Classifier, forward: Callable[[torch.Tensor], torch.Tensor], kind: str, engine: str,
                images: torch.Tensor) -> None:
    """One pass alone: forward and backward w.r.t. the input, or a no-gradient forward on ``engine``."""
    if kind == "gradient":
        variable = images.clone().requires_grad_(True)
        torch.autograd.grad(forward(variable).sum(), variable)
        return
    with torch.no_grad():
        if engine == "torch" and classifier.engine != "torch":
            classifier.torch_engine(classifier.normalise(images))
        else:
            with classifier.forward_only():
                forward(images)


def floor_seconds(recorder: PassRecorder, limit: int) -> dict[str, Any]:
    """The recorded passes replayed alone: per (kind, shape, engine) the mean seconds of at most
    ``limit`` timed passes (0: all) after one untimed pass, times the count."""
    counts: dict[tuple[str, tuple[int, ...], str], int] = defaultdict(int)
    for key in recorder.passes:
        counts[key] += 1
    groups, total = [], {"gradient": 0.0, "no-gradient": 0.0}
    for key, count in counts.items():
        kind, shape, engine = key
        timed = count if limit == 0 else min(count, limit)
        sample = recorder.samples[key]
        replay_pass(recorder.classifier, recorder.original, kind, engine, sample)
        start = time.perf_counter()
        for _ in range(timed):
            replay_pass(recorder.classifier, recorder.original, kind, engine, sample)
        mean = (time.perf_counter() - start) / timed
        total[kind] += mean * count
        groups.append({"kind": kind, "shape": list(shape), "engine": engine, "passes": count, "timed": timed,
                       "ms_a_pass": round(mean * 1e3, 2), "seconds": round(mean * count, 3)})
    return {"gradient_s": round(total["gradient"], 3), "no_gradient_s": round(total["no-gradient"], 3),
            "total_s": round(total["gradient"] + total["no-gradient"], 3), "groups": groups}


# ------------------------------------------------------------------------------- steps
def _attribute(path: str) -> tuple[Any, str, Any] | None:
    """(owner, name, value) of ``Class.method`` or ``function`` in a module; None if absent."""
    module_name, _, rest = path.partition(":")
    module = import_module(module_name)
    owner: Any = module
    parts = rest.split(".")
    for part in parts[:-1]:
        owner = getattr(owner, part, None)
        if owner is None:
            return None
    value = owner.__dict__.get(parts[-1]) if isinstance(owner, type) else getattr(owner, parts[-1], None)
    return None if value is None else (owner, parts[-1], value)


@contextmanager
def patched(path: str, wrap: Callable[[Callable], Callable]) -> Iterator[None]:
    """Replace ``module:Class.method`` (on the class) or ``module:function`` (in every loaded
    maskscope module that imported it) by ``wrap(original)`` for the block."""
    found = _attribute(path)
    if found is None:
        yield
        return
    owner, name, original = found
    replacement: Any = staticmethod(wrap(original.__func__)) if isinstance(original, staticmethod) else wrap(original)
    owners: list[Any]
    if isinstance(owner, type):
        owners = [owner]
    else:
        owners = [m for n, m in list(sys.modules.items())
                  if n.startswith("maskscope") and m is not None and getattr(m, name, None) is original]
    for each in owners:
        setattr(each, name, replacement)
    try:
        yield
    finally:
        for each in owners:
            setattr(each, name, original)


@dataclass
class StepCounter:
    """Counts the step-rule calls (loop iterations); ``after`` runs after each with the count."""

    after: Callable[[int], None] | None = None
    steps: int = 0

    @contextmanager
    def counting(self) -> Iterator["StepCounter"]:
        def wrap(original: Callable) -> Callable:
            def step(rule, problem, masks, grad, loss):
                result = original(rule, problem, masks, grad, loss)
                self.steps += 1
                if self.after is not None:
                    self.after(self.steps)
                return result
            return step

        with ExitStack() as stack:
            for module, rule in STEP_RULES:
                stack.enter_context(patched(f"{module}:{rule}.step", wrap))
            yield self


# ------------------------------------------------------------------------------- profile
def _labelled(label: str) -> Callable[[Callable], Callable]:
    def wrap(original: Callable) -> Callable:
        def labelled(*args: Any, **kwargs: Any) -> Any:
            with record_function(LABEL_PREFIX + label):
                return original(*args, **kwargs)
        return labelled
    return wrap


@contextmanager
def labels() -> Iterator[None]:
    """Every function of :data:`LABELS` inside a ``record_function`` of its category."""
    with ExitStack() as stack:
        for module, name, label in LABELS:
            stack.enter_context(patched(f"{module}:{name}", _labelled(label)))
        yield


class WindowOver(Exception):
    """Raised from the step rule once the profiled steps are done: the run has nothing more to give."""


def _label_of(event: Any) -> str | None:
    """The innermost label around an event: a category, ``model forward`` or ``model``."""
    while event is not None:
        if event.name == MODEL_GRADIENT:
            return "model forward (gradient passes)"
        if event.name == MODEL_NO_GRADIENT:
            return "model (no-gradient passes)"
        if event.name.startswith(LABEL_PREFIX):
            return event.name[len(LABEL_PREFIX):]
        event = event.cpu_parent
    return None


def _node_of(event: Any) -> Any:
    """The ``evaluate_function`` event an event runs under (itself included), or None."""
    while event is not None:
        if event.name.startswith(EVALUATE):
            return event
        event = event.cpu_parent
    return None


def categorise(events: list[Any]) -> dict[str, float]:
    """Self CPU microseconds per category, by the rules of this module's docstring."""
    totals: dict[str, float] = defaultdict(float)
    for (category, _), microseconds in categorise_ops(events).items():
        totals[category] += microseconds
    return dict(totals)


def categorise_ops(events: list[Any]) -> dict[tuple[str, str], float]:
    """Self CPU microseconds per (category, event name)."""
    # an op records the autograd counter without moving it unless it makes a graph node, so of
    # the forward ops sharing a number, the last to start made the node
    forward: dict[int, str] = {}
    for event in sorted(events, key=lambda event: event.time_range.start):
        if event.sequence_nr >= 0 and _node_of(event) is None:
            forward[event.sequence_nr] = _label_of(event) or "other ops"
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for event in events:
        node = _node_of(event)
        if event.name in HOST_SYNCS:
            category = "host syncs"
        elif node is not None:
            category = forward.get(node.sequence_nr) or (
                "model backward" if node.name[len(EVALUATE):].startswith(MODEL_BACKWARD_NODES) else "other backward"
            )
            if category.startswith("model forward"):
                category = "model backward"
        else:
            category = _label_of(event) or "other ops"
        totals[(category, event.name)] += event.self_cpu_time_total
    return dict(totals)


MODEL_CATEGORIES = ("model forward (gradient passes)", "model backward", "model (no-gradient passes)")


def profile_steps(classifier: Classifier, name: str, images: torch.Tensor, skip: int, steps: int) -> dict[str, Any]:
    """Profile steps ``skip + 1 … skip + steps`` of a run of ``name``: ms a step per category."""
    profiler = profile(activities=[ProfilerActivity.CPU])
    window: dict[str, float] = {}

    def after(count: int) -> None:
        if count == skip:  # the window is timed inside the profiler's start and stop, which take seconds
            profiler.start()
            window["start"] = time.perf_counter()
        elif count == skip + steps:
            window["end"], window["steps"] = time.perf_counter(), steps
            profiler.stop()
            raise WindowOver

    counter = StepCounter(after)
    with PassRecorder(classifier, label=True) as recorder, labels(), counter.counting():
        try:
            get_method(name).explain(classifier, images, seed=0)
        except WindowOver:
            pass
    if "start" not in window:
        return {"steps": 0, "note": f"the run took {counter.steps} steps, not more than the {skip} skipped"}
    if "end" not in window:  # the run ended inside the window (its last steps and after are in it)
        window["end"], window["steps"] = time.perf_counter(), counter.steps - skip
        profiler.stop()
    events = list(profiler.events())
    totals = categorise(events)
    by_op = categorise_ops(events)
    wall_us = (window["end"] - window["start"]) * 1e6
    top_level = sum(event.cpu_time_total for event in events if event.cpu_parent is None)
    totals["untraced Python (loop glue)"] = max(wall_us - top_level, 0.0)
    per_step = {k: round(v / 1e3 / window["steps"], 3) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}
    model = sum(per_step.get(k, 0.0) for k in MODEL_CATEGORIES)
    rest = {k: v for k, v in per_step.items() if k not in MODEL_CATEGORIES}
    non_model = sum(rest.values())
    gradient = sum(1 for key in recorder.passes if key[0] == "gradient")
    return {
        "steps": int(window["steps"]),
        "after_steps": skip,
        "window_ms_a_step": round(wall_us / 1e3 / window["steps"], 2),
        "model_ms_a_step": round(model, 2),
        "non_model_ms_a_step": round(non_model, 2),
        "ms_a_step": per_step,
        "non_model_shares": {k: round(v / non_model, 3) for k, v in rest.items()} if non_model > 0 else {},
        "top_ops_ms_a_step": {  # the three largest ops (or a label's own Python time) of each non-model category
            category: dict(sorted(((op, round(us / 1e3 / window["steps"], 3)) for (c, op), us in by_op.items()
                                   if c == category), key=lambda kv: -kv[1])[:3])
            for category in rest if category in totals
        },
        "gradient_passes_in_run": gradient,
    }


# ------------------------------------------------------------------------------- one method
def load() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def measure(classifier: Classifier, name: str, images: torch.Tensor, replay: int) -> dict[str, Any]:
    """Wall seconds, steps, passes, floor and overhead of one run of ``name`` at its defaults."""
    counter = StepCounter()
    with PassRecorder(classifier) as recorder, counter.counting():
        start = time.perf_counter()
        explanation = get_method(name).explain(classifier, images, seed=0)
        wall = time.perf_counter() - start
    floor = floor_seconds(recorder, replay)
    overhead = wall - floor["total_s"]
    steps = max(counter.steps, 1)
    history = explanation.history
    return {
        "wall_s": round(wall, 2),
        "steps": counter.steps,
        "steps_reported": None if history is None else int(history.shape[1]),
        "passes": recorder.summary(),
        "floor": floor,
        "overhead_s": round(overhead, 2),
        "overhead_share": round(overhead / wall, 3),
        "model_share": round(floor["total_s"] / wall, 3),
        "ms_a_step": round(wall / steps * 1e3, 1),
        "floor_ms_a_step": round(floor["total_s"] / steps * 1e3, 1),
        "goal_met": None if explanation.goal_met is None else [bool(v) for v in explanation.goal_met],
        "engine": explanation.engine,
    }


def warm(classifier: Classifier) -> None:
    """One gradient and one no-gradient pass, so that no method pays for building the engine."""
    crop = classifier.view.crop
    images = torch.rand(1, 3, crop, crop, generator=torch.Generator().manual_seed(0))
    replay_pass(classifier, classifier.logits, "gradient", "torch", images)
    replay_pass(classifier, classifier.logits, "no-gradient", classifier.engine, images)


def code_version() -> dict[str, Any]:
    """Where the profiled package came from: its folder, commit and whether it had changes."""
    root = Path(maskscope.__file__).resolve().parents[1]

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True).stdout.strip()

    return {"package": str(root), "commit": git("rev-parse", "--short", "HEAD"),
            "changed_package_files": git("status", "--porcelain", "--", "maskscope").splitlines()}


# ------------------------------------------------------------------------------- table
def top_overheads(profile_record: dict[str, Any], count: int = 3) -> str:
    shares = profile_record.get("non_model_shares", {})
    best = sorted(shares.items(), key=lambda kv: -kv[1])[:count]
    return ", ".join(f"{k} {v:.0%}" for k, v in best)


def markdown_table(results: dict[str, Any]) -> str:
    """The docs' table: method, wall, floor, model share, overhead a step, top overhead, steps."""
    lines = [
        "| method | wall (s) | floor (s) | model share | steps | s a step | floor a step "
        "| top overhead (share of the non-model time in the profiled steps) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name in METHODS:
        if name not in results:
            continue
        r = results[name]
        if "error" in r:
            lines.append(f"| `{name}` | – | – | – | – | – | – | not run: {r['error']} |")
            continue
        if "wall_s" not in r:  # profiled alone (--profile-only), never timed
            lines.append(f"| `{name}` | – | – | – | – | – | – | {top_overheads(r['profile'])} |")
            continue
        lines.append(
            f"| `{name}` | {r['wall_s']:.1f} | {r['floor']['total_s']:.1f} | {r['model_share']:.0%} | {r['steps']} "
            f"| {r['ms_a_step'] / 1e3:.3f} | {r['floor_ms_a_step'] / 1e3:.3f} | {top_overheads(r['profile'])} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated, from " + ", ".join(METHODS))
    parser.add_argument("--photos", type=int, default=1, help="the first N imagenet-samples photos, one batch")
    parser.add_argument("--replay", type=int, default=50, help="passes timed per (kind, shape, engine); 0: all")
    parser.add_argument("--skip-steps", type=int, default=2, help="steps run before the profiled window")
    parser.add_argument("--profile-steps", type=int, default=10, help="steps profiled")
    parser.add_argument("--fresh", action="store_true", help="start --out afresh (default: keep the other methods' entries)")
    parser.add_argument("--table", action="store_true", help="only print the markdown table of --out")
    parser.add_argument("--profile-only", action="store_true",
                        help="profile again and replace only the profile of the methods' records in --out")
    parser.add_argument("--threads", type=int, default=None, help="torch's intra-op threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.table:
        print(markdown_table(json.loads(args.out.read_text())["methods"]))
        return
    if args.fresh:
        args.out.unlink(missing_ok=True)
    classifier = Classifier.default()
    names, images = imagenet_photos(classifier, args.photos)
    warm(classifier)
    for name in [n.strip() for n in args.methods.split(",") if n.strip()]:
        if args.profile_only:  # a method without a timed record gets the profile alone
            known = json.loads(args.out.read_text())["methods"] if args.out.exists() else {}
            record = known.get(name) or {"photos": names, "code": code_version(), "machine": machine()}
            record["profile"] = profile_steps(classifier, name, images, args.skip_steps, args.profile_steps)
            record["profile"].update(measured=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), load=load())
            keep(args.out, classifier.name, name, record)
            continue
        before = load()
        try:
            record = measure(classifier, name, images, args.replay)
        except ImportError as error:  # a method whose optional dependency is missing
            keep(args.out, classifier.name, name, {"error": f"{type(error).__name__}: {error}", "load_before": before})
            continue
        print(f"{name}: wall {record['wall_s']} s, floor {record['floor']['total_s']} s, {record['steps']} steps; "
              "profiling", flush=True)
        record["profile"] = profile_steps(classifier, name, images, args.skip_steps, args.profile_steps)
        record.update(photos=names, load_before=before, load_after=load(), code=code_version(), machine=machine(),
                      measured=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
        print(f"{name}: done, load {before[0]:.2f} → {record['load_after'][0]:.2f}", flush=True)
        keep(args.out, classifier.name, name, record)
    print(markdown_table(json.loads(args.out.read_text())["methods"]))


def keep(path: Path, model: str, name: str, record: dict[str, Any]) -> None:
    """Put one method's record into the JSON as soon as it exists, re-reading the file first, so
    that runs of other methods in other processes keep theirs."""
    current = json.loads(path.read_text()) if path.exists() else {"methods": {}}
    current["methods"][name] = record
    headline = {key: record.get(key) for key in ("wall_s", "steps", "overhead_share", "error") if key in record}
    write_record(path, {"machine": machine(), "model": model, "methods": current["methods"]}, shown={name: headline})


if __name__ == "__main__":
    main()
