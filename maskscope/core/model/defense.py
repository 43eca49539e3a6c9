"""The adversarial defense of FGVis (Wagner et al., CVPR 2019, §3.2).

On the original images ``x`` the output of every nonlinearity is recorded, ``h_l(x)``, and
bounds are taken elementwise::

    b_l = min(0, h_l(x)),   b_u = max(0, h_l(x))

While a mask is optimised, the gradient flowing back through a unit of the perturbed
image ``e`` is passed only where ``b_l ≤ h_l(e) ≤ b_u`` and zeroed elsewhere: the forward
pass is unchanged (identity after each nonlinearity), the backward pass is masked. The
explanation can therefore use only evidence that is present in the image, at no greater
strength, and cannot build new (adversarial) evidence.

The nonlinearities are found as modules (:data:`ACTIVATIONS`, plus the Swish modules of
``efficientnet_lite_pytorch`` when it is installed and Hugging Face's activation modules when
a ``transformers`` model is loaded) and hooked with forward hooks. A module
object may be called several times in one forward pass (one activation module reused by a
whole network), so bounds are kept per *call*, in call order, not per module. Activations
applied as functions inside ``forward`` (``F.relu(x)``, ``x.sigmoid()``) cannot be hooked and
are not defended; a model made only of those gets :class:`DefenseError`. TorchScript models
cannot be hooked either.

For a :class:`Classifier` the hooks go on the module its gradient passes run
(:attr:`Classifier.torch_engine`): the copy with batch norms folded into the convolutions
(:mod:`maskscope.core.model.engines.folding`) when that copy keeps every nonlinearity module of the
model, the model itself otherwise (the classifier then runs it unfolded). Folding changes no
nonlinearity's output beyond float rounding, so the bounds and the masked gradient are those
of the model.

The per-pass work is two elementwise operations per nonlinearity call: the bounds are made once
when recording, the forward pass writes the 0/1 mask ``[b_l ≤ h_l(e) ≤ b_u]`` straight into a
tensor of the activation's type, and the backward pass multiplies the gradient by it (a boolean
mask would be converted at every backward pass, which cost more than the model's own
layers). For nonlinearities that never output a negative value (:data:`NONNEGATIVE`) ``b_l = 0
≤ h_l(e)`` always holds and only ``h_l(e) ≤ b_u`` is compared.

The recorded batch holds one image per row, so every image has its own bounds; the defended
forward passes must use the same batch size and the same image size.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import partial
from typing import Callable, Sequence

import torch
from torch import nn

from maskscope.core.model.classifier import Classifier
from maskscope.errors import MaskscopeValueError

#: module types treated as nonlinearities
ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Hardtanh,
    nn.Sigmoid,
    nn.Tanh,
    nn.Mish,
    nn.Softplus,
)

#: module types (exactly these, not subclasses) whose output is never negative: ``b_l = 0``
#: and ``h(e) ≥ b_l`` always, so only the upper bound is checked
NONNEGATIVE: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU6, nn.Sigmoid, nn.Hardsigmoid)


class DefenseError(MaskscopeValueError):
    """The defense cannot be applied to this model or these inputs."""


def _library_activations() -> tuple[type[nn.Module], ...]:
    """The default model's own Swish modules (``efficientnet_lite_pytorch``), when installed, and
    Hugging Face's activation modules (``transformers.activations``: its GELUs, SiLU, Mish, …,
    not its identity ``LinearActivation``) once a ``transformers`` model has imported them."""
    found: list[type[nn.Module]] = []
    try:
        from efficientnet_lite_pytorch.utils import MemoryEfficientSwish, Swish
    except ImportError:
        pass
    else:
        found += [Swish, MemoryEfficientSwish]
    hugging_face = sys.modules.get("transformers.activations")
    if hugging_face is not None:
        found += [
            kind for name, kind in vars(hugging_face).items()
            if isinstance(kind, type) and issubclass(kind, nn.Module) and kind.__module__ == hugging_face.__name__
            and name != "LinearActivation"
        ]
    return tuple(found)


def covered_modules(model: nn.Module, extra: Sequence[type[nn.Module]] = ()) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every hookable nonlinearity in ``model``, each module once."""
    types = ACTIVATIONS + _library_activations() + tuple(extra)
    return [(name, module) for name, module in model.named_modules() if isinstance(module, types)]


