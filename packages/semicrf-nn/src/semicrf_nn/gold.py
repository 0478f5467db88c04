"""Gold segmentations and their scores under the streaming model (conventions sections 1-2).

The gold score uses exactly the model the partition function sums over: the first segment gets
the start score ``logsumexp_{c'} transition[c', c]``, duration ``d`` reads row ``d - 1`` of
``duration_bias`` and a run of equal labels longer than ``K`` is split into consecutive segments
of ``K`` positions (the last one shorter). Hence ``log Z - gold >= 0``: a true negative
log-likelihood.

``score_gold_vectorized`` is the fast path (no Python loop over positions or segments);
``score_gold_reference`` is a plain loop over ``Segment`` objects written for clarity, used by
the tests to check it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from semicrf_kernels import NEG_INF

from .segment import Segment

__all__ = [
    "GoldSegmentation",
    "describe_forbidden_gold",
    "gold_segment_starts",
    "labels_to_segment_lists",
    "safe_logsumexp",
    "score_gold_reference",
    "score_gold_vectorized",
    "segments_to_tensors",
    "start_scores",
]

_FORBIDDEN = NEG_INF / 2


def safe_logsumexp(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``logsumexp`` over ``dim`` that is ``-inf`` with zero gradient (never NaN) on a slice of
    only ``-inf`` values (``torch.logsumexp``'s gradient there is NaN)."""
    m = x.detach().amax(dim=dim, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    total = torch.exp(x - m).sum(dim=dim, keepdim=True)
    alive = total > 0
    out = torch.where(
        alive, m + torch.log(torch.where(alive, total, torch.ones_like(total))), -torch.inf
    )
    return out.squeeze(dim)


def start_scores(transition: torch.Tensor) -> torch.Tensor:
    """Start score of the first segment: ``logsumexp_{c'} transition[c', c]``.

    Args:
        transition: ``(C, C)`` or ``(K, C, C)`` float, ``-inf`` for forbidden transitions.

    Returns:
        ``(C,)`` or ``(K, C)``: ``-inf`` for a label that no transition may enter.
    """
    return safe_logsumexp(transition, dim=-2)


def _valid_mask(lengths: torch.Tensor, T: int) -> torch.Tensor:
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]


def gold_segment_starts(
    labels: torch.Tensor,
    lengths: torch.Tensor,
    max_duration: int,
    run_starts: torch.Tensor | None = None,
) -> torch.Tensor:
    """Where gold segments start, with runs longer than ``K`` split into ``K``-sized pieces.

    Args:
        labels: ``(batch, T)`` integer gold label of each position (padding ignored).
        lengths: ``(batch,)`` integer valid lengths.
        max_duration: ``K``.
        run_starts: optional ``(batch, T)`` bool. When given, runs start exactly there (explicit
            segments, which may put two same-label segments side by side); otherwise a run
            starts at 0 and wherever the label changes.

    Returns:
        ``(batch, T)`` bool, True at the first position of every gold segment (False at padding).
    """
    B, T = labels.shape
    valid = _valid_mask(lengths, T)
    t = torch.arange(T, device=labels.device).expand(B, T)
    if run_starts is None:
        change = torch.ones_like(valid)
        change[:, 1:] = labels[:, 1:] != labels[:, :-1]
    else:
        change = run_starts.clone()
    change[:, 0] = True
    change &= valid
    run_start = torch.cummax(torch.where(change, t, torch.zeros_like(t)), dim=1).values
    return valid & ((t - run_start) % max_duration == 0)


@dataclass
class GoldSegmentation:
    """Per-position view of a gold segmentation, one entry per segment **end** ``e``.

    All tensors are ``(batch, T)``; entries where ``is_end`` is False are meaningless.
    ``start``/``duration``/``label``/``prev`` (previous segment's label; meaningless for the
    first segment) are int64; the score parts are float64: ``content = cum[e+1,c] - cum[s,c]``,
    ``duration_score = duration_bias[d-1, c]``, ``transition_score`` (the start score for the
    first segment), ``boundary_score = proj_start[s,c] + proj_end[e,c]``.
    """

    is_end: torch.Tensor
    start: torch.Tensor
    duration: torch.Tensor
    label: torch.Tensor
    prev: torch.Tensor
    content: torch.Tensor
    duration_score: torch.Tensor
    transition_score: torch.Tensor
    boundary_score: torch.Tensor

    def segment_scores(self) -> torch.Tensor:
        """``(batch, T)`` float64: each segment's total score at its end, 0 elsewhere.

        Forbidden choices (scores ``<= NEG_INF / 2`` or ``-inf``) give ``-inf``.
        """
        allowed = (self.duration_score > _FORBIDDEN) & (self.transition_score > _FORBIDDEN)
        total = self.content + self.duration_score + self.transition_score + self.boundary_score
        total = torch.where(allowed, total, torch.full_like(total, -torch.inf))
        return torch.where(self.is_end, total, torch.zeros_like(total))


