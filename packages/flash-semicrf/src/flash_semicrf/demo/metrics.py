"""Segmentation metrics on per-position label sequences (the demo's scores).

A *boundary* is a position ``t`` in ``(0, L)`` where the label changes (the start of a new
region); boundaries are matched exactly and counts are micro-averaged over sequences. Working
from label changes (not from decoder segments) scores both models the same way: a semi-CRF
that splits a long region into two same-label segments is not credited with a boundary.
"""

from __future__ import annotations

from collections.abc import Sequence


def label_runs(labels: Sequence[int]) -> list[tuple[int, int, int]]:
    """Maximal runs ``(start, end_inclusive, label)`` of ``labels``."""
    runs: list[tuple[int, int, int]] = []
    start = 0
    for t in range(1, len(labels) + 1):
        if t == len(labels) or labels[t] != labels[start]:
            runs.append((start, t - 1, int(labels[start])))
            start = t
    return runs


def boundaries(labels: Sequence[int]) -> set[int]:
    """Positions ``t`` in ``(0, len(labels))`` where the label changes (a new region starts)."""
    return {start for start, _, _ in label_runs(labels)[1:]}


def segmentation_metrics(
    gold: Sequence[Sequence[int]], pred: Sequence[Sequence[int]]
) -> dict[str, float]:
    """Boundary precision/recall/F1, segment accuracy and position accuracy.

    Args:
        gold, pred: per-sequence label lists of equal lengths.

    Returns:
        ``boundary_precision``, ``boundary_recall``, ``boundary_f1`` (exact match,
        micro-averaged), ``segment_accuracy`` (fraction of gold regions predicted exactly: same
        start, end and label) and ``position_accuracy``.
    """
    if len(gold) != len(pred):
        raise ValueError(
            f"gold and pred must have the same number of sequences, got {len(gold)} and {len(pred)}"
        )
    tp = fp = fn = seg_hit = seg_total = pos_hit = pos_total = 0
    for g, p in zip(gold, pred):
        if len(g) != len(p):
            raise ValueError(f"sequence lengths differ: gold {len(g)}, pred {len(p)}")
        gb, pb = boundaries(g), boundaries(p)
        tp += len(gb & pb)
        fp += len(pb - gb)
        fn += len(gb - pb)
        gold_runs = label_runs(g)
        seg_hit += len(set(gold_runs) & set(label_runs(p)))
        seg_total += len(gold_runs)
        pos_hit += sum(int(a == b) for a, b in zip(g, p))
        pos_total += len(g)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "boundary_precision": precision,
        "boundary_recall": recall,
        "boundary_f1": f1,
        "segment_accuracy": seg_hit / seg_total if seg_total else 0.0,
        "position_accuracy": pos_hit / pos_total if pos_total else 0.0,
    }
