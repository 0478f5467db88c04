"""Shared helpers: matrix chains and the exact length continuation."""

from __future__ import annotations

import pytest
import torch

from semicrf_core.algorithms._common import chain_product, extend_to_positions, identity
from semicrf_core.algorithms.linear_scan import linear_scan
from semicrf_semirings import EntropySemiring, KMaxSemiring, LogSemiring, MaxSemiring, StdSemiring


@pytest.mark.parametrize("steps", [1, 2, 5, 8])
def test_chain_product_equals_a_left_fold(steps, gen):
    mats = torch.randn((1, 3, steps, 4, 4), generator=gen, dtype=torch.float64)
    expected = mats[:, :, 0]
    for t in range(1, steps):
        expected = torch.logsumexp(mats[:, :, t].unsqueeze(-1) + expected.unsqueeze(-3), dim=-2)
    torch.testing.assert_close(chain_product(LogSemiring, mats), expected)


def test_identity_is_neutral(gen):
    x = LogSemiring.convert(torch.randn((2, 3, 3), generator=gen))
    eye = identity(LogSemiring, 3, x)
    torch.testing.assert_close(LogSemiring.matmul(eye, x), x)
    s = StdSemiring.convert(torch.randn((2, 3, 3), generator=gen))
    torch.testing.assert_close(StdSemiring.matmul(identity(StdSemiring, 3, s), s), s)


@pytest.mark.parametrize(
    "semiring",
    [LogSemiring, MaxSemiring, StdSemiring, KMaxSemiring(3), EntropySemiring],
    ids=lambda s: s.__name__,
)
def test_extension_keeps_every_semiring_value(semiring, gen):
    B, N, K, C = 3, 7, 4, 2
    log_edge = torch.randn((B, N - 1, K, C, C), generator=gen, dtype=torch.float64)
    edge = semiring.convert(log_edge.exp() if semiring is StdSemiring else log_edge)
    lengths = torch.tensor([7, 4, 2])
    ext = extend_to_positions(semiring, edge, lengths, 11)
    assert ext.shape[2] == 11
    full = torch.full((B,), 12)
    torch.testing.assert_close(
        linear_scan(semiring, ext, full), linear_scan(semiring, edge, lengths)
    )
