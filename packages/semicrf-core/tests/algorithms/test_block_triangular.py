"""The block-triangular tree: its block and junction matrices and its value at awkward sizes."""

from __future__ import annotations

import pytest
import torch

from semicrf_core.algorithms.block_triangular import (
    _block_matrices,
    _junctions,
    block_triangular_tree,
)
from semicrf_core.algorithms.linear_scan import linear_scan
from semicrf_semirings import KMaxSemiring, LogSemiring, StdSemiring


def test_block_and_junction_matrices_are_block_triangular(gen):
    B, K, C, m = 2, 5, 2, 3
    W = K - 1
    edge = StdSemiring.convert(
        torch.rand((B, m * W, K, C, C), generator=gen, dtype=torch.float64) + 0.1
    )
    blocks = _block_matrices(StdSemiring, edge, m)[0].view(B, m, W, C, W, C)
    k = torch.arange(W)
    outside = (k.view(-1, 1) + k.view(1, -1)) > W  # k_out + k_in > K-1
    assert torch.all(blocks.permute(0, 1, 2, 4, 3, 5)[:, :, outside] == 0)
    inside = ~outside
    assert torch.all(blocks.permute(0, 1, 2, 4, 3, 5)[:, :, inside].sum((-1, -2)) > 0)
    junctions = _junctions(StdSemiring, edge, m)
    assert torch.all(junctions.block_indices.sum(1) <= W)
    dense = junctions.to_dense(StdSemiring)[0].view(B, m - 1, W, C, W, C)
    for j in range(1, m):
        g = j * W
        torch.testing.assert_close(
            dense[:, j - 1, 0, :, 0, :], torch.eye(C).expand(B, C, C).double()
        )
        for k1 in range(1, W):
            for k2 in range(1, W - k1 + 1):
                torch.testing.assert_close(
                    dense[:, j - 1, k1, :, k2, :], edge[0, :, g - k2, k1 + k2]
                )


def test_a_single_block_is_the_partition_function(gen):
    # One block from fence 0 with nothing crossing its ends: B_0[(0, c), (0, c0)] summed.
    B, K, C = 2, 5, 3
    edge = LogSemiring.convert(torch.randn((B, K - 1, K, C, C), generator=gen, dtype=torch.float64))
    lengths = torch.tensor([K, 3])
    torch.testing.assert_close(
        block_triangular_tree(LogSemiring, edge, lengths), linear_scan(LogSemiring, edge, lengths)
    )


@pytest.mark.parametrize(("N", "K"), [(2, 2), (9, 2), (10, 4), (12, 4), (14, 6), (23, 5)])
@pytest.mark.parametrize("semiring", [LogSemiring, KMaxSemiring(2)], ids=lambda s: s.__name__)
def test_agrees_with_the_linear_scan(semiring, N, K, gen):
    B, C = 3, 3
    edge = semiring.convert(torch.randn((B, N - 1, K, C, C), generator=gen, dtype=torch.float64))
    lengths = torch.randint(2, N + 1, (B,), generator=gen)
    torch.testing.assert_close(
        block_triangular_tree(semiring, edge, lengths), linear_scan(semiring, edge, lengths)
    )
