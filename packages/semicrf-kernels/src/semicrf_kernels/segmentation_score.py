"""``score_segmentation_tensors``: the model's score of whole segmentations given per position.

Vectorised over samples, batch and positions (gathers, no loop), and differentiable with respect
to every float input: ``SemiCRFDistribution.log_prob`` is this score minus log Z.
"""

from __future__ import annotations

import torch

from ._shared.inputs import compute_dtype, mask_forbidden
from ._shared.logspace import safe_logsumexp
from .segmentation import Segmentation

__all__ = ["check_segmentation", "score_segmentation_tensors", "segment_values"]


def segment_values(
    cum: torch.Tensor,
    trans: torch.Tensor,
    bias: torch.Tensor,
    proj_start: torch.Tensor | None,
    proj_end: torch.Tensor | None,
    s: torch.Tensor,
    d: torch.Tensor,
    c: torch.Tensor,
    first: torch.Tensor,
) -> torch.Tensor:
    """The score of each segment given by index tensors, its link to the one before included.

    ``cum[s+d, c] - cum[s, c] + bias[d-1, c] + proj_start[s, c] + proj_end[s+d-1, c]``, plus the
    start score ``logsumexp_{c'} trans[c', c]`` where ``first``, else ``trans[prev, c]`` with
    ``prev`` the entry of ``c`` one step before along the last dim (``trans[d-1]`` with
    ``(K, C, C)`` transitions). Both the packed per-segment form (``viterbi.path``) and the
    per-position form (:func:`score_segmentation_tensors`) add in this one order.

    Args:
        cum: ``(batch, T+1, C)`` cumulative scores, in the compute dtype.
        trans: ``(C, C)`` or ``(K, C, C)``, forbidden entries already ``-inf``, same dtype.
        bias: ``(K, C)``, forbidden entries already ``-inf``, same dtype.
        proj_start: optional ``(batch, T, C)``.
        proj_end: optional ``(batch, T, C)``.
        s: ``(..., batch, N)`` int64 starts in ``[0, T)``.
        d: ``(..., batch, N)`` int64 durations in ``[1, K]``.
        c: ``(..., batch, N)`` int64 labels in ``[0, C)``.
        first: ``(..., batch, N)`` bool: the segment starts its sequence.

    Returns:
        ``(..., batch, N)`` in ``cum``'s dtype; entries that are not segments are garbage, for
        the caller to mask.
    """
    B, T1, C = cum.shape
    T, K = T1 - 1, bias.shape[0]
    lead = s.shape[:-2]
    e = (s + d).clamp(max=T)

    def at(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        # x: (B, rows, C) -> x[b, pos, c] for every leading index.
        flat = x.reshape(B, -1).to(cum.dtype).expand(*lead, B, -1)
        return flat.gather(-1, pos * C + c)

    value = at(cum, e) - at(cum, s) + bias[d - 1, c]
    if proj_start is not None:
        value = value + at(proj_start, s.clamp(max=T - 1))
    if proj_end is not None:
        value = value + at(proj_end, (e - 1).clamp(min=0))
    full = trans if trans.dim() == 3 else trans[None].expand(K, C, C)
    start = safe_logsumexp(full, dim=1)  # (K, C): the virtual start label summed out
    prev = torch.cat([torch.zeros_like(c[..., :1]), c[..., :-1]], dim=-1)
    return value + torch.where(first, start[d - 1, c], full[d - 1, prev, c])


def check_segmentation(
    segmentation: Segmentation, lengths: torch.Tensor, K: int, C: int, *, check_values: bool = True
) -> None:
    """Raise ``ValueError`` unless ``segmentation`` is a valid segmentation of every sequence.

    Args:
        segmentation: :class:`Segmentation` with ``(..., batch, T)`` labels and starts.
        lengths: ``(batch,)`` lengths.
        K: the longest segment.
        C: the number of labels.
        check_values: also check the values (labels in range and constant within segments, a
            start at 0, durations ``<= K``); needs a host synchronisation.
    """
    if not isinstance(segmentation, Segmentation):
        raise TypeError(f"segmentation: expected a Segmentation, got {type(segmentation).__name__}")
    labels, starts = segmentation.labels, segmentation.starts
    B = lengths.shape[0]
    if labels.dim() < 2 or labels.shape[-2] != B:
        raise ValueError(
            f"segmentation.labels: expected shape (..., batch={B}, T), got {tuple(labels.shape)}"
        )
    if starts.shape != labels.shape:
        raise ValueError(
            f"segmentation.starts: expected the labels' shape {tuple(labels.shape)}, got "
            f"{tuple(starts.shape)}"
        )
    if starts.dtype != torch.bool or labels.is_floating_point():
        raise TypeError(
            f"segmentation: expected int64 labels and bool starts, got {labels.dtype} and "
            f"{starts.dtype}"
        )
    if not check_values:
        return
    T = labels.shape[-1]
    valid = torch.arange(T, device=labels.device) < lengths[:, None]
    if bool((valid & ((labels < 0) | (labels >= C))).any()):
        raise ValueError(f"segmentation.labels: expected values in [0, {C}) within each length")
    if bool((~starts[..., 0]).any()):
        raise ValueError("segmentation.starts: expected a segment to start at position 0")
    inner = valid[:, 1:] & ~starts[..., 1:]
    if bool((inner & (labels[..., 1:] != labels[..., :-1])).any()):
        raise ValueError(
            "segmentation.labels: expected one label per segment (the label changes where "
            "segmentation.starts is False)"
        )
    if bool((starts & ~valid).any()):
        raise ValueError("segmentation.starts: expected False past each length")
    durations = _durations(starts, lengths)
    if bool((durations > K).any()):
        raise ValueError(f"segmentation: expected segments of at most K = {K} positions")


def _durations(starts: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``(..., batch, T)`` int64: at each start, its segment's duration (0 elsewhere)."""
    T = starts.shape[-1]
    t = torch.arange(T, device=starts.device)
    length = lengths[:, None].expand(starts.shape)
    # The next start after t: a reverse cumulative minimum of start positions (L if none).
    marks = torch.where(starts, t.expand(starts.shape), length)
    nxt = torch.cat([marks[..., 1:], length[..., :1]], dim=-1)
    nxt = torch.minimum(nxt.flip(-1).cummin(dim=-1).values.flip(-1), length)
    return torch.where(starts, nxt - t, 0)


def score_segmentation_tensors(
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    lengths: torch.Tensor,
    segmentation: Segmentation,
    *,
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
) -> torch.Tensor:
    """Total score of each segmentation under the model of ``docs/conventions.md`` section 1.

    Args:
        cum_scores: ``(batch, T+1, C)`` cumulative scores.
        transition: ``(C, C)`` or ``(K, C, C)``.
        duration_bias: ``(K, C)``.
        lengths: ``(batch,)`` lengths.
        segmentation: :class:`Segmentation` with ``(..., batch, T)`` labels and starts (checked
            by :func:`check_segmentation` beforehand; not here).
        proj_start: optional ``(batch, T, C)``.
        proj_end: optional ``(batch, T, C)``.

    Returns:
        ``(..., batch)`` in the compute dtype (float32, float64 for float64 ``cum_scores``):
        segment scores, transitions and the first segment's start score; ``-inf`` when a
        forbidden transition or duration is used. Differentiable.
    """
    dtype = compute_dtype(cum_scores)
    cum = cum_scores.to(dtype)
    trans = mask_forbidden(transition.to(dtype))
    bias = mask_forbidden(duration_bias.to(dtype))
    K, C = bias.shape
    labels, starts = segmentation.labels, segmentation.starts
    T = labels.shape[-1]
    lengths = lengths.to(labels.device).long()
    d = _durations(starts, lengths)
    s = torch.arange(T, device=labels.device).expand(labels.shape)
    # Read at each segment's start: the label before it is the previous segment's.
    value = segment_values(
        cum, trans, bias, proj_start, proj_end, s, d.clamp(1, K), labels.clamp(0, C - 1), s == 0
    )
    zero = torch.zeros((), dtype=dtype, device=cum.device)
    return torch.where(starts, value, zero).sum(dim=-1)
