"""``semi_crf_streaming_topk``: validation, then the k-best decoder for the inputs' device."""

from __future__ import annotations

import torch

from .._shared.inputs import prepare_inputs
from ..segmentation import Segmentation
from ..validation import check_count, check_num_warps, validate_streaming_inputs
from . import op as _op  # noqa: F401 - registers torch.ops.semicrf_kernels.streaming_topk

__all__ = ["semi_crf_streaming_topk"]


def semi_crf_streaming_topk(
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    lengths: torch.Tensor,
    K: int,
    k: int,
    *,
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
    use_triton: bool = True,
    num_warps: int | None = None,
    validate: bool = True,
) -> Segmentation:
    """The ``k`` highest-scoring segmentations of each sequence, in decreasing score.

    The model is ``docs/conventions.md`` section 1 (arguments as in
    :func:`semicrf_kernels.semi_crf_streaming_forward`). Each position and label keeps its ``k``
    best partial paths; tracebacks run on the inputs' device. Order among equal scores is total:
    compare from the last segment backwards, its label, then its duration, then the previous
    label (and so on), smaller first; so ``k = 1`` returns exactly the Viterbi path of
    :func:`semicrf_kernels.semi_crf_streaming_viterbi` (ties included). Memory O(k batch T C)
    for the backpointers; no ``T K C`` tensor is built. Not differentiable.

    Args:
        cum_scores: ``(batch, T+1, C)`` cumulative scores.
        transition: ``(C, C)`` or ``(K, C, C)``.
        duration_bias: ``(K, C)``.
        lengths: ``(batch,)`` integer lengths in ``[1, T]``.
        K: the longest segment.
        k: how many segmentations per sequence, ``>= 1``.
        proj_start: optional ``(batch, T, C)``.
        proj_end: optional ``(batch, T, C)``.
        use_triton: run the Triton kernels where they can run (CUDA, or the CPU under
            ``TRITON_INTERPRET=1``; with ``(K, C, C)`` transitions only while a step's ``K C``
            list heads fit a 16,384-entry tile); else the PyTorch path. Both give the same
            result bit for bit.
        num_warps: warps per Triton program (a power of two); None picks 8 where a merge step's
            tile holds 4,096 list heads or more (windows of 256 durations and more), else 4.
        validate: run the value checks of :func:`validate_streaming_inputs`.

    Returns:
        :class:`semicrf_kernels.Segmentation` (per-position form, not the per-segment
        ``ViterbiPath``): ``labels`` and ``starts`` ``(k, batch, T)``, ``scores (k, batch)``
        (float32, float64 for float64 inputs). Where a sequence has fewer than ``k`` allowed
        segmentations, the missing entries are marked absent: score ``-inf``, labels ``-1``
        everywhere and no starts.

    Raises:
        ValueError: ``k < 1`` or bad inputs.
        TypeError: wrong types.
    """
    check_count("k", k)
    validate_streaming_inputs(
        cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end, validate=validate
    )
    if num_warps is not None:
        check_num_warps(num_warps)
    with torch.no_grad():
        inp = prepare_inputs(
            cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end
        )
        # One custom operator for both paths (it dispatches on the device): one opaque node
        # under torch.compile.
        labels, starts, scores = torch.ops.semicrf_kernels.streaming_topk.default(
            *inp[:5], k, inp.proj_start, inp.proj_end, bool(use_triton), int(num_warps or 0)
        )
    return Segmentation(labels, starts, scores)
