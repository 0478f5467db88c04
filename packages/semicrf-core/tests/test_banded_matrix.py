"""BandedMatrix storage and products against dense matrices."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from semicrf_core import BandedMatrix


def _band_mask(n, lu, ld):
    i = torch.arange(n).view(-1, 1)
    j = torch.arange(n).view(1, -1)
    return (j - i <= lu) & (i - j <= ld)


def test_spec_example_shapes():
    dense = torch.randn(2, 10, 10)
    banded = BandedMatrix.from_dense(dense, lu=2, ld=2)
    assert banded.data.shape == (2, 10, 5)
    mask = _band_mask(10, 2, 2)
    back = banded.to_dense()
    torch.testing.assert_close(back[:, mask], dense[:, mask])
    assert torch.all(back[:, ~mask] == 0)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 7),
    lu=st.integers(0, 8),
    ld=st.integers(0, 8),
    seed=st.integers(0, 2**31 - 1),
)
def test_round_trip_and_transpose(n, lu, ld, seed):
    g = torch.Generator().manual_seed(seed)
    dense = torch.randn((3, n, n), generator=g, dtype=torch.float64)
    banded = BandedMatrix.from_dense(dense, lu, ld, fill=float("-inf"))
    mask = _band_mask(n, lu, ld)
    expected = torch.where(mask, dense, torch.tensor(float("-inf"), dtype=dense.dtype))
    torch.testing.assert_close(banded.to_dense(), expected)
    t = banded.transpose()
    assert (t.lu, t.ld) == (ld, lu)
    torch.testing.assert_close(t.to_dense(), expected.transpose(1, 2))


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 7),
    bands=st.tuples(*[st.integers(0, 4)] * 4),
    seed=st.integers(0, 2**31 - 1),
)
def test_products_equal_dense_semiring_products(n, bands, seed):
    lu1, ld1, lu2, ld2 = bands
    g = torch.Generator().manual_seed(seed)
    neg = torch.tensor(float("-inf"), dtype=torch.float64)
    a = torch.where(
        _band_mask(n, lu1, ld1), torch.randn((2, n, n), generator=g, dtype=torch.float64), neg
    )
    b = torch.where(
        _band_mask(n, lu2, ld2), torch.randn((2, n, n), generator=g, dtype=torch.float64), neg
    )
    A = BandedMatrix.from_dense(a, lu1, ld1, fill=float("-inf"))
    B = BandedMatrix.from_dense(b, lu2, ld2, fill=float("-inf"))
    terms = a.unsqueeze(-1) + b.unsqueeze(1)  # (batch, i, k, j)
    log_ref = torch.logsumexp(terms, dim=2)
    max_ref = terms.amax(dim=2)
    prod_log, prod_max = A.multiply_log(B), A.multiply_max(B)
    assert prod_log.lu == min(lu1 + lu2, max(n - 1, 0)) and prod_log.ld == min(
        ld1 + ld2, max(n - 1, 0)
    )
    torch.testing.assert_close(prod_log.to_dense(), log_ref)
    torch.testing.assert_close(prod_max.to_dense(), max_ref)


def test_product_gradients():
    g = torch.Generator().manual_seed(0)
    a = torch.randn((2, 6, 4), generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn((2, 6, 3), generator=g, dtype=torch.float64, requires_grad=True)

    def f(x, y):
        return BandedMatrix(x, 2, 1, -1e9).multiply_log(BandedMatrix(y, 1, 1, -1e9)).data

    assert torch.autograd.gradcheck(f, (a, b))


def test_batch_of_one_broadcasts():
    g = torch.Generator().manual_seed(1)
    a = torch.randn((1, 5, 5), generator=g)
    b = torch.randn((3, 5, 5), generator=g)
    A = BandedMatrix.from_dense(a, 4, 4)
    B = BandedMatrix.from_dense(b, 4, 4)
    ref = torch.logsumexp(a.unsqueeze(-1) + b.unsqueeze(1), dim=2)
    torch.testing.assert_close(A.multiply_log(B).to_dense(), ref)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="3D"):
        BandedMatrix(torch.zeros(4, 3), 1, 1)
    with pytest.raises(ValueError, match="lu\\+ld\\+1"):
        BandedMatrix(torch.zeros(1, 4, 4), 1, 1)
    with pytest.raises(ValueError, match="ld"):
        BandedMatrix(torch.zeros(1, 4, 3), 3, -1)
    with pytest.raises(TypeError, match="lu"):
        BandedMatrix(torch.zeros(1, 4, 3), 1.0, 1)
    with pytest.raises(ValueError, match="dense"):
        BandedMatrix.from_dense(torch.zeros(2, 3, 4), 1, 1)
    A = BandedMatrix.from_dense(torch.zeros(1, 4, 4), 1, 1)
    with pytest.raises(ValueError, match="sizes differ"):
        A.multiply_log(BandedMatrix.from_dense(torch.zeros(1, 5, 5), 1, 1))
    with pytest.raises(TypeError, match="BandedMatrix"):
        A.multiply_max(torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="batch"):
        BandedMatrix.from_dense(torch.zeros(2, 4, 4), 1, 1).multiply_log(
            BandedMatrix.from_dense(torch.zeros(3, 4, 4), 1, 1)
        )
