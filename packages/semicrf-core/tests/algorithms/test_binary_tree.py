"""The binary tree's step matrices: structure, the identity past a sequence's end, paths."""

from __future__ import annotations

import torch

from semicrf_core.algorithms.binary_tree import binary_tree, step_matrices
from semicrf_core.algorithms.linear_scan import linear_scan
from semicrf_semirings import StdSemiring


def test_step_matrices_hold_new_segments_countdowns_and_identities(gen):
    B, N, K, C = 2, 5, 4, 2
    D = K - 1
    edge = torch.rand((B, N - 1, K, C, C), generator=gen, dtype=torch.float64) + 0.5
    lengths = torch.tensor([5, 3])
    m = step_matrices(StdSemiring, StdSemiring.convert(edge), lengths)[0]
    m = m.view(B, N - 1, D, C, D, C)
    for b in range(B):
        for f in range(N - 1):
            expected = torch.zeros(D, C, D, C, dtype=torch.float64)
            if f >= int(lengths[b]) - 1:
                for r in range(D):
                    expected[r, :, r, :] = torch.eye(C)
            else:
                for d in range(1, K):
                    expected[d - 1, :, 0, :] = edge[b, f, d]
                for r in range(1, D):
                    expected[r - 1, :, r, :] = torch.eye(C)
            torch.testing.assert_close(m[b, f], expected)


def test_counts_structures_with_unit_potentials():
    # With all potentials 1 the Std value is the number of structures; both sides count.
    B, N, K, C = 2, 9, 4, 3
    edge = StdSemiring.convert(torch.ones(B, N - 1, K, C, C, dtype=torch.float64))
    lengths = torch.tensor([9, 4])
    torch.testing.assert_close(
        binary_tree(StdSemiring, edge, lengths), linear_scan(StdSemiring, edge, lengths)
    )
    count = [1] + [0] * 8
    for n in range(1, 9):
        count[n] = sum(count[n - d] * C for d in range(1, min(K - 1, n) + 1))
    expected = torch.tensor([C * count[8], C * count[3]], dtype=torch.float64)
    torch.testing.assert_close(binary_tree(StdSemiring, edge, lengths)[0], expected)
