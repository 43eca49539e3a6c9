"""Batch normalisation folded into the convolution before it, for the torch module's passes.

A batch-norm layer in eval mode is an affine map per channel,
``BN(z) = γ·(z − μ)/√(σ² + ε) + β``; after a convolution ``z = W∗x + b`` it folds into the
convolution's weights::

    W' = W·s,   b' = (b − μ)·s + β,   s = γ/√(σ² + ε)     (per output channel)

so the folded network computes the same function (to float rounding) with one layer fewer per
block, forward and backward. The gradient passes of the mask optimisations run the torch module,
and on EfficientNet-Lite0 a fifth of their time was batch normalisation, forward and backward
(``benchmarks/speed/optimisation_profile.py``).

:class:`FoldedModule` keeps the folded copy of a module and makes it again when any of the
module's weights or buffers change in place (a weight randomisation check, a fine-tuning step),
by watching their version counters. A module that ``torch.fx`` cannot trace, or that holds no
foldable pair, runs as it is.
"""

from __future__ import annotations

import copy

import torch
import torch.fx as fx
from torch import nn


class _ConvolutionTracer(fx.Tracer):
    """Keeps every convolution and batch-norm layer, subclasses included, as one node."""

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return isinstance(module, (nn.Conv2d, nn.BatchNorm2d)) or super().is_leaf_module(module, qualified_name)


def _fold_into(convolution: nn.Conv2d, norm: nn.BatchNorm2d) -> None:
    """Fold ``norm`` (eval mode, running statistics) into ``convolution`` in place."""
    assert norm.running_mean is not None and norm.running_var is not None  # checked by the caller
    scale = torch.rsqrt(norm.running_var + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight
    bias = convolution.bias if convolution.bias is not None else torch.zeros_like(norm.running_mean)
    folded_bias = (bias - norm.running_mean) * scale
    if norm.bias is not None:
        folded_bias = folded_bias + norm.bias
    with torch.no_grad():
        weight = convolution.weight * scale.view(-1, *([1] * (convolution.weight.dim() - 1)))
        convolution.weight = nn.Parameter(weight, requires_grad=False)
        convolution.bias = nn.Parameter(folded_bias, requires_grad=False)


def fold_batch_norms(module: nn.Module) -> nn.Module | None:
    """A copy of ``module`` (eval mode) in which each batch norm that alone reads a convolution's
    output is folded into that convolution; ``None`` when the module cannot be traced or has no
    such pair. The module itself is not changed."""
    if module.training or not any(isinstance(layer, nn.BatchNorm2d) for layer in module.modules()):
        return None
    copied = copy.deepcopy(module)  # traced in place of the module: tracing may leave proxies on it
    try:
        graph = _ConvolutionTracer().trace(copied)
    except Exception:  # noqa: BLE001 — any model fx cannot trace simply runs unfolded
        return None
    folded = fx.GraphModule(copied, graph)
    pairs = 0
    for node in list(folded.graph.nodes):
        norm = folded.get_submodule(str(node.target)) if node.op == "call_module" else None
        source = node.args[0] if node.args else None
        if not isinstance(norm, nn.BatchNorm2d) or not isinstance(source, fx.Node) or source.op != "call_module":
            continue
        convolution = folded.get_submodule(str(source.target))
        if (
            not isinstance(convolution, nn.Conv2d) or len(source.users) != 1
            or norm.training or norm.running_mean is None or norm.running_var is None
        ):
            continue
        _fold_into(convolution, norm)
        node.replace_all_uses_with(source)
        folded.graph.erase_node(node)
        pairs += 1
    if pairs == 0:
        return None
    folded.graph.eliminate_dead_code()
    folded.delete_all_unused_submodules()
    folded.recompile()
    return folded.eval()


def _state_versions(tables: list[dict]) -> tuple:
    """The identity and in-place version of every weight and buffer in ``tables`` (each layer's
    own ``_parameters`` and ``_buffers``): changes when any of them is changed or replaced."""
    return tuple((id(tensor), tensor._version) for table in tables for tensor in table.values() if tensor is not None)


class FoldedModule:
    """The folded copy of ``module`` (see :func:`fold_batch_norms`), made at the first call and
    again whenever the module's weights or buffers change; the module itself when nothing folds.

    Args:
        module: the model, in eval mode.
        channels_last: store the folded weights in channels-last order (as the module's are).
    """

    def __init__(self, module: nn.Module, channels_last: bool = False) -> None:
        self.module = module
        self.channels_last = channels_last
        self._versions: tuple | None = None
        self._folded: nn.Module | None = None
        # the layers' weight tables, listed once (walking the module tree costs milliseconds a pass)
        self._tables = [table for layer in module.modules() for table in (layer._parameters, layer._buffers)]

    def current(self) -> nn.Module:
        """The module to run now: the folded copy, up to date with the module's weights and mode."""
        versions = (self.module.training, _state_versions(self._tables))
        if versions != self._versions:
            folded = fold_batch_norms(self.module)
            if folded is not None and self.channels_last:
                folded.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            self._folded, self._versions = folded, versions
        return self._folded if self._folded is not None else self.module

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.current()(inputs)
