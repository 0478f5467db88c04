"""Semiring laws for every semiring, on fresh random elements (float64)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from semicrf_semirings import (
    CheckpointSemiring,
    CheckpointShardSemiring,
    CrossEntropySemiring,
    EntropySemiring,
    KLDivergenceSemiring,
    KMaxSemiring,
    LogSemiring,
    MaxSemiring,
    StdSemiring,
)

SEMIRINGS = [
    LogSemiring,
    MaxSemiring,
    StdSemiring,
    KMaxSemiring(1),
    KMaxSemiring(3),
    EntropySemiring,
    CrossEntropySemiring,
    KLDivergenceSemiring,
    CheckpointSemiring(LogSemiring),
    CheckpointShardSemiring(EntropySemiring, max_size=5),
]


def element(S, shape, gen):
    """A random valid converted element of S with batch shape `shape`, float64."""
    s = S.size()
    x = torch.randn((s, *shape), generator=gen, dtype=torch.float64) * 2
    if hasattr(S, "k"):
        # k-max channels are sorted best first.
        x = x.sort(dim=0, descending=True).values
    return x


def close(x, y):
    torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("S", SEMIRINGS, ids=lambda S: S.__name__)
@settings(max_examples=8, deadline=None)
@given(shape=st.lists(st.integers(1, 3), min_size=1, max_size=3), seed=st.integers(0, 2**31 - 1))
def test_semiring_laws(S, shape, seed):
    gen = torch.Generator().manual_seed(seed)
    a, b, c = (element(S, shape, gen) for _ in range(3))
    zero = S.zeros(shape, dtype=torch.float64)
    one = S.ones(shape, dtype=torch.float64)
    # (+) associative and commutative, (x) associative.
    close(S.plus(S.plus(a, b), c), S.plus(a, S.plus(b, c)))
    close(S.plus(a, b), S.plus(b, a))
    close(S.mul(S.mul(a, b), c), S.mul(a, S.mul(b, c)))
    # (x) distributes over (+) on both sides.
    close(S.mul(a, S.plus(b, c)), S.plus(S.mul(a, b), S.mul(a, c)))
    close(S.mul(S.plus(b, c), a), S.plus(S.mul(b, a), S.mul(c, a)))
    # Identities; zero absorbs under (x) in the sense that a (x) 0 is invisible to (+).
    close(S.plus(a, zero), a)
    close(S.mul(a, one), a)
    close(S.mul(one, a), a)
    close(S.plus(b, S.mul(a, zero)), b)


@pytest.mark.parametrize("S", SEMIRINGS, ids=lambda S: S.__name__)
@settings(max_examples=6, deadline=None)
@given(
    n=st.integers(1, 3),
    k=st.integers(1, 3),
    m=st.integers(1, 3),
    p=st.integers(1, 3),
    seed=st.integers(0, 2**31 - 1),
)
def test_matmul_associative_and_identity(S, n, k, m, p, seed):
    gen = torch.Generator().manual_seed(seed)
    a, b, c = element(S, (2, n, k), gen), element(S, (2, k, m), gen), element(S, (2, m, p), gen)
    close(S.matmul(S.matmul(a, b), c), S.matmul(a, S.matmul(b, c)))
    # The semiring identity matrix: one on the diagonal, zero elsewhere.
    eye = S.zeros((k, k), dtype=torch.float64)
    eye[:, torch.arange(k), torch.arange(k)] = S.one.to(torch.float64)[:, None]
    close(S.matmul(a, eye), a)


@pytest.mark.parametrize("S", SEMIRINGS, ids=lambda S: S.__name__)
@settings(max_examples=6, deadline=None)
@given(n=st.integers(1, 4), k=st.integers(1, 4), m=st.integers(1, 4), seed=st.integers(0, 2**31))
def test_matmul_matches_elementwise_definition(S, n, k, m, seed):
    """matmul[i, j] = (+)_l a[i, l] (x) b[l, j], built from plus and mul one entry at a time."""
    gen = torch.Generator().manual_seed(seed)
    a, b = element(S, (n, k), gen), element(S, (k, m), gen)
    out = S.matmul(a, b)
    for i in range(n):
        for j in range(m):
            acc = S.mul(a[:, i, 0], b[:, 0, j])
            for l in range(1, k):
                acc = S.plus(acc, S.mul(a[:, i, l], b[:, l, j]))
            close(out[:, i, j], acc)


@pytest.mark.parametrize("S", SEMIRINGS, ids=lambda S: S.__name__)
def test_times_prod_dot_agree_with_mul_and_sum(S):
    gen = torch.Generator().manual_seed(0)
    a, b, c = (element(S, (4, 5), gen) for _ in range(3))
    close(S.times(a, b, c), S.mul(S.mul(a, b), c))
    close(S.prod(a, dim=1), S.times(*a.unbind(1)))
    close(S.prod(a, dim=-1), S.times(*a.unbind(2)))
    close(S.dot(a, b), S.sum(S.mul(a, b), dim=-1))
