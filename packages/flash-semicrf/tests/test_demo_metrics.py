"""Segmentation metrics against hand-computed values."""

from __future__ import annotations

import pytest

from flash_semicrf.demo.metrics import boundaries, label_runs, segmentation_metrics


def test_runs_and_boundaries() -> None:
    labels = [0, 0, 1, 1, 1, 2, 0]
    assert label_runs(labels) == [(0, 1, 0), (2, 4, 1), (5, 5, 2), (6, 6, 0)]
    assert boundaries(labels) == {2, 5, 6}
    assert boundaries([3]) == set()


def test_metrics_by_hand() -> None:
    gold = [[0, 0, 1, 1, 2, 2], [1, 1, 1]]
    pred = [[0, 1, 1, 1, 2, 2], [1, 0, 1]]
    # seq 0: gold {2, 4}, pred {1, 4}: tp 1, fp 1, fn 1; seq 1: gold {}, pred {1, 2}: fp 2
    m = segmentation_metrics(gold, pred)
    assert m["boundary_precision"] == pytest.approx(1 / 4)
    assert m["boundary_recall"] == pytest.approx(1 / 2)
    assert m["boundary_f1"] == pytest.approx(2 * (1 / 4) * (1 / 2) / (1 / 4 + 1 / 2))
    # gold regions: (0,1,0),(2,3,1),(4,5,2),(0,2,1); exact hits: (4,5,2) only
    assert m["segment_accuracy"] == pytest.approx(1 / 4)
    assert m["position_accuracy"] == pytest.approx(7 / 9)


def test_perfect_prediction() -> None:
    gold = [[0, 1, 1, 2], [2, 2, 0]]
    m = segmentation_metrics(gold, gold)
    assert m["boundary_f1"] == 1.0 and m["segment_accuracy"] == 1.0


def test_mismatched_inputs() -> None:
    with pytest.raises(ValueError, match="number of sequences"):
        segmentation_metrics([[0]], [])
    with pytest.raises(ValueError, match="lengths differ"):
        segmentation_metrics([[0, 1]], [[0]])
