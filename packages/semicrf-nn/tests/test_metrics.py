"""Boundary precision / recall / F1."""

from __future__ import annotations

import pytest

from semicrf_nn import Segment
from semicrf_nn.metrics import BoundaryScores, boundary_f1, segment_boundaries


def test_segment_boundaries_exclude_position_zero() -> None:
    bounds, length = segment_boundaries([Segment(0, 2, 1), Segment(3, 3, 0), (4, 7, 2)])
    assert bounds == {3, 4} and length == 8
    assert segment_boundaries([]) == (set(), 0)


def test_boundary_f1_counts_exact_matches_micro_averaged() -> None:
    gold = [[(0, 2, 0), (3, 5, 1), (6, 9, 0)], [(0, 4, 1)]]
    pred = [[(0, 2, 1), (3, 6, 1), (7, 9, 0)], [(0, 1, 1), (2, 4, 1)]]
    # seq 0: gold {3, 6}, pred {3, 7}: tp 1, fp 1, fn 1; seq 1: gold {}, pred {2}: fp 1.
    scores = boundary_f1(pred, gold)
    assert (scores.true_positives, scores.false_positives, scores.false_negatives) == (1, 2, 1)
    assert scores.precision == pytest.approx(1 / 3)
    assert scores.recall == pytest.approx(1 / 2)
    assert scores.f1 == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    # Labels do not matter, only where segments start.
    assert boundary_f1(gold, gold) == BoundaryScores(1.0, 1.0, 1.0, 2, 0, 0)


def test_boundary_f1_degenerate_cases() -> None:
    single = [[(0, 4, 0)]]
    assert boundary_f1(single, single).f1 == 1.0  # nothing to find, nothing invented
    missed = boundary_f1(single, [[(0, 1, 0), (2, 4, 0)]])
    # An empty denominator counts as 1.0 only when there are no errors at all.
    assert missed.recall == 0.0 and missed.precision == 0.0 and missed.f1 == 0.0
    invented = boundary_f1([[(0, 1, 0), (2, 4, 0)]], single)
    assert invented.precision == 0.0 and invented.recall == 0.0 and invented.f1 == 0.0
    # An empty prediction (no allowed segmentation) misses every gold boundary.
    assert boundary_f1([[]], [[(0, 1, 0), (2, 4, 0)]]).false_negatives == 1


def test_boundary_f1_errors() -> None:
    with pytest.raises(ValueError, match="gold has 2"):
        boundary_f1([[(0, 1, 0)]], [[(0, 1, 0)], [(0, 1, 0)]])
    with pytest.raises(ValueError, match="cover 3 positions but gold covers 5"):
        boundary_f1([[(0, 2, 0)]], [[(0, 4, 0)]])
