"""EntropySemiring against -sum p log p on explicitly enumerated distributions."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from semicrf_semirings import NEG_INF, EntropySemiring

E = EntropySemiring


def shannon(scores):
    """Entropy (nats) of the distribution proportional to exp(scores), in float64 numpy."""
    s = np.asarray(scores, dtype=np.float64)
    p = np.exp(s - s.max())
    p = p / p.sum()
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 7), seed=st.integers(0, 2**31))
def test_sum_of_converted_logits_is_shannon_entropy(n, seed):
    x = np.random.default_rng(seed).normal(size=n) * 2
    out = E.sum(E.convert(torch.from_numpy(x)), -1)
    assert E.unconvert(out).item() == pytest.approx(shannon(x), abs=1e-12)
    assert out[0].item() == pytest.approx(math.log(np.exp(x).sum()), rel=1e-12)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 3), l=st.integers(1, 4), m=st.integers(1, 3), seed=st.integers(0, 2**31))
def test_chain_of_two_matmuls_is_entropy_over_paths(n, l, m, seed):
    rng = np.random.default_rng(seed)
    m1, m2, m3 = rng.normal(size=(n, l)), rng.normal(size=(l, 2)), rng.normal(size=(2, m))
    conv = [E.convert(torch.from_numpy(x)) for x in (m1, m2, m3)]
    out = E.sum(E.sum(E.matmul(E.matmul(conv[0], conv[1]), conv[2]), -1), -1)
    paths = [
        m1[i, j] + m2[j, r] + m3[r, t]
        for i, j, r, t in itertools.product(range(n), range(l), range(2), range(m))
    ]
    assert E.unconvert(out).item() == pytest.approx(shannon(paths), abs=1e-10)


def test_flat_and_delta():
    assert E.unconvert(
        E.sum(E.convert(torch.zeros(5, dtype=torch.float64)))
    ).item() == pytest.approx(math.log(5))
    delta = torch.tensor([NEG_INF, 0.0, float("-inf")], dtype=torch.float64)
    assert E.unconvert(E.sum(E.convert(delta))).item() == 0.0


@pytest.mark.parametrize("fill", [NEG_INF, float("-inf")])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_zero_entries_are_ignored_and_never_nan(fill, dtype):
    x = torch.tensor([[0.3, fill, -1.2, fill], [fill, fill, fill, fill]], dtype=dtype)
    xs = E.convert(x).requires_grad_(True)
    out = E.sum(xs, -1)
    assert out[1, 0].item() == pytest.approx(shannon([0.3, -1.2]), abs=1e-6)
    assert not torch.isnan(out).any()
    out.sum().backward()
    assert torch.isfinite(xs.grad).all()
    if fill == NEG_INF:
        # Equal finite zeros: a uniform mixture (log n), computed without precision loss.
        assert out[1, 1].item() == pytest.approx(math.log(4), abs=1e-6)


def test_gradcheck_sum_and_matmul():
    rng = np.random.default_rng(10)
    xs = torch.tensor(rng.normal(size=(2, 3, 4)), requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: E.sum(t, -1), (xs,))
    a = torch.tensor(rng.normal(size=(2, 2, 3)), requires_grad=True)
    b = torch.tensor(rng.normal(size=(2, 3, 2)), requires_grad=True)
    assert torch.autograd.gradcheck(E.matmul, (a, b))


def test_identities():
    assert E.size() == 2
    assert E.zero.tolist() == [-math.inf, 0.0] and E.one.tolist() == [0.0, 0.0]
    x = torch.randn(3)
    assert E.convert(x).shape == (2, 3) and (E.convert(x)[1] == 0).all()
