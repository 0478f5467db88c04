"""The banded prototype: the structural pattern, the ordering choice and its value."""

from __future__ import annotations

import pytest
import torch

from semicrf_core import apply_permutation, measure_effective_bandwidth
from semicrf_core.algorithms.banded import banded_tree, choose_ordering, step_pattern
from semicrf_core.algorithms.binary_tree import step_matrices
from semicrf_core.algorithms.linear_scan import linear_scan
from semicrf_semirings import LogSemiring, MaxSemiring, StdSemiring


@pytest.mark.parametrize(("K", "C"), [(2, 1), (4, 3), (6, 2)])
def test_pattern_covers_every_nonzero_of_the_step_matrices(K, C, gen):
    edge = torch.rand((2, 7, K, C, C), generator=gen) + 0.1
    lengths = torch.tensor([8, 3])
    mats = step_matrices(StdSemiring, StdSemiring.convert(edge), lengths)[0]
    present = (mats != 0).any(0).any(0)
    pattern = step_pattern(K, C)
    assert torch.all(pattern[present]) and torch.equal(present, pattern)


@pytest.mark.parametrize(("K", "C"), [(2, 3), (5, 2), (8, 1), (6, 3)])
def test_chosen_ordering_is_a_permutation_no_wider_than_the_natural_one(K, C):
    perm, lu, ld = choose_ordering(K, C)
    n = (K - 1) * C
    assert sorted(perm.tolist()) == list(range(n))
    pattern = step_pattern(K, C)
    permuted = apply_permutation(pattern, perm)
    assert max(lu, ld) == measure_effective_bandwidth(permuted)
    i, j = pattern.nonzero(as_tuple=True)
    natural = int((j - i).clamp(min=0).max()) + int((i - j).clamp(min=0).max())
    assert lu + ld <= natural


@pytest.mark.parametrize("semiring", [LogSemiring, MaxSemiring], ids=lambda s: s.__name__)
def test_agrees_with_the_linear_scan(semiring, gen):
    B, N, K, C = 3, 19, 5, 3
    edge = semiring.convert(torch.randn((B, N - 1, K, C, C), generator=gen, dtype=torch.float64))
    lengths = torch.tensor([19, 10, 3])
    torch.testing.assert_close(
        banded_tree(semiring, edge, lengths), linear_scan(semiring, edge, lengths)
    )
