"""Segmentation metrics against hand-computed values."""

from __future__ import annotations

import itertools

import pytest
import torch

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


def _independent(gold, pred) -> dict[str, float]:
    # Boundaries from torch.diff, regions as (start, end, label) from the boundary list.
    tp = fp = fn = seg_hit = seg_total = pos_hit = pos_total = 0
    for g, p in zip(gold, pred):
        gt, pt = torch.tensor(g), torch.tensor(p)
        gb = set((torch.diff(gt) != 0).nonzero()[:, 0].add(1).tolist())
        pb = set((torch.diff(pt) != 0).nonzero()[:, 0].add(1).tolist())
        tp, fp, fn = tp + len(gb & pb), fp + len(pb - gb), fn + len(gb - pb)

        def regions(b, lab):
            cuts = [0, *sorted(b), len(lab)]
            return {(s, e - 1, lab[s]) for s, e in itertools.pairwise(cuts)}

        gr = regions(gb, g)
        seg_hit, seg_total = seg_hit + len(gr & regions(pb, p)), seg_total + len(gr)
        pos_hit, pos_total = pos_hit + int((gt == pt).sum()), pos_total + len(g)
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    return {
        "boundary_precision": prec,
        "boundary_recall": rec,
        "boundary_f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0,
        "segment_accuracy": seg_hit / seg_total,
        "position_accuracy": pos_hit / pos_total,
    }


@pytest.mark.parametrize("seed", range(4))
def test_metrics_match_an_independent_computation(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    gold, pred = [], []
    for _ in range(5):
        n = int(torch.randint(1, 40, (1,), generator=gen))
        # Sticky random labels: runs of several positions, as in a segmentation.
        g = torch.randint(0, 3, (n,), generator=gen)
        keep = torch.rand(n, generator=gen) < 0.7
        for t in range(1, n):
            if keep[t]:
                g[t] = g[t - 1]
        p = torch.where(
            torch.rand(n, generator=gen) < 0.15, torch.randint(0, 3, (n,), generator=gen), g
        )
        gold.append(g.tolist())
        pred.append(p.tolist())
    got = segmentation_metrics(gold, pred)
    for key, value in _independent(gold, pred).items():
        assert got[key] == pytest.approx(value, abs=1e-12), key
