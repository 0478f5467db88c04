"""The vectorized scan: its edge re-indexing and its agreement with the ring-buffer scan."""

from __future__ import annotations

import pytest
import torch

from semicrf_core.algorithms.linear_scan import linear_scan
from semicrf_core.algorithms.vectorized import incoming_edges, vectorized_scan
from semicrf_semirings import EntropySemiring, KMaxSemiring, LogSemiring, MaxSemiring


def test_incoming_edges_reindex_by_end_fence(gen):
    B, N, K, C = 2, 6, 4, 3
    edge = LogSemiring.convert(torch.randn((B, N - 1, K, C, C), generator=gen))
    e_in = incoming_edges(LogSemiring, edge)
    assert e_in.shape == (1, B, N - 1, C, K - 1, C)
    for f in range(1, N):
        for d in range(1, K):
            got = e_in[:, :, f - 1, :, d - 1, :]
            if f - d >= 0:
                torch.testing.assert_close(got, edge[:, :, f - d, d])
            else:
                assert torch.all(got == LogSemiring.zero)


@pytest.mark.parametrize(
    "semiring",
    [LogSemiring, MaxSemiring, KMaxSemiring(3), EntropySemiring],
    ids=lambda s: s.__name__,
)
def test_agrees_with_the_ring_buffer_scan(semiring, gen):
    B, N, K, C = 3, 30, 7, 3
    edge = semiring.convert(torch.randn((B, N - 1, K, C, C), generator=gen, dtype=torch.float64))
    lengths = torch.tensor([30, 17, 5])
    torch.testing.assert_close(
        vectorized_scan(semiring, edge, lengths), linear_scan(semiring, edge, lengths)
    )