def _check_inputs(
    cum_scores: torch.Tensor,
    labels: torch.Tensor | None,
    lengths: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    max_duration: int,
    proj_start: torch.Tensor | None,
    proj_end: torch.Tensor | None,
) -> None:
    for name, x in (
        ("cum_scores", cum_scores),
        ("lengths", lengths),
        ("transition", transition),
        ("duration_bias", duration_bias),
    ):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if isinstance(max_duration, bool) or not isinstance(max_duration, int) or max_duration < 1:
        raise ValueError(f"max_duration must be a positive int, got {max_duration!r}")
    if cum_scores.ndim != 3 or cum_scores.shape[1] < 2:
        raise ValueError(
            f"cum_scores must be (batch, T+1, C) with T >= 1, got {tuple(cum_scores.shape)}"
        )
    B, T1, C = cum_scores.shape
    T, K = T1 - 1, max_duration
    if lengths.shape != (B,):
        raise ValueError(f"lengths must have shape ({B},), got {tuple(lengths.shape)}")
    if labels is not None and labels.shape != (B, T):
        raise ValueError(f"labels must have shape ({B}, {T}), got {tuple(labels.shape)}")
    if duration_bias.shape != (K, C):
        raise ValueError(
            f"duration_bias must have shape (K, C) = ({K}, {C}), got {tuple(duration_bias.shape)}"
        )
    if transition.shape not in ((C, C), (K, C, C)):
        raise ValueError(
            f"transition must have shape (C, C) = ({C}, {C}) or (K, C, C) = ({K}, {C}, {C}), "
            f"got {tuple(transition.shape)}"
        )
    for name, p in (("proj_start", proj_start), ("proj_end", proj_end)):
        if p is not None and p.shape != (B, T, C):
            raise ValueError(
                f"{name} must have shape (batch, T, C) = ({B}, {T}, {C}), got {tuple(p.shape)}"
            )


