"""BlockTriangularMatrix storage and block_triang_matmul against dense semiring products."""

from __future__ import annotations

import pytest
import torch

from semicrf_core import BlockTriangularMatrix, block_triang_matmul
from semicrf_semirings import EntropySemiring, KMaxSemiring, LogSemiring, MaxSemiring, StdSemiring


def _state_mask(K, C, span):
    """`(K*C, K*C)` True inside the blocks with `k1 + k2 < span`."""
    k = torch.arange(K * C) // C
    return (k.view(-1, 1) + k.view(1, -1)) < span


def test_spec_example_has_ten_blocks():
    dense = torch.randn(2, 12, 12)
    bt = BlockTriangularMatrix.from_dense(dense, K=4, C=3, span=4)
    assert bt.values.shape == (2, 10, 3, 3)
    assert torch.all(bt.block_indices.sum(1) < 4)
    for i, (k1, k2) in enumerate(bt.block_indices.tolist()):
        torch.testing.assert_close(
            bt.values[:, i], dense[:, 3 * k1 : 3 * k1 + 3, 3 * k2 : 3 * k2 + 3]
        )


@pytest.mark.parametrize(("K", "C", "span"), [(4, 3, 4), (3, 2, 1), (5, 1, 9), (2, 3, 2)])
def test_to_dense_restores_the_kept_blocks_and_fills_the_rest(K, C, span, gen):
    dense = torch.randn((3, K * C, K * C), generator=gen)
    mask = _state_mask(K, C, span)
    bt = BlockTriangularMatrix.from_dense(dense, K, C, span)
    assert bt.num_blocks == sum(1 for a in range(K) for b in range(K) if a + b < span)
    plain = bt.to_dense()
    torch.testing.assert_close(plain[:, mask], dense[:, mask])
    assert torch.all(plain[:, ~mask] == 0)
    log = bt.to_dense(LogSemiring)
    assert torch.all(log[:, ~mask] == LogSemiring.zero)
    conv = EntropySemiring.convert(dense)
    ent = BlockTriangularMatrix.from_dense(conv, K, C, span).to_dense(EntropySemiring)
    assert torch.all(ent[0][:, ~mask] == EntropySemiring.zero[0])
    assert torch.all(ent[1][:, ~mask] == EntropySemiring.zero[1])
    torch.testing.assert_close(ent[:, :, mask], conv[:, :, mask])


def test_duration_mask_drops_blocks(gen):
    dense = torch.randn((1, 6, 6), generator=gen)
    keep = torch.tensor([[True, False, True], [True, True, True], [False, True, True]])
    bt = BlockTriangularMatrix.from_dense(dense, 3, 2, span=3, duration_mask=keep)
    assert [tuple(x) for x in bt.block_indices.tolist()] == [(0, 0), (0, 2), (1, 0), (1, 1)]


def _dense_product(semiring, a, b):
    """Independent semiring products of dense (unconverted) matrices."""
    if semiring is LogSemiring:
        return torch.logsumexp(a.unsqueeze(-1) + b.unsqueeze(-3), dim=-2)
    if semiring is MaxSemiring:
        return (a.unsqueeze(-1) + b.unsqueeze(-3)).amax(dim=-2)
    return a @ b


@pytest.mark.parametrize(
    "semiring", [LogSemiring, MaxSemiring, StdSemiring], ids=lambda s: s.__name__
)
@pytest.mark.parametrize(
    ("K", "C", "span_in", "span_out"), [(4, 3, 4, 4), (3, 2, 3, 5), (5, 2, 5, 3)]
)
def test_matmul_equals_the_dense_product_on_kept_blocks(semiring, K, C, span_in, span_out, gen):
    zero = float(semiring.zero[0])
    mask_in = _state_mask(K, C, span_in)
    a = torch.randn((2, K * C, K * C), generator=gen, dtype=torch.float64)
    b = torch.randn((2, K * C, K * C), generator=gen, dtype=torch.float64)
    a = torch.where(mask_in, a, torch.full_like(a, zero))
    b = torch.where(mask_in, b, torch.full_like(b, zero))
    left = BlockTriangularMatrix.from_dense(semiring.convert(a), K, C, span_in)
    right = BlockTriangularMatrix.from_dense(semiring.convert(b), K, C, span_in)
    out = block_triang_matmul(left, right, semiring, span_out)
    assert torch.all(out.block_indices.sum(1) < span_out)
    mask_out = _state_mask(K, C, span_out)
    expected = torch.where(mask_out, _dense_product(semiring, a, b), torch.full_like(a, zero))
    torch.testing.assert_close(out.to_dense(semiring)[0], expected)


def test_kmax_matmul_keeps_the_k_best_candidates(gen):
    K, C, span, k = 3, 2, 3, 2
    semiring = KMaxSemiring(k)
    mask = _state_mask(K, C, span)
    a = torch.where(mask, torch.randn((1, K * C, K * C), generator=gen, dtype=torch.float64), -1e9)
    b = torch.where(mask, torch.randn((1, K * C, K * C), generator=gen, dtype=torch.float64), -1e9)
    left = BlockTriangularMatrix.from_dense(semiring.convert(a), K, C, span)
    right = BlockTriangularMatrix.from_dense(semiring.convert(b), K, C, span)
    got = block_triang_matmul(left, right, semiring, span).to_dense(semiring)
    cand = a.unsqueeze(-1) + b.unsqueeze(-3)  # (1, i, l, j)
    best = torch.sort(cand, dim=2, descending=True).values[:, :, :k].permute(2, 0, 1, 3)
    real = mask & (best[0] > -5e8)
    torch.testing.assert_close(got[:, real], best[:, real])


def test_invalid_arguments():
    with pytest.raises(ValueError, match="dense"):
        BlockTriangularMatrix.from_dense(torch.zeros(1, 5, 5), K=2, C=3, span=2)
    with pytest.raises(TypeError, match="dense"):
        BlockTriangularMatrix.from_dense([[0.0]], K=1, C=1, span=1)
    with pytest.raises(ValueError, match="span"):
        BlockTriangularMatrix.from_dense(torch.zeros(1, 4, 4), K=2, C=2, span=0)
    with pytest.raises(ValueError, match="values"):
        BlockTriangularMatrix(torch.zeros(1, 3, 2, 2), torch.tensor([[0, 0], [0, 1]]), 2, 2)
    a = BlockTriangularMatrix.from_dense(torch.zeros(1, 4, 4), K=2, C=2, span=2)
    b = BlockTriangularMatrix.from_dense(torch.zeros(1, 4, 4), K=4, C=1, span=2)
    with pytest.raises(ValueError, match="same K and C"):
        block_triang_matmul(a, b, LogSemiring, 2)
    with pytest.raises(TypeError, match="right"):
        block_triang_matmul(a, torch.zeros(1), LogSemiring, 2)
    with pytest.raises(ValueError, match="channel"):
        BlockTriangularMatrix.from_dense(torch.zeros(1, 4, 4), K=2, C=2, span=2).to_dense(
            EntropySemiring
        )
