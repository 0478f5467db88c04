"""The package's brute-force enumeration against counting formulas and the test enumeration."""

from __future__ import annotations

import pytest
import torch

from semicrf_core import brute_force as bf
from semicrf_semirings import LogSemiring, StdSemiring


def _compositions(n: int, dmax: int) -> int:
    count = [1] + [0] * n
    for i in range(1, n + 1):
        count[i] = sum(count[i - d] for d in range(1, min(dmax, i) + 1))
    return count[n]


@pytest.mark.parametrize(("n", "dmax"), [(0, 1), (1, 1), (5, 1), (5, 3), (6, 2), (4, 9)])
def test_segmentations_are_all_compositions(n, dmax):
    segs = list(bf.segmentations(n, dmax))
    assert len(segs) == _compositions(n, dmax) == len(set(segs))
    assert all(sum(s) == n and all(1 <= d <= dmax for d in s) for s in segs)


@pytest.mark.parametrize(("n", "K", "C"), [(1, 2, 1), (5, 4, 3), (3, 6, 2), (4, 2, 2)])
def test_structures_are_those_of_the_independent_enumeration(n, K, C, ref):
    mine = {
        tuple(
            (s, d, c, prev)
            for (s, d, c), prev in zip(st.segments, (st.start_label, *(x[2] for x in st.segments)))
        )
        for st in bf.enumerate_structures(n, K, C)
    }
    theirs = {tuple(st) for st in ref.structures(n, K, C)}
    assert mine == theirs


def test_brute_force_values(gen, ref):
    edge = torch.randn((2, 5, 3, 2, 2), generator=gen, dtype=torch.float64)
    lengths = torch.tensor([6, 3])
    v, structs = bf.brute_force_logpartition(LogSemiring, edge, lengths)
    assert v.shape == (1, 2)
    for b in range(2):
        scores, _ = ref.structure_scores(edge, b, int(lengths[b]))
        assert len(structs[b]) == scores.numel()
        torch.testing.assert_close(v[0, b], torch.logsumexp(scores, 0))
    ones = torch.ones_like(edge)
    count, _ = bf.brute_force_logpartition(StdSemiring, ones, lengths)
    torch.testing.assert_close(
        count[0], torch.tensor([float(len(s)) for s in structs], dtype=torch.float64)
    )


def test_refuses_huge_enumerations(monkeypatch):
    monkeypatch.setattr(bf, "MAX_STRUCTURES", 10)
    with pytest.raises(ValueError, match="structures"):
        bf.brute_force_logpartition(LogSemiring, torch.zeros(1, 5, 3, 2, 2))