@dataclass
class Bounds:
    """The bounds of one nonlinearity call: ``upper`` = ``b_u``, ``lower`` = ``b_l`` (``None``
    for a nonlinearity that is never negative, whose ``b_l = 0`` nothing can cross)."""

    upper: torch.Tensor
    lower: torch.Tensor | None

    @classmethod
    def of(cls, recorded: torch.Tensor, nonnegative: bool) -> "Bounds":
        """``b_u = max(0, h(x))`` and ``b_l = min(0, h(x))`` of a recorded output ``h(x)``."""
        return cls(recorded.clamp(min=0), None if nonnegative else recorded.clamp(max=0))

    def inside(self, output: torch.Tensor) -> torch.Tensor:
        """``[b_l ≤ h(e) ≤ b_u]`` as 0/1 in ``output``'s type and memory layout."""
        mask = torch.le(output, self.upper, out=torch.empty_like(output))
        if self.lower is not None:
            mask.mul_(torch.ge(output, self.lower, out=torch.empty_like(output)))
        return mask

    def narrow(self, index: torch.Tensor) -> "Bounds":
        """The bounds of the images ``index``."""
        return Bounds(self.upper[index], None if self.lower is None else self.lower[index])


class _BoundedGradient(torch.autograd.Function):
    """Identity forward; backward passes the gradient only where ``b_l ≤ h(e) ≤ b_u``."""

    @staticmethod
    def forward(ctx, output: torch.Tensor, bounds: Bounds) -> torch.Tensor:
        ctx.save_for_backward(bounds.inside(output))
        # as_strided keeps the strides as they are: view_as gives a batch of one a batch stride
        # of one row, which makes the next padding or convolution copy it out of channels-last
        return output.as_strided(output.size(), output.stride(), output.storage_offset())

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (inside,) = ctx.saved_tensors
        return grad * inside, None


def defended_module(classifier: Classifier, extra: Sequence[type[nn.Module]] = ()) -> nn.Module:
    """The module to hook for ``classifier``'s gradient passes: the one they run
    (the batch-norm-folded copy) when it holds every nonlinearity module of the model under the
    same names, else the model (hooked, the classifier runs it as it is)."""
    model = classifier.module
    running = classifier.torch_engine.model
    if running is model or not isinstance(running, nn.Module):
        return model
    wanted = {name: type(module) for name, module in covered_modules(model, extra)}
    kept = {name: type(module) for name, module in covered_modules(running, extra)}
    return running if kept == wanted else model


def _gradient_module_pass(classifier: Classifier, images: torch.Tensor) -> torch.Tensor:
    """``classifier``'s logits from the module and at the precision its gradient passes run
    (without a gradient): the recording and :meth:`AdversarialDefense.outside_share` compare
    the same arithmetic as the defended passes (under ``precision="fast"`` the inference
    precision can differ from the gradient passes', and bounds from another precision would
    block units the image itself gives)."""
    engine = classifier.torch_engine  # a fresh engine: setting its precision touches no other
    engine.precision = classifier.gradient_precision
    return engine(classifier.normalise(images))


