"""Segmentation metrics: boundary precision / recall / F1.

A *boundary* is the start ``s`` of a segment with ``0 < s < L`` (position 0 always starts a
segment, so it carries no information). Predicted and gold boundaries must match exactly;
counts are summed over all sequences before dividing (micro-average).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from .segment import Segment

__all__ = ["BoundaryScores", "boundary_f1", "segment_boundaries"]

SegmentLike = Segment | tuple[int, int, int]


class BoundaryScores(NamedTuple):
    """Micro-averaged boundary detection scores.

    ``precision = tp / (tp + fp)``, ``recall = tp / (tp + fn)``, ``f1`` their harmonic mean.
    A ratio whose denominator is 0 is 1.0 when there is no error at all (no boundary on either
    side: a perfect answer), else 0.0.
    """

    precision: float
    recall: float
    f1: float
    true_positives: int
    false_positives: int
    false_negatives: int


def _bounds(seg: SegmentLike) -> tuple[int, int]:
    if isinstance(seg, Segment):
        return seg.start, seg.end
    return int(seg[0]), int(seg[1])


def segment_boundaries(segments: Sequence[SegmentLike]) -> tuple[set[int], int]:
    """Boundaries of one segmentation and the length it covers.

    Args:
        segments: ``Segment`` objects or ``(start, end_inclusive, label)`` tuples, in order.

    Returns:
        ``(boundaries, length)``: the set of segment starts ``s`` with ``0 < s < length``, and
        ``length = last end + 1`` (0 for an empty list).
    """
    if not segments:
        return set(), 0
    length = _bounds(segments[-1])[1] + 1
    return {s for s, _ in map(_bounds, segments) if 0 < s < length}, length


def _ratio(num: int, den: int, errors: int) -> float:
    if den > 0:
        return num / den
    return 1.0 if errors == 0 else 0.0


def boundary_f1(
    predicted: Sequence[Sequence[SegmentLike]], gold: Sequence[Sequence[SegmentLike]]
) -> BoundaryScores:
    """Boundary precision, recall and F1 over a batch (micro-averaged, exact matches).

    Args:
        predicted: ``predicted[b]`` the predicted segments of sequence ``b`` (e.g.
            ``ViterbiResult.segments``).
        gold: ``gold[b]`` the gold segments (e.g. ``labels_to_segment_lists(labels, lengths, T)``
            for maximal label runs).

    Returns:
        :class:`BoundaryScores`.
    """
    if len(predicted) != len(gold):
        raise ValueError(f"predicted has {len(predicted)} sequences but gold has {len(gold)}")
    tp = fp = fn = 0
    for b, (pred_b, gold_b) in enumerate(zip(predicted, gold)):
        p, lp = segment_boundaries(pred_b)
        g, lg = segment_boundaries(gold_b)
        if pred_b and lp != lg:
            raise ValueError(
                f"sequence {b}: predicted segments cover {lp} positions but gold covers {lg}"
            )
        tp += len(p & g)
        fp += len(p - g)
        fn += len(g - p)
    precision = _ratio(tp, tp + fp, fp + fn)
    recall = _ratio(tp, tp + fn, fp + fn)
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return BoundaryScores(precision, recall, f1, tp, fp, fn)
