"""The Viterbi result type shared by every decoder, and vectorised per-segment scoring."""

from __future__ import annotations

from typing import NamedTuple

import torch

from .._shared.logspace import safe_logsumexp
from ..constants import NEG_INF
from ..segmentation import Segmentation, segmentation_from_path

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
    dtype = torch.float64 if cum_scores.dtype == torch.float64 else torch.float32
    cum = cum_scores.to(dtype)
    trans = transition.to(dtype)
    trans = torch.where(trans <= NEG_INF / 2, torch.full_like(trans, -torch.inf), trans)
    bias = duration_bias.to(dtype)
    bias = torch.where(bias <= NEG_INF / 2, torch.full_like(bias, -torch.inf), bias)
    B, N = starts.shape
    T = cum.shape[1] - 1
    K = bias.shape[0]
    index = torch.arange(N, device=cum.device)
    valid = index[None, :] < num_segments.to(cum.device).long()[:, None]
    # Clamp the padding entries so the gathers stay in range; they are masked at the end.
    s = torch.where(valid, starts.long(), 0).clamp(0, T - 1)
    d = torch.where(valid, durations.long(), 1).clamp(1, K)
    c = torch.where(valid, labels.long(), 0).clamp(0, cum.shape[2] - 1)
    end = (s + d).clamp(max=T)

    def per_position(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        # x: (B, rows, C); pick row pos[b, i], column c[b, i].
        flat = pos * x.shape[2] + c
        return x.reshape(B, -1).to(dtype).gather(1, flat)

    score = per_position(cum, end) - per_position(cum, s) + bias[d - 1, c]
    if proj_start is not None:
        score = score + per_position(proj_start, s)
    if proj_end is not None:
        score = score + per_position(proj_end, end - 1)
    if trans.dim() == 2:
        trans = trans[None].expand(K, -1, -1)
    start_score = safe_logsumexp(trans, dim=1)  # (K, C): virtual start label summed out
    prev = torch.cat([torch.zeros_like(c[:, :1]), c[:, :-1]], dim=1)
    link = torch.where(index[None, :] == 0, start_score[d - 1, c], trans[d - 1, prev, c])
    score = score + link
    return torch.where(valid, score, torch.zeros((), dtype=dtype, device=cum.device))
