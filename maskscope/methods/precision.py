"""Which methods run their gradient passes at reduced precision under ``precision="fast"``.

``fast`` runs every pass that needs no gradient at bfloat16. A gradient pass is different: a
bfloat16 gradient of EfficientNet-Lite0 has mean cosine 0.84 to the float32 one, and whether a
method's maps survive that depends on the method. So a method's gradient passes go to reduced
precision under ``fast`` only where ``benchmarks/investigations/precision_fidelity.py`` measured that its maps
hold there (docs/optimisation-speed.md, "Reduced precision for gradient passes"): the median
Spearman between its bfloat16 and float32 maps no lower than the median between two float32
runs with different seeds, both 95 % intervals of the deletion and insertion AUC differences
holding 0, and no fewer goals met. Every other method keeps float32 gradients under ``fast``;
an explicit ``precision="bfloat16"`` or ``"float16"`` still runs every gradient pass in it.

The reduced type is bfloat16 on a CPU with native bfloat16 arithmetic (AVX-512 BF16 or AMX:
elsewhere bfloat16 is emulated and slower than float32, so such a CPU keeps float32) and, on a
CUDA GPU, bfloat16 where the GPU has it, else float16.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

#: method name -> the device types on which its maps were measured to hold with reduced-precision
#: gradient passes (``benchmarks/results/investigations/precision_fidelity.json``, 16 photos each):
#: I-GOS (median Spearman to float32 0.838 against its seed floor's 0.803) and iGOS++ (0.847
#: against 0.808). MP, MP-G and FGVis failed on 16 photos and EP was not measured: they keep
#: float32 (docs/optimisation-speed.md says why, method by method).
FAST_GRADIENTS: dict[str, frozenset[str]] = {"igos": frozenset({"cpu"}), "igos++": frozenset({"cpu"})}

#: the CPU flags of native bfloat16 arithmetic, as Linux's /proc/cpuinfo names them
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@functools.cache
def cpu_has_bfloat16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX), by its flags in
    ``cpuinfo``; ``False`` where that file cannot be read (not Linux)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return not BF16_CPU_FLAGS.isdisjoint(line.split(":", 1)[1].split())
    return False


def reduced_gradient_precision(device: torch.device) -> str | None:
    """The reduced precision of gradient passes on ``device``, or ``None`` where it would not pay."""
    if device.type == "cpu":
        return "bfloat16" if cpu_has_bfloat16() else None
    if device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return None


def fast_gradient_precision(method: str, device: torch.device) -> str:
    """The precision of ``method``'s gradient passes under ``precision="fast"`` on ``device``:
    its reduced precision where :data:`FAST_GRADIENTS` validates it there, else float32."""
    reduced = reduced_gradient_precision(device)
    if reduced is None or device.type not in FAST_GRADIENTS.get(method, frozenset()):
        return "float32"
    return reduced
