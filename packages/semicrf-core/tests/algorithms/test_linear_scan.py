"""The ring-buffer scan against a plain loop over fences."""

from __future__ import annotations

import torch

from semicrf_core.algorithms.linear_scan import linear_scan
from semicrf_semirings import LogSemiring


def _forward_loop(edge, L):
    """log Z of one sequence by the textbook recursion over fences (float64, lists)."""
    _, K, C, _ = edge.shape
    beta = [torch.zeros(C, dtype=edge.dtype)]
    for f in range(1, L):
        rows = []
        for c in range(C):
            terms = [
                beta[f - d][p] + edge[f - d, d, c, p]
                for d in range(1, min(K - 1, f) + 1)
                for p in range(C)
            ]
            rows.append(torch.logsumexp(torch.stack(terms), 0))
        beta.append(torch.stack(rows))
    return torch.logsumexp(beta[L - 1], 0)


def test_matches_the_plain_loop(gen):
    B, N, K, C = 3, 12, 5, 3
    edge = torch.randn((B, N - 1, K, C, C), generator=gen, dtype=torch.float64)
    lengths = torch.tensor([12, 7, 2])
    v = linear_scan(LogSemiring, LogSemiring.convert(edge), lengths)
    for b in range(B):
        torch.testing.assert_close(v[0, b], _forward_loop(edge[b], int(lengths[b])))


def test_k_larger_than_the_sequence(gen):
    edge = torch.randn((2, 3, 9, 2, 2), generator=gen, dtype=torch.float64)
    lengths = torch.tensor([4, 3])
    v = linear_scan(LogSemiring, LogSemiring.convert(edge), lengths)
    for b in range(2):
        torch.testing.assert_close(v[0, b], _forward_loop(edge[b], int(lengths[b])))
