"""The Semiring base class and the shared log-space helpers."""

from __future__ import annotations

import pytest
import torch

import semicrf_semirings
from semicrf_semirings import (
    NEG_INF,
    CrossEntropySemiring,
    EntropySemiring,
    KMaxSemiring,
    LogSemiring,
    Semiring,
    StdSemiring,
)
from semicrf_semirings.base import align_channels, log_softmax, logsumexp


def test_public_names():
    assert semicrf_semirings.__version__ == "0.1.0"
    for name in semicrf_semirings.__all__:
        assert hasattr(semicrf_semirings, name)


@pytest.mark.parametrize(
    "S", [LogSemiring, StdSemiring, KMaxSemiring(3), EntropySemiring, CrossEntropySemiring]
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_zeros_ones_and_in_place_fills(S, dtype):
    s = S.size()
    z = S.zeros((2, 3), dtype=dtype)
    o = S.ones([2, 3], dtype=dtype)
    assert z.shape == o.shape == (s, 2, 3) and z.dtype == dtype
    torch.testing.assert_close(z, S.zero.to(dtype)[:, None, None].expand(s, 2, 3))
    torch.testing.assert_close(o, S.one.to(dtype)[:, None, None].expand(s, 2, 3))
    x = torch.randn(s, 2, 3, dtype=dtype)
    assert S.one_(x) is x
    torch.testing.assert_close(x, o)
    torch.testing.assert_close(S.zero_(x), z)
    x = torch.randn(s, 2, 3, dtype=dtype)
    before = x.clone()
    mask = torch.tensor([[True, False, True], [False, False, True]])
    assert S.zero_mask_(x, mask) is x
    torch.testing.assert_close(x[:, mask], z[:, mask])
    torch.testing.assert_close(x[:, ~mask], before[:, ~mask])


def test_zero_mask_validation():
    x = LogSemiring.zeros((2, 3))
    with pytest.raises(ValueError, match=r"\(4,\).*\(2, 3\)"):
        LogSemiring.zero_mask_(x, torch.zeros(4, dtype=torch.bool))
    with pytest.raises(TypeError, match="bool"):
        LogSemiring.zero_mask_(x, torch.zeros(2, 3))


def test_abstract_base_and_empty_times():
    with pytest.raises(NotImplementedError):
        Semiring.sum(torch.zeros(1, 2))
    with pytest.raises(NotImplementedError):
        Semiring.mul(torch.zeros(1, 2), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="at least one"):
        LogSemiring.times()


def test_align_channels_pairs_the_channel_dims():
    a, b = align_channels(torch.zeros(2, 3, 4), torch.zeros(2, 5, 1, 3, 4))
    assert a.shape == (2, 1, 1, 3, 4) and b.shape == (2, 5, 1, 3, 4)
    out = LogSemiring.mul(torch.zeros(1, 3), torch.zeros(1, 4, 3))
    assert out.shape == (1, 4, 3)


def test_logsumexp_and_log_softmax_match_torch_on_finite_inputs():
    x = torch.randn(3, 5, 7, dtype=torch.float64) * 4
    for d in range(3):
        torch.testing.assert_close(logsumexp(x, d), torch.logsumexp(x, d))
        torch.testing.assert_close(log_softmax(x, d), torch.log_softmax(x, d))


def test_log_softmax_minus_inf_rows():
    x = torch.tensor([[float("-inf")] * 3, [NEG_INF] * 3, [0.0, float("-inf"), 1.0]])
    x.requires_grad_(True)
    out = log_softmax(x, -1)
    assert torch.isneginf(out[0]).all()
    torch.testing.assert_close(out[1], torch.full((3,), -torch.log(torch.tensor(3.0)).item()))
    torch.testing.assert_close(out[2], torch.log_softmax(x[2].detach(), -1))
    torch.where(torch.isfinite(out), out, 0.0).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_logsumexp_gradient_under_torch_func_equals_autograd():
    # torch.func.grad (and so torch.compile of code that uses it) needs the Function's
    # setup_context form; the rows that are all -inf must still get a zero gradient.
    x = torch.randn(4, 5, dtype=torch.float64)
    x[1] = -float("inf")
    x[2, :3] = -float("inf")
    w = torch.randn(4, dtype=torch.float64)
    expected = torch.autograd.grad((logsumexp(x.requires_grad_(), 1) * w).sum(), x)[0]
    got = torch.func.grad(lambda t: (logsumexp(t, 1) * w).sum())(x.detach())
    assert torch.equal(got, expected)
    assert torch.equal(got[1], torch.zeros(5, dtype=torch.float64))
    batched = torch.func.vmap(lambda row: logsumexp(row, 0))(x.detach())
    assert torch.equal(batched, logsumexp(x.detach(), 1))


@pytest.mark.parametrize("S", [LogSemiring, KMaxSemiring(3), EntropySemiring, CrossEntropySemiring])
def test_fill_is_where_with_v_broadcast_over_channels(S):
    s = S.size()
    gen = torch.Generator().manual_seed(5)
    c = torch.randn(s, 2, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(2, 5, generator=gen) < 0.5
    v = torch.arange(1.0, s + 1, dtype=torch.float64)
    out = S.fill(c, mask, v)
    assert out.shape == c.shape
    for k in range(s):
        for i in range(2):
            for j in range(5):
                want = v[k] if mask[i, j] else c[k, i, j]
                assert out[k, i, j] == want
    # The semiring's own zero, a full-shape mask, a plain number; c is never modified.
    torch.testing.assert_close(S.fill(c, mask, S.zero)[:, mask], S.zeros((2, 5)).double()[:, mask])
    full = mask.expand(s, 2, 5)
    torch.testing.assert_close(S.fill(c, full, v), out)
    assert (S.fill(c, mask, 7.0)[:, mask] == 7.0).all()
    out.sum().backward()
    torch.testing.assert_close(c.grad, (~mask).double().expand(s, 2, 5))


def test_fill_validation():
    c = LogSemiring.zeros((2, 3))
    with pytest.raises(TypeError, match="mask must be a bool tensor"):
        LogSemiring.fill(c, torch.zeros(2, 3), LogSemiring.one)
    with pytest.raises(ValueError, match=r"mask of shape \(4,\)"):
        LogSemiring.fill(c, torch.zeros(4, dtype=torch.bool), LogSemiring.one)
    with pytest.raises(ValueError, match=r"v must have shape \(ssize,\) = \(1,\)"):
        LogSemiring.fill(c, torch.zeros(2, 3, dtype=torch.bool), torch.zeros(3))
