"""The Viterbi result type shared by every decoder, and vectorised per-segment scoring."""

from __future__ import annotations

from typing import NamedTuple

import torch

from .._shared.inputs import compute_dtype, mask_forbidden
from ..segmentation import Segmentation, segmentation_from_path
from ..segmentation_score import segment_values

__all__ = ["ViterbiPath", "score_path_segments"]


class ViterbiPath(NamedTuple):
    """Best segmentation of every sequence of a batch, as padded tensors.

    Segments are stored in order from position 0; entries at index ``>= num_segments[b]`` are
    padding. Each sequence's ``segment_scores`` sum to its ``scores`` (to rounding); the first
    segment's score includes the start score ``logsumexp_{c'} transition[c', c]``.

    Attributes:
        scores: ``(batch,)`` float32 (float64 for float64 inputs): the Viterbi score, ``-inf``
            when no segmentation is allowed.
        starts: ``(batch, T)`` int64 first position of each segment; -1 after the count.
        durations: ``(batch, T)`` int64 duration of each segment; -1 after the count.
        labels: ``(batch, T)`` int64 label of each segment; -1 after the count.
        segment_scores: ``(batch, T)`` score of each segment (its transition from the previous
            segment included); 0 after the count.
        num_segments: ``(batch,)`` int64 number of segments; 0 when no segmentation is allowed.

    This is the packed per-*segment* form; :class:`semicrf_kernels.Segmentation` (what sampling
    and top-k return) is the per-*position* form. :meth:`to_segmentation` converts.
    """

    scores: torch.Tensor
    starts: torch.Tensor
    durations: torch.Tensor
    labels: torch.Tensor
    segment_scores: torch.Tensor
    num_segments: torch.Tensor

    def to_segmentation(self) -> Segmentation:
        """This path as a :class:`semicrf_kernels.Segmentation`: ``(batch, T)`` labels (``-1``
        past each length) and segment starts, and the Viterbi ``scores``."""
        return segmentation_from_path(self)


def score_path_segments(
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    starts: torch.Tensor,
    durations: torch.Tensor,
    labels: torch.Tensor,
    num_segments: torch.Tensor,
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
) -> torch.Tensor:
    """Score every segment of a batch of segmentations at once (gathers, no loop).

    The segment ``i`` of sequence ``b`` scores
    ``cum[s+d, c] - cum[s, c] + duration_bias[d-1, c] + proj_start[s, c] + proj_end[s+d-1, c]``
    plus ``transition[labels[i-1], c]`` (``transition[d-1]`` with ``(K, C, C)`` transitions), or
    for ``i = 0`` the start score ``logsumexp_{c'} transition[c', c]``. Entries ``<= NEG_INF / 2``
    in ``transition`` / ``duration_bias`` count as ``-inf`` (forbidden).

    Args:
        cum_scores: ``(batch, T+1, C)`` cumulative scores.
        transition: ``(C, C)`` or ``(K, C, C)``.
        duration_bias: ``(K, C)``.
        starts: ``(batch, N)`` integer segment starts (any value after the count).
        durations: ``(batch, N)`` integer segment durations in ``[1, K]`` before the count.
        labels: ``(batch, N)`` integer segment labels in ``[0, C)`` before the count.
        num_segments: ``(batch,)`` integer number of segments of each sequence.
        proj_start: optional ``(batch, T, C)``.
        proj_end: optional ``(batch, T, C)``.

    Returns:
        ``(batch, N)`` segment scores in ``cum_scores``' dtype (float32 for half inputs), 0 after
        each sequence's count.
    """
    dtype = compute_dtype(cum_scores)
    cum = cum_scores.to(dtype)
    trans = mask_forbidden(transition.to(dtype))
    bias = mask_forbidden(duration_bias.to(dtype))
    T = cum.shape[1] - 1
    K, C = bias.shape
    index = torch.arange(starts.shape[1], device=cum.device)
    valid = index[None, :] < num_segments.to(cum.device).long()[:, None]
    # Clamp the padding entries so the gathers stay in range; they are masked at the end.
    s = torch.where(valid, starts.long(), 0).clamp(0, T - 1)
    d = torch.where(valid, durations.long(), 1).clamp(1, K)
    c = torch.where(valid, labels.long(), 0).clamp(0, C - 1)
    first = (index[None, :] == 0).expand_as(s)
    score = segment_values(cum, trans, bias, proj_start, proj_end, s, d, c, first)
    return torch.where(valid, score, torch.zeros((), dtype=dtype, device=cum.device))
