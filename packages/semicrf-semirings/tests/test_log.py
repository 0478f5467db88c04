"""LogSemiring against direct float64 formulas (logsumexp, exp-matmul, enumeration)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from semicrf_semirings import NEG_INF, LogSemiring

D = torch.float64


@settings(max_examples=25, deadline=None)
@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=4),
    data=st.data(),
    seed=st.integers(0, 2**31),
)
def test_sum_is_logsumexp(shape, data, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((1, *shape), generator=gen, dtype=D) * 3
    dim = data.draw(st.sampled_from([*range(1, x.dim()), -1]))
    # Reference: log of the sum of exponentials, without any shift (values are small).
    ref = torch.log(torch.exp(x).sum(dim))
    torch.testing.assert_close(LogSemiring.sum(x, dim), ref)


@settings(max_examples=25, deadline=None)
@given(
    batch_a=st.lists(st.integers(1, 3), max_size=2),
    n=st.integers(1, 5),
    k=st.integers(1, 5),
    m=st.integers(1, 5),
    seed=st.integers(0, 2**31),
)
def test_matmul_is_log_of_exp_matmul(batch_a, n, k, m, seed):
    gen = torch.Generator().manual_seed(seed)
    # b carries one extra leading batch dim so the channel-aware broadcasting is exercised.
    a = torch.randn((1, *batch_a, n, k), generator=gen, dtype=D)
    b = torch.randn((1, 2, *[1] * len(batch_a), k, m), generator=gen, dtype=D)
    out = LogSemiring.matmul(a, b)
    ref = torch.log(torch.matmul(torch.exp(a[0]), torch.exp(b[0])))
    assert out.shape == (1, *ref.shape)
    torch.testing.assert_close(out[0], ref)


def test_chain_of_matmuls_is_log_partition_over_paths():
    """log Z of paths through three transition matrices, enumerated path by path."""
    gen = torch.Generator().manual_seed(1)
    mats = [torch.randn(3, 4, generator=gen, dtype=D), torch.randn(4, 2, generator=gen, dtype=D)]
    mats.append(torch.randn(2, 5, generator=gen, dtype=D))
    conv = [LogSemiring.convert(m) for m in mats]
    out = LogSemiring.sum(
        LogSemiring.sum(LogSemiring.matmul(LogSemiring.matmul(*conv[:2]), conv[2]))
    )
    scores = [
        mats[0][i, j] + mats[1][j, k] + mats[2][k, l]
        for i, j, k, l in itertools.product(range(3), range(4), range(2), range(5))
    ]
    ref = torch.log(torch.stack(scores).exp().sum())
    torch.testing.assert_close(LogSemiring.unconvert(out), ref)


def test_gradients_are_marginals_and_pass_gradcheck():
    gen = torch.Generator().manual_seed(2)
    a = torch.randn(1, 2, 3, 4, generator=gen, dtype=D, requires_grad=True)
    b = torch.randn(1, 4, 5, generator=gen, dtype=D, requires_grad=True)
    assert torch.autograd.gradcheck(LogSemiring.matmul, (a, b))
    assert torch.autograd.gradgradcheck(LogSemiring.matmul, (a, b))
    x = torch.randn(1, 3, 6, generator=gen, dtype=D, requires_grad=True)
    LogSemiring.sum(x).sum().backward()
    torch.testing.assert_close(x.grad, torch.softmax(x.detach(), dim=-1))


@pytest.mark.parametrize("fill", [NEG_INF, float("-inf")])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_all_zero_reduction_has_finite_gradient(fill, dtype):
    x = torch.full((1, 3, 4), fill, dtype=dtype, requires_grad=True)
    out = LogSemiring.sum(x, -1)
    out.sum().backward()
    assert not torch.isnan(out).any()
    assert torch.isfinite(x.grad).all()
    # All-equal finite inputs: uniform weights 1/n (not n * 1/n from a rounded result);
    # all -inf: no mass anywhere, gradient 0.
    expect = torch.full_like(x, 0.25 if fill == NEG_INF else 0.0)
    torch.testing.assert_close(x.grad, expect)


def test_mixed_minus_inf_gradient_is_softmax_of_the_rest():
    x = torch.tensor([[[float("-inf"), 0.5, NEG_INF, -1.0]]], dtype=D, requires_grad=True)
    LogSemiring.sum(x, -1).sum().backward()
    p = torch.exp(torch.tensor([0.5, -1.0], dtype=D))
    p = p / p.sum()
    torch.testing.assert_close(x.grad[0, 0], torch.tensor([0.0, p[0], 0.0, p[1]], dtype=D))


def test_matmul_with_forbidden_entries_has_no_nan():
    a = torch.full((1, 2, 3), float("-inf"), dtype=D, requires_grad=True)
    b = torch.randn(1, 3, 2, dtype=D, requires_grad=True)
    out = LogSemiring.matmul(a, b)
    assert torch.isneginf(out).all()
    (torch.where(torch.isfinite(out), out, 0.0).sum() + out.exp().sum()).backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()


def test_plus_prod_dot_and_identities():
    gen = torch.Generator().manual_seed(3)
    a, b = torch.randn(2, 1, 4, 3, generator=gen, dtype=D)
    torch.testing.assert_close(LogSemiring.plus(a, b), torch.logaddexp(a, b))
    torch.testing.assert_close(LogSemiring.prod(a, dim=1), a.sum(1))
    torch.testing.assert_close(LogSemiring.dot(a, b), torch.log((a.exp() * b.exp()).sum(-1)))
    assert LogSemiring.size() == 1
    assert LogSemiring.zero.tolist() == [-math.inf] and LogSemiring.one.tolist() == [0.0]
    torch.testing.assert_close(LogSemiring.unconvert(LogSemiring.convert(a[0])), a[0])


@pytest.mark.parametrize(
    ("a_shape", "b_shape", "needle"),
    [
        ((1, 3, 4), (1, 5, 2), "inner sizes differ"),
        ((2, 3, 4), (2, 4, 2), "ssize=1"),
        ((1, 4), (1, 4, 2), "at least 3 dims"),
        ((1, 2, 3, 4), (1, 3, 4, 2), "do not broadcast"),
    ],
)
def test_matmul_shape_errors_name_the_shapes(a_shape, b_shape, needle):
    with pytest.raises(ValueError, match=needle) as err:
        LogSemiring.matmul(torch.zeros(a_shape), torch.zeros(b_shape))
    assert str(a_shape) in str(err.value) and str(b_shape) in str(err.value)


@pytest.mark.parametrize("dim", [0, -3, 3, -4])
def test_sum_refuses_channel_dim_and_out_of_range(dim):
    with pytest.raises(ValueError, match="dim"):
        LogSemiring.sum(torch.zeros(1, 2, 3), dim)