class AdversarialDefense:
    """Context manager: defend a model's gradients with the bounds of the given images.

    Args:
        model: a :class:`Classifier` (``images`` in pixel space) or an ``nn.Module``
            (``images`` already as the module expects them).
        images: the original images ``x``, B×3×H×W; row ``i`` gives image ``i``'s bounds.
        extra_activations: more module types to treat as nonlinearities.

    Inside the ``with`` block every forward pass of the model (with gradients enabled) has
    its backward masked; hooks are removed on exit, also when the block raises. After
    entering, ``module`` is the hooked module (see :func:`defended_module`), ``activations``
    the number of hooked nonlinearity modules and ``calls`` the number of nonlinearity outputs
    recorded per forward pass; :meth:`outside_share` says how much of a perturbed batch's
    gradient the bounds would zero. A classifier's weights must not change inside the block
    (its gradient passes would run a new folded copy, without the hooks): exiting says so.

    Example::

        with AdversarialDefense(classifier, images):
            result = optimise_masks(problem, init, ...)
    """

    def __init__(
        self,
        model: Classifier | nn.Module,
        images: torch.Tensor,
        extra_activations: Sequence[type[nn.Module]] = (),
    ) -> None:
        self.classifier: Classifier | None = None
        self._forward: Callable[[torch.Tensor], torch.Tensor]
        if isinstance(model, Classifier):
            if not isinstance(model.model, nn.Module):
                raise DefenseError(f"classifier {model.name} is a forward-only callable; the defense needs a module")
            self.classifier, self.module = model, model.model
        elif isinstance(model, nn.Module):
            self.module, self._forward = model, model
        else:
            raise DefenseError(f"the defense needs a Classifier or an nn.Module, got {type(model).__name__}")
        self.images = images
        self.extra_activations = tuple(extra_activations)
        self.activations = 0
        self.calls = 0
        self._handles: list = []
        self._bounds: list[Bounds] = []
        self._recording = False
        self._position = 0
        self._outside: torch.Tensor | None = None
        self._units = 0

    def outside_share(self, images: torch.Tensor) -> torch.Tensor:
        """Per image of ``images`` (same batch and size as the recorded ones), the share of all
        nonlinearity outputs outside ``[b_l, b_u]``: the units whose gradient the defense zeroes there."""
        self._outside, self._units = torch.zeros(images.shape[0], device=images.device), 0
        try:
            with torch.no_grad():
                self._forward(images)
            return self._outside / max(self._units, 1)
        finally:
            self._outside = None

    def narrow(self, index: torch.Tensor) -> None:
        """Keep the bounds of the recorded images ``index`` only: later defended passes take
        those images (an optimisation whose finished images left the batch)."""
        self.images = self.images[index]
        self._bounds = [bounds.narrow(index) for bounds in self._bounds]

    # --------------------------------------------------------------- hooks
    def _start_pass(self, module, inputs) -> None:
        self._position = 0

    def _end_pass(self, module, inputs, output) -> None:
        if not self._recording and self._position != len(self._bounds):
            raise DefenseError(
                f"{type(self.module).__name__} called its nonlinearities {self._position} times in this "
                f"forward pass, but {len(self._bounds)} times on the recorded images"
            )

    def _after_activation(self, module, inputs, output):
        position = self._position
        self._position += 1
        if self._recording:
            self._bounds.append(Bounds.of(output.detach(), type(module) in NONNEGATIVE))
            return None
        if position >= len(self._bounds):
            raise DefenseError(
                f"{type(self.module).__name__} called its nonlinearities more often than on the recorded images"
            )
        bounds = self._bounds[position]
        if output.shape != bounds.upper.shape:
            raise DefenseError(
                f"activation {position} of {type(self.module).__name__} has shape {tuple(output.shape)}, but "
                f"{tuple(bounds.upper.shape)} on the recorded images; defended passes need the same batch and image size"
            )
        if self._outside is not None:
            self._outside += output[0].numel() - bounds.inside(output).flatten(1).sum(1)
            self._units += output[0].numel()
        if not (torch.is_grad_enabled() and output.requires_grad):
            return None
        return _BoundedGradient.apply(output, bounds)

    # --------------------------------------------------------------- context
    def __enter__(self) -> "AdversarialDefense":
        classifier = self.classifier
        if classifier is not None:
            self.module = defended_module(classifier, self.extra_activations)
            self._forward = partial(_gradient_module_pass, classifier)
        modules = covered_modules(self.module, self.extra_activations)
        if not modules:
            raise DefenseError(
                f"no hookable nonlinearity found in {type(self.module).__name__}: the defense needs activation "
                "modules (nn.ReLU, nn.SiLU, ...); activations applied as functions (F.relu) cannot be hooked"
            )
        try:
            self._handles.append(self.module.register_forward_pre_hook(self._start_pass))
            self._handles.append(self.module.register_forward_hook(self._end_pass))
            for _, module in modules:
                self._handles.append(module.register_forward_hook(self._after_activation))
            self.activations = len(modules)
            self._recording = True
            with torch.no_grad():
                self._forward(self.images)
            self._recording = False
            self.calls = len(self._bounds)
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(self, exc_type, *exc) -> None:
        try:
            if exc_type is None and self.classifier is not None and self.classifier.torch_engine.model is not self.module:
                raise DefenseError(
                    f"the weights of {self.classifier.name} changed inside the defended block: its gradient passes "
                    "ran a new copy of the module, without the defense"
                )
        finally:
            self._remove()

    def _remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._bounds = []
        self._recording = False
