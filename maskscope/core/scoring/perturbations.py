"""Batched scoring of many perturbed images — the engine of every sampling method.

For images ``x_b`` and masks ``m_{b,n}`` the engine evaluates the classifier on
``Φ(x_b, up(m_{b,n}))`` for all pairs, ``batch_size`` perturbed images at a time, so memory
is bounded whatever the number of masks. Occlusion, LIME, RISE and the deletion/insertion
curves all reduce to one call.
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch

from maskscope.core.model.classifier import DEFAULT_SCORE, Classifier
from maskscope.core.perturbation.fillers import Filler, blend
from maskscope.core.perturbation.masks import Upsampler
from maskscope.core.progress import progress_bar

#: perturbed images per forward pass when none is given. Small batches keep a CPU's caches
#: warm: EfficientNet-Lite0 on 2 cores takes 17 ms an image in batches of 8 and 32 ms in
#: batches of 64 (``benchmarks/speed/forward_throughput.py``); a GPU wants large ones.
CPU_BATCH_SIZE = 8
GPU_BATCH_SIZE = 64


def default_batch_size(batch_size: int | None, device: torch.device | str) -> int:
    """``batch_size`` if given, else :data:`CPU_BATCH_SIZE` on a CPU and :data:`GPU_BATCH_SIZE` elsewhere."""
    if batch_size is not None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        return batch_size
    return CPU_BATCH_SIZE if torch.device(device).type == "cpu" else GPU_BATCH_SIZE


@torch.no_grad()
def score_perturbations(
    classifier: Classifier,
    images: torch.Tensor,
    masks: torch.Tensor,
    filler: Filler,
    target_weights: torch.Tensor | None = None,
    batch_size: int | None = None,
    upsampler: Upsampler | None = None,
    progress: bool = False,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    score: str = DEFAULT_SCORE,
) -> torch.Tensor:
    """Scores of the perturbed images ``Φ(x_b, up(m_{b,n}))``.

    Args:
        classifier: the model wrapper.
        images: B×3×H×W in [0, 1].
        masks: B×N×h×w (N masks per image) or N×h×w (the same N masks for every image);
            1 = keep, 0 = fill.
        filler: removal content; mask-dependent fillers (inpainters) are called per chunk.
        target_weights: B×C multi-hot weights (:func:`~maskscope.core.model.targets.target_weights`):
            returns B×N summed target scores.
            ``None`` returns all scores, B×N×C.
        batch_size: perturbed images per forward pass (default: :func:`default_batch_size`).
        upsampler: how masks reach image size (default bilinear).
        transform: optional function applied to each chunk of perturbed images.
        score: ``"probability"`` or ``"logit"`` (:meth:`Classifier.class_scores`).
    """
    batch, _, height, width = images.shape
    if masks.dim() == 3:
        masks = masks[None].expand(batch, *masks.shape)
    if masks.dim() != 4 or masks.shape[0] != batch:
        raise ValueError(f"masks must be N×h×w or B×N×h×w for {batch} images, got {tuple(masks.shape)}")
    count = masks.shape[1]
    upsampler = upsampler or Upsampler("bilinear")
    static_fill = None if filler.depends_on_mask else filler(images)
    pairs = torch.arange(batch * count)
    results = []
    chunks = pairs.split(default_batch_size(batch_size, images.device))
    with classifier.forward_only():
        for chunk in progress_bar(chunks, desc="scoring", disable=not progress, leave=False):
            image_index, mask_index = chunk // count, chunk % count
            chunk_masks = upsampler(masks[image_index, mask_index][:, None].to(images), (height, width))
            if static_fill is None:
                chunk_images = images[image_index]
                filled = filler(chunk_images, chunk_masks)
                perturbed = blend(chunk_images, chunk_masks, filled) if filler.blended else filled
            else:
                perturbed = _blend_fixed_fill(images, static_fill, image_index, chunk_masks, classifier.channels_last)
            if transform is not None:
                perturbed = transform(perturbed)
            scores = classifier.class_scores(perturbed, score)
            if target_weights is not None:
                scores = (scores * target_weights[image_index].to(scores)).sum(1)
            results.append(scores)
    out = torch.cat(results)
    return out.view(batch, count, *out.shape[1:])


def score_mask_stream(
    classifier: Classifier,
    images: torch.Tensor,
    count: int,
    masks_of: Callable[[slice], torch.Tensor],
    filler: Filler,
    target_weights: torch.Tensor,
    batch_size: int | None = None,
    progress: bool = False,
    description: str = "scoring",
    score: str = DEFAULT_SCORE,
) -> Iterator[tuple[slice, torch.Tensor, torch.Tensor]]:
    """Score ``count`` masks per image, a chunk of ``batch_size // B`` masks at a time.

    The methods that sample or slide masks (RISE, LIME, occlusion, sliding patch) build each
    chunk's masks only when it is scored, so memory holds one chunk. Yields
    ``(chunk, masks, scores)``: the chunk's slice of ``range(count)``, its masks
    ``masks_of(chunk)`` (n×h×w for all images, or B×n×h×w) and the summed target scores B×n
    (:func:`score_perturbations`).
    """
    batch_size = default_batch_size(batch_size, images.device)
    per_chunk = max(1, batch_size // len(images))
    for start in progress_bar(range(0, count, per_chunk), desc=description, disable=not progress, leave=False):
        chunk = slice(start, min(start + per_chunk, count))
        masks = masks_of(chunk)
        yield chunk, masks, score_perturbations(classifier, images, masks, filler, target_weights, batch_size, score=score)


def _blend_fixed_fill(
    images: torch.Tensor, fill: torch.Tensor, image_index: torch.Tensor, masks: torch.Tensor, channels_last: bool
) -> torch.Tensor:
    """``Φ = lerp(f_b, x_b, m) = f_b + m·(x_b − f_b)`` for a chunk of masks, one fused pass per
    image of the chunk with the image and its fill broadcast (no per-mask copies of them);
    exact at m = 0 and m = 1. Written in the memory order the classifier wants."""
    layout = torch.channels_last if channels_last else torch.contiguous_format
    out = torch.empty(len(masks), *images.shape[1:], dtype=images.dtype, device=images.device, memory_format=layout)
    image_ids, runs = torch.unique_consecutive(image_index, return_counts=True)
    start = 0
    for image, run in zip(image_ids.tolist(), runs.tolist()):
        rows = slice(start, start + run)
        torch.lerp(fill[image : image + 1], images[image : image + 1], masks[rows], out=out[rows])
        start += run
    return out
