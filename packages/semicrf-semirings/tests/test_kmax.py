"""KMaxSemiring against sorting every candidate (ties, k larger than the candidate count)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from semicrf_semirings import NEG_INF, KMaxSemiring, MaxSemiring


def sorted_channels(rng, k, shape):
    """A valid k-max element: per entry k integer scores (ties likely), best first."""
    x = rng.integers(-3, 4, size=(k, *shape)).astype(np.float64)
    return -np.sort(-x, axis=0)


def top_k(candidates, k):
    """The k largest of a list, descending, padded with the zero when there are fewer."""
    best = sorted(candidates, reverse=True)[:k]
    return best + [NEG_INF] * (k - len(best))


@settings(max_examples=30, deadline=None)
@given(
    k=st.integers(1, 4),
    shape=st.lists(st.integers(1, 3), min_size=1, max_size=3),
    data=st.data(),
    seed=st.integers(0, 2**31),
)
def test_sum_is_top_k_of_channels_and_dim(k, shape, data, seed):
    rng = np.random.default_rng(seed)
    S = KMaxSemiring(k)
    x = sorted_channels(rng, k, shape)
    dim = data.draw(st.sampled_from([*range(1, x.ndim), -1]))
    out = S.sum(torch.from_numpy(x), dim).numpy()
    xm = np.moveaxis(x, dim, -1)  # (k, *rest, n)
    for rest in itertools.product(*[range(s) for s in xm.shape[1:-1]]):
        cands = list(xm[(slice(None), *rest, slice(None))].ravel())
        np.testing.assert_array_equal(out[(slice(None), *rest)], top_k(cands, k))


@settings(max_examples=30, deadline=None)
@given(k=st.integers(1, 4), n=st.integers(1, 4), seed=st.integers(0, 2**31))
def test_mul_is_top_k_of_pairwise_sums(k, n, seed):
    rng = np.random.default_rng(seed)
    S = KMaxSemiring(k)
    a, b = sorted_channels(rng, k, (n,)), sorted_channels(rng, k, (n,))
    out = S.mul(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    for e in range(n):
        cands = [a[i, e] + b[j, e] for i in range(k) for j in range(k)]
        np.testing.assert_array_equal(out[:, e], top_k(cands, k))


@settings(max_examples=20, deadline=None)
@given(
    k=st.integers(1, 6),
    n=st.integers(1, 3),
    l=st.integers(1, 3),
    m=st.integers(1, 3),
    seed=st.integers(0, 2**31),
)
def test_chain_of_matmuls_gives_k_best_paths(k, n, l, m, seed):
    """k best path scores over i -> j -> r -> (sum), enumerated; k may exceed the path count."""
    rng = np.random.default_rng(seed)
    S = KMaxSemiring(k)
    m1 = rng.integers(-3, 4, size=(n, l)).astype(np.float64)
    m2 = rng.integers(-3, 4, size=(l, m)).astype(np.float64)
    conv = [S.convert(torch.from_numpy(x)) for x in (m1, m2)]
    out = S.sum(S.sum(S.matmul(*conv), -1), -1).numpy()
    paths = [m1[i, j] + m2[j, r] for i in range(n) for j in range(l) for r in range(m)]
    real = min(k, len(paths))
    np.testing.assert_array_equal(out[:real], top_k(paths, k)[:real])
    # Missing paths score about the zero (-1e9 plus a real score): impossible, not dropped.
    assert (out[real:] <= NEG_INF / 2).all()
    assert S.unconvert(torch.from_numpy(out)).item() == max(paths)


def test_prod_is_k_best_choices_one_per_entry():
    rng = np.random.default_rng(7)
    S = KMaxSemiring(3)
    x = sorted_channels(rng, 3, (2, 4))
    out = S.prod(torch.from_numpy(x), -1).numpy()
    for r in range(2):
        cands = [
            sum(x[c[e], r, e] for e in range(4)) for c in itertools.product(range(3), repeat=4)
        ]
        np.testing.assert_array_equal(out[:, r], top_k(cands, 3))


def test_sparse_sum_indices_point_at_the_values():
    rng = np.random.default_rng(8)
    S = KMaxSemiring(3)
    x = torch.from_numpy(sorted_channels(rng, 3, (2, 5)))
    values, (chan, pos) = S.sparse_sum(x, -1)
    rows = torch.arange(2)[None].expand(3, 2)
    torch.testing.assert_close(x[chan, rows, pos], values)


def test_k1_matches_max_and_convert_layout():
    rng = np.random.default_rng(9)
    a = torch.from_numpy(rng.normal(size=(1, 2, 3, 4)))
    b = torch.from_numpy(rng.normal(size=(1, 4, 5)))
    S1 = KMaxSemiring(1)
    torch.testing.assert_close(S1.matmul(a, b), MaxSemiring.matmul(a, b))
    torch.testing.assert_close(S1.sum(a, 2), MaxSemiring.sum(a, 2))
    S = KMaxSemiring(3)
    c = S.convert(a[0])
    assert c.shape == (3, 2, 3, 4)
    torch.testing.assert_close(c[0], a[0])
    assert (c[1:] == -math.inf).all()
    assert S.zero.tolist() == [-math.inf] * 3 and S.one.tolist() == [0.0, -math.inf, -math.inf]
    assert KMaxSemiring(3) is S and S.size() == 3


def test_gradient_flows_to_selected_candidates():
    S = KMaxSemiring(2)
    x = S.convert(torch.tensor([[1.0, 4.0, 2.0]], dtype=torch.float64)).requires_grad_(True)
    out = S.sum(x, -1)  # best two: 4 then 2
    assert out[:, 0].tolist() == [4.0, 2.0]
    out.sum().backward()
    assert x.grad[0].tolist() == [[0.0, 1.0, 1.0]] and (x.grad[1] == 0).all()


@pytest.mark.parametrize("k", [0, -2])
def test_k_below_one_is_value_error(k):
    with pytest.raises(ValueError, match="k must be >= 1"):
        KMaxSemiring(k)


@pytest.mark.parametrize("k", [2.0, "2", True, None])
def test_non_int_k_is_type_error(k):
    with pytest.raises(TypeError, match="k must be an int"):
        KMaxSemiring(k)