def segments_to_tensors(
    segments: Sequence[Sequence[Segment | tuple[int, int, int]]],
    lengths: torch.Tensor,
    T: int,
    num_classes: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Convert explicit gold segments to per-position tensors, checking that they tile ``[0, L)``.

    Args:
        segments: ``segments[b]`` lists sequence ``b``'s segments in order, each a ``Segment``
            or a ``(start, end, label)`` tuple with ``end`` inclusive.
        lengths: ``(batch,)`` valid lengths.
        T: padded length.
        num_classes: ``C``.

    Returns:
        ``labels (batch, T)`` int64 (0 at padding) and ``run_starts (batch, T)`` bool (True where
        a given segment starts). Feed both to :func:`gold_segment_starts`; a given segment longer
        than ``K`` is split like a label run.
    """
    B = lengths.shape[0]
    if not isinstance(segments, Sequence) or len(segments) != B:
        raise ValueError(
            f"segments must be a list of {B} lists (one per sequence), got {type(segments).__name__}"
        )
    flat = []
    for b, segs in enumerate(segments):
        if len(segs) == 0:
            raise ValueError(f"segments[{b}] is empty; it must tile [0, lengths[{b}])")
        for seg in segs:
            s, e, c = (
                (seg.start, seg.end, seg.label) if isinstance(seg, Segment) else tuple(seg)[:3]
            )
            flat.append((b, int(s), int(e), int(c)))
    device = lengths.device
    idx = torch.tensor(flat, dtype=torch.int64, device=device)
    seq, start, end, label = idx.unbind(1)
    L = lengths.to(torch.int64)
    # Vectorised tiling checks: first segment at 0, each next one right after the previous end,
    # the last one ending at L-1, no empty segment, labels in range.
    new_seq = torch.ones_like(seq, dtype=torch.bool)
    new_seq[1:] = seq[1:] != seq[:-1]
    last_of_seq = torch.ones_like(new_seq)
    last_of_seq[:-1] = new_seq[1:]
    prev_end = torch.cat([end.new_full((1,), -1), end[:-1]])
    problems = [
        (end < start, "has end < start"),
        ((label < 0) | (label >= num_classes), f"has a label outside [0, {num_classes})"),
        (new_seq & (start != 0), "does not start at position 0"),
        (~new_seq & (start != prev_end + 1), "does not start right after the previous segment"),
        (last_of_seq & (end != L[seq] - 1), "does not end at lengths[b] - 1"),
    ]
    for bad, what in problems:
        if bool(bad.any()):
            i = int(bad.nonzero()[0])
            b = int(seq[i])
            raise ValueError(
                f"segments[{b}] must tile [0, {int(L[b])}) with labels in [0, {num_classes}): segment "
                f"(start={int(start[i])}, end={int(end[i])}, label={int(label[i])}) {what}"
            )
    labels = torch.zeros(B, T, dtype=torch.int64, device=device)
    run_starts = torch.zeros(B, T, dtype=torch.bool, device=device)
    run_starts[seq, start] = True
    dur = end - start + 1
    pos = torch.arange(int(dur.sum()), device=device) - torch.repeat_interleave(
        torch.cumsum(dur, 0) - dur, dur
    )
    labels[torch.repeat_interleave(seq, dur), torch.repeat_interleave(start, dur) + pos] = (
        torch.repeat_interleave(label, dur)
    )
    return labels, run_starts


def gold_segmentation(
    cum_scores: torch.Tensor,
    labels: torch.Tensor,
    lengths: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    max_duration: int,
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
    run_starts: torch.Tensor | None = None,
) -> GoldSegmentation:
    """Per-segment parts of the gold score, vectorised over batch and positions.

    Shapes as in :func:`score_gold_vectorized`; ``run_starts`` as in
    :func:`gold_segment_starts`. Arguments are assumed checked.
    """
    B, T1, C = cum_scores.shape
    T, K = T1 - 1, max_duration
    f64 = torch.float64
    device = cum_scores.device
    labels = labels.to(torch.int64)
    valid = _valid_mask(lengths, T)
    starts = gold_segment_starts(labels, lengths, K, run_starts)
    t = torch.arange(T, device=device).expand(B, T)
    next_is_start = torch.ones_like(starts)
    next_is_start[:, :-1] = starts[:, 1:]
    is_end = valid & (next_is_start | (t == lengths[:, None].to(torch.int64) - 1))
    seg_start = torch.cummax(torch.where(starts, t, torch.zeros_like(t)), dim=1).values
    duration = t - seg_start + 1
    label = labels.clamp(0, C - 1) * valid  # padding labels may be anything: never read
    prev = torch.gather(label, 1, (seg_start - 1).clamp(min=0))
    bidx = torch.arange(B, device=device)[:, None]

    cum = cum_scores.to(f64)
    content = cum[bidx, t + 1, label] - cum[bidx, seg_start, label]
    dur_row = (duration - 1).clamp(0, K - 1)
    duration_score = duration_bias.to(f64)[dur_row, label]
    trans = transition.to(f64)
    if trans.ndim == 2:
        between = trans[prev, label]
        start_score = start_scores(trans)[label]
    else:
        between = trans[dur_row, prev, label]
        start_score = start_scores(trans)[dur_row, label]
    transition_score = torch.where(seg_start == 0, start_score, between)
    boundary_score = torch.zeros_like(content)
    if proj_start is not None:
        boundary_score = boundary_score + proj_start.to(f64)[bidx, seg_start, label]
    if proj_end is not None:
        boundary_score = boundary_score + proj_end.to(f64)[bidx, t, label]
    return GoldSegmentation(
        is_end=is_end,
        start=seg_start,
        duration=duration,
        label=label,
        prev=prev,
        content=content,
        duration_score=duration_score,
        transition_score=transition_score,
        boundary_score=boundary_score,
    )


def score_gold_vectorized(
    cum_scores: torch.Tensor,
    labels: torch.Tensor | None,
    lengths: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    max_duration: int,
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
    *,
    segments: Sequence[Sequence[Segment | tuple[int, int, int]]] | None = None,
) -> torch.Tensor:
    """Score gold segmentations under the streaming model (start score included).

    Args:
        cum_scores: ``(batch, T+1, C)`` float cumulative per-position scores (``cum[:, 0] = 0``).
        labels: ``(batch, T)`` integer gold labels (padding ignored); ``None`` when
            ``segments`` is given. Gold segments are the maximal runs of equal labels in
            ``[0, L)``, runs longer than ``K`` split into ``K``-sized pieces (the last shorter).
        lengths: ``(batch,)`` integer valid lengths, ``1 <= L <= T``.
        transition: ``(C, C)`` or ``(K, C, C)`` float, ``transition[c_prev, c]``.
        duration_bias: ``(K, C)`` float, row ``d-1`` for duration ``d``.
        max_duration: ``K``.
        proj_start: optional ``(batch, T, C)`` float score read at a segment's first position.
        proj_end: optional ``(batch, T, C)`` float score read at a segment's last position.
        segments: explicit gold segments instead of ``labels`` (``segments[b]`` a list of
            ``Segment`` or ``(start, end, label)`` tiling ``[0, L)``); lets two adjacent segments
            share a label. Segments longer than ``K`` are split like runs.

    Returns:
        ``(batch,)`` gold scores in ``cum_scores``'s dtype (accumulated in float64); ``-inf``
        for a gold path that uses a forbidden transition, start or duration.
    """
    if (labels is None) == (segments is None):
        raise ValueError("pass exactly one of labels and segments")
    _check_inputs(
        cum_scores, labels, lengths, transition, duration_bias, max_duration, proj_start, proj_end
    )
    run_starts = None
    if segments is not None:
        labels, run_starts = segments_to_tensors(
            segments, lengths, cum_scores.shape[1] - 1, cum_scores.shape[2]
        )
    parts = gold_segmentation(
        cum_scores,
        labels,
        lengths,
        transition,
        duration_bias,
        max_duration,
        proj_start,
        proj_end,
        run_starts,
    )
    return parts.segment_scores().sum(dim=1).to(cum_scores.dtype)


def describe_forbidden_gold(parts: GoldSegmentation, batch_index: int) -> str | None:
    """A sentence naming the first forbidden step of sequence ``batch_index``'s gold, or None."""
    dur = parts.duration_score[batch_index].detach()
    link = parts.transition_score[batch_index].detach()
    bad = parts.is_end[batch_index] & ((dur <= _FORBIDDEN) | (link <= _FORBIDDEN))
    if not bool(bad.any()):
        return None
    e = int(bad.nonzero()[0])
    s = int(parts.start[batch_index, e])
    d = int(parts.duration[batch_index, e])
    c = int(parts.label[batch_index, e])
    where = f"segment [{s}, {e}] (label {c}, duration {d})"
    if float(dur[e]) <= _FORBIDDEN:
        return f"{where} has a forbidden duration (duration_bias[{d - 1}, {c}] is -inf)"
    if s == 0:
        return f"{where} is the first segment but label {c} has a -inf start score (every transition into it is forbidden)"
    p = int(parts.prev[batch_index, e])
    return f"{where} follows label {p} but the transition {p} -> {c} is forbidden"


def labels_to_segment_lists(
    labels: torch.Tensor, lengths: torch.Tensor, max_duration: int
) -> list[list[Segment]]:
    """Gold segments of per-position labels, as ``Segment`` lists (score 0.0).

    Args:
        labels: ``(batch, T)`` integer labels (padding ignored).
        lengths: ``(batch,)`` valid lengths.
        max_duration: ``K``: runs longer than ``K`` are split into ``K``-sized pieces.

    Returns:
        ``out[b]``: the segments of sequence ``b`` in order, tiling ``[0, lengths[b])``.
    """
    B = labels.shape[0]
    starts = gold_segment_starts(labels, lengths, max_duration)
    packed = torch.stack([starts.to(torch.int64), labels.to(torch.int64)], 0).cpu()
    starts_h, labels_h = packed[0].tolist(), packed[1].tolist()
    lengths_h = lengths.cpu().tolist()
    out: list[list[Segment]] = []
    for b in range(B):
        begins = [t for t in range(lengths_h[b]) if starts_h[b][t]]
        ends = [*(x - 1 for x in begins[1:]), lengths_h[b] - 1]
        out.append([Segment(s, e, labels_h[b][s], 0.0) for s, e in zip(begins, ends)])
    return out


def score_gold_reference(
    cum_scores: torch.Tensor,
    segments: Sequence[Sequence[Segment]],
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
) -> torch.Tensor:
    """Plain-loop float64 score of given segmentations (no splitting; for tests).

    Args:
        cum_scores: ``(batch, T+1, C)``; transition ``(C, C)``/``(K, C, C)``;
            duration_bias ``(K, C)``; proj_* ``(batch, T, C)`` or None.
        segments: ``segments[b]`` a list of ``Segment`` with durations ``<= K``.

    Returns:
        ``(batch,)`` float64 scores.
    """
    cum = cum_scores.double()
    trans = transition.double()
    db = duration_bias.double()
    out = []
    for b, segs in enumerate(segments):
        total = torch.zeros((), dtype=torch.float64)
        prev = None
        for seg in segs:
            s, e, c, d = seg.start, seg.end, seg.label, seg.end - seg.start + 1
            tr = trans if trans.ndim == 2 else trans[d - 1]
            total = total + cum[b, e + 1, c] - cum[b, s, c] + db[d - 1, c]
            total = total + (start_scores(tr)[c] if prev is None else tr[prev, c])
            if proj_start is not None:
                total = total + proj_start[b, s, c].double()
            if proj_end is not None:
                total = total + proj_end[b, e, c].double()
            prev = c
        out.append(total)
    return torch.stack(out)
