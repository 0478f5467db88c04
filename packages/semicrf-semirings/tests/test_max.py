"""MaxSemiring against direct max formulas, brute-force path enumeration and argmax."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from semicrf_semirings import MaxSemiring

D = torch.float64


@settings(max_examples=25, deadline=None)
@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=4),
    data=st.data(),
    seed=st.integers(0, 2**31),
)
def test_sum_and_sparse_sum_match_numpy(shape, data, seed):
    rng = np.random.default_rng(seed)
    # Small integers make ties common; numpy's argmax returns the first maximal index.
    x_np = rng.integers(-2, 3, size=(1, *shape)).astype(np.float64)
    x = torch.from_numpy(x_np)
    dim = data.draw(st.sampled_from([*range(1, x.dim()), -1]))
    values, idx = MaxSemiring.sparse_sum(x, dim)
    np.testing.assert_array_equal(values.numpy(), x_np.max(axis=dim))
    np.testing.assert_array_equal(idx.numpy(), x_np.argmax(axis=dim))
    assert idx.dtype == torch.int64
    np.testing.assert_array_equal(MaxSemiring.sum(x, dim).numpy(), x_np.max(axis=dim))


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 5),
    k=st.integers(1, 5),
    m=st.integers(1, 5),
    batch=st.integers(1, 3),
    seed=st.integers(0, 2**31),
)
def test_matmul_matches_loops(n, k, m, batch, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(1, batch, n, k))
    b = rng.normal(size=(1, k, m))
    out = MaxSemiring.matmul(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    ref = np.empty((1, batch, n, m))
    for z, i, j in itertools.product(range(batch), range(n), range(m)):
        ref[0, z, i, j] = max(a[0, z, i, l] + b[0, l, j] for l in range(k))
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-12)


def test_gradient_of_viterbi_score_is_one_best_path():
    """Through two matmuls, the gradient marks exactly the edges of the best path."""
    rng = np.random.default_rng(4)
    m1, m2 = rng.normal(size=(3, 4)), rng.normal(size=(4, 5))
    a = torch.tensor(m1[None], requires_grad=True)
    b = torch.tensor(m2[None], requires_grad=True)
    score = MaxSemiring.sum(MaxSemiring.sum(MaxSemiring.matmul(a, b), -1), -1)
    score.sum().backward()
    best = max(
        itertools.product(range(3), range(4), range(5)),
        key=lambda p: m1[p[0], p[1]] + m2[p[1], p[2]],
    )
    assert score.item() == pytest.approx(m1[best[0], best[1]] + m2[best[1], best[2]])
    ga = np.zeros((3, 4))
    ga[best[0], best[1]] = 1
    gb = np.zeros((4, 5))
    gb[best[1], best[2]] = 1
    np.testing.assert_array_equal(a.grad[0].numpy(), ga)
    np.testing.assert_array_equal(b.grad[0].numpy(), gb)


def test_ties_send_the_gradient_to_the_first_index():
    x = torch.tensor([[1.0, 3.0, 3.0, 2.0]], requires_grad=True)
    MaxSemiring.sum(x).backward()
    assert x.grad.tolist() == [[0.0, 1.0, 0.0, 0.0]]


def test_identities_and_gradcheck():
    assert MaxSemiring.zero.tolist() == [-math.inf] and MaxSemiring.one.tolist() == [0.0]
    rng = np.random.default_rng(5)
    a = torch.tensor(rng.normal(size=(1, 2, 3, 4)), requires_grad=True)
    b = torch.tensor(rng.normal(size=(1, 4, 2)), requires_grad=True)
    assert torch.autograd.gradcheck(MaxSemiring.matmul, (a, b))
    x = torch.full((1, 2, 3), float("-inf"), requires_grad=True)
    MaxSemiring.sum(x).sum().backward()
    assert torch.isfinite(x.grad).all()
