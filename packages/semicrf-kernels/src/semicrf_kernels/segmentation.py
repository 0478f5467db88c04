"""``Segmentation``: whole segmentations as per-position tensors, and conversions to and from labels.

A :class:`Segmentation` is what sampling and top-k return: one labelled segmentation per
sequence (and per sample or rank), stored position by position. It differs from the packed
per-segment :class:`semicrf_kernels.ViterbiPath` (one slot per segment, ``starts``/``durations``/
``labels`` of segments); :func:`segmentation_from_path` turns the latter into the former.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch

__all__ = [
    "Segmentation",
    "labels_to_segments",
    "segmentation_from_path",
    "segments_to_labels",
]


class Segmentation(NamedTuple):
    """Labelled segmentations as per-position tensors (leading dims ``...``: samples or ranks).

    Attributes:
        labels: ``(..., batch, T)`` int64 label of each position; ``-1`` past each length (and
            everywhere in an absent entry, e.g. a top-k rank beyond the number of segmentations).
        starts: ``(..., batch, T)`` bool, True where a segment begins (always at 0 for a present
            entry); False past each length and in an absent entry.
        scores: ``(..., batch)`` float: the segmentation's total score under the model (start
            score included; ``-inf`` for an absent entry), or None for a segmentation built from
            labels without a model (:func:`labels_to_segments`).

    Not to be confused with :class:`semicrf_kernels.ViterbiPath`, which stores one slot per
    *segment* (``starts``, ``durations``, ``labels`` of segments in order).
    """

    labels: torch.Tensor
    starts: torch.Tensor
    scores: torch.Tensor | None


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name}: expected an int >= {low}, got {value}")
    return value


def _valid(lengths: torch.Tensor, T: int) -> torch.Tensor:
    return torch.arange(T, device=lengths.device) < lengths[..., None]


def labels_to_segments(labels: torch.Tensor, lengths: torch.Tensor, K: int) -> Segmentation:
    """The segmentation that per-position labels describe, batched and on the labels' device.

    Segments are the maximal runs of equal labels in ``[0, L)``; a run longer than ``K`` is split
    into ``K``-sized pieces, the last one shorter (the gold rule of ``docs/conventions.md``
    section 2). Labels at padding are ignored.

    Args:
        labels: ``(..., batch, T)`` integer labels (any value at padding).
        lengths: ``(batch,)`` integer lengths in ``[1, T]`` (``docs/conventions.md``
            section 5: a floating dtype is a ``TypeError``, integral or not).
        K: the longest segment (``>= 1``).

    Returns:
        :class:`Segmentation` with ``scores=None`` (score it with a model, e.g.
        ``SemiCRFDistribution.log_prob``); ``labels`` are ``-1`` past each length.

    Raises:
        ValueError: shapes that do not match, or lengths outside ``[1, T]``.
        TypeError: floating labels or lengths.
    """
    _check_int("K", K, 1)
    if not isinstance(labels, torch.Tensor) or labels.dim() < 2:
        raise ValueError(
            f"labels: expected a (..., batch, T) integer tensor, got "
            f"{getattr(labels, 'shape', type(labels).__name__)}"
        )
    if labels.is_floating_point() or labels.is_complex():
        raise TypeError(f"labels: expected an integer tensor, got {labels.dtype}")
    T = labels.shape[-1]
    lengths = torch.as_tensor(lengths, device=labels.device)
    if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
        raise TypeError(f"lengths: expected an integer dtype, got {lengths.dtype}")
    lengths = lengths.long()
    if lengths.shape != labels.shape[-2:-1]:
        raise ValueError(
            f"lengths: expected shape ({labels.shape[-2]},) (the batch of labels "
            f"{tuple(labels.shape)}), got {tuple(lengths.shape)}"
        )
    if lengths.numel() and (int(lengths.min()) < 1 or int(lengths.max()) > T):
        raise ValueError(f"lengths: expected values in [1, T] = [1, {T}], got {lengths.tolist()}")
    valid = _valid(lengths, T).expand(labels.shape)
    labels = labels.long()
    change = torch.ones_like(valid)
    change[..., 1:] = labels[..., 1:] != labels[..., :-1]
    change &= valid
    t = torch.arange(T, device=labels.device).expand(labels.shape)
    run_start = torch.cummax(torch.where(change, t, torch.zeros_like(t)), dim=-1).values
    starts = valid & ((t - run_start) % K == 0)
    return Segmentation(torch.where(valid, labels, -1), starts, None)


def _segment_fields(segments: Any) -> tuple[torch.Tensor, ...]:
    """``(starts, durations, labels, counts)`` of packed or listed segments."""
    fields = ("starts", "durations", "labels", "num_segments")
    if all(hasattr(segments, f) for f in fields):
        return tuple(getattr(segments, f) for f in fields)
    if not isinstance(segments, Sequence) or isinstance(segments, (str, bytes)):
        raise TypeError(
            "segmentation_or_segments: expected a Segmentation, a ViterbiPath or a list (per "
            f"sequence) of (start, end, label) segments, got {type(segments).__name__}"
        )
    rows = []
    for b, row in enumerate(segments):
        parsed = []
        for i, seg in enumerate(row):
            if all(hasattr(seg, f) for f in ("start", "end", "label")):
                s, e, c = seg.start, seg.end, seg.label
            else:
                s, e, c = seg
            s, e, c = int(s), int(e), int(c)
            if e < s:
                raise ValueError(
                    f"segmentation_or_segments[{b}][{i}]: expected end >= start, got ({s}, {e}, {c})"
                )
            parsed.append((s, e - s + 1, c))
        rows.append(parsed)
    width = max([len(r) for r in rows] + [1])
    packed = torch.full((3, len(rows), width), -1, dtype=torch.int64)
    for b, row in enumerate(rows):
        if row:
            packed[:, b, : len(row)] = torch.tensor(row, dtype=torch.int64).T
    counts = torch.tensor([len(r) for r in rows], dtype=torch.int64)
    return packed[0], packed[1], packed[2], counts


def segments_to_labels(segmentation_or_segments: Any, T: int) -> torch.Tensor:
    """Per-position labels ``(..., batch, T)`` int64 (``-1`` where no segment covers a position).

    Args:
        segmentation_or_segments: a :class:`Segmentation` (its ``labels``, padded with ``-1``
            to ``T``, or cut to ``T`` where no segment covers the positions cut), a packed
            per-segment result with ``starts``, ``durations``, ``labels`` and ``num_segments``
            (e.g. :class:`semicrf_kernels.ViterbiPath`), or a list per sequence of segments
            ``(start, end_inclusive, label)`` (or objects with ``start``, ``end``,
            ``label`` such as ``semicrf_nn.Segment``).
        T: the number of positions of the result.

    Returns:
        ``(..., batch, T)`` int64 labels on the input's device (the CPU for lists); ``-1`` at
        positions no segment covers (past each length).

    Raises:
        ValueError: a segment that ends before it starts, or reaches past ``T`` (for a
            :class:`Segmentation`: a label at a position ``>= T``).
    """
    _check_int("T", T, 0)
    if isinstance(segmentation_or_segments, Segmentation):
        labels = segmentation_or_segments.labels
        if labels.shape[-1] >= T:
            covered = labels[..., T:] >= 0
            if bool(covered.any()):
                last = T + int(covered.nonzero()[:, -1].max())
                raise ValueError(
                    f"segmentation_or_segments: a segment covers position {last} >= T = {T} "
                    f"(labels of shape {tuple(labels.shape)})"
                )
            return labels[..., :T].clone()
        pad = labels.new_full((*labels.shape[:-1], T - labels.shape[-1]), -1)
        return torch.cat([labels, pad], dim=-1)
    starts, durations, labels, counts = _segment_fields(segmentation_or_segments)
    slot = torch.arange(starts.shape[-1], device=starts.device)
    present = slot < counts[..., None]
    ends = torch.where(present, starts + durations, 0)
    if present.any() and int(ends.max()) > T:
        raise ValueError(f"segmentation_or_segments: a segment ends at {int(ends.max())} > T = {T}")
    # Each covered position looks up the last segment starting at or before it.
    first = torch.where(present, starts, T)  # absent slots start "at T"
    t = torch.arange(T, device=starts.device)
    queries = t.expand(*first.shape[:-1], T).contiguous()
    index = (torch.searchsorted(first.contiguous(), queries, right=True) - 1).clamp(min=0)
    owner_end = ends.gather(-1, index)
    owner_label = labels.gather(-1, index)
    covered = (first.gather(-1, index) <= t) & (t < owner_end)
    return torch.where(covered, owner_label.long(), -1)


def segmentation_from_path(path: Any) -> Segmentation:
    """The :class:`Segmentation` of a packed per-segment result such as ``ViterbiPath``.

    Args:
        path: has ``scores (batch,)``, and ``(batch, N)`` ``starts``, ``durations``, ``labels``
            with ``num_segments (batch,)``, its slots ``N`` equal to ``T`` (as
            :func:`semicrf_kernels.semi_crf_streaming_viterbi` returns).

    Returns:
        :class:`Segmentation` with ``(batch, T)`` labels and starts and ``scores`` the path's.
    """
    T = path.starts.shape[-1]
    labels = segments_to_labels(path, T)
    slot = torch.arange(T, device=path.starts.device)
    present = slot < path.num_segments[..., None]
    starts = torch.zeros(labels.shape, dtype=torch.bool, device=labels.device)
    where = torch.where(present, path.starts, 0).long()
    starts.scatter_(-1, where, present)
    # scatter_ of False into slot 0 must not erase a real start at 0: present rows start at 0.
    starts[..., 0] = path.num_segments > 0
    return Segmentation(labels, starts, path.scores)
