"""StdSemiring against numpy arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from semicrf_semirings import StdSemiring


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 5),
    k=st.integers(1, 5),
    m=st.integers(1, 5),
    batch=st.lists(st.integers(1, 3), max_size=2),
    seed=st.integers(0, 2**31),
)
def test_matmul_matches_einsum(n, k, m, batch, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(1, *batch, n, k))
    b = rng.normal(size=(1, k, m))
    out = StdSemiring.matmul(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    np.testing.assert_allclose(out[0], np.einsum("...ik,kj->...ij", a[0], b[0]), rtol=1e-12)


def test_sum_prod_and_path_counting():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(1, 3, 4))
    t = torch.from_numpy(x)
    np.testing.assert_allclose(StdSemiring.sum(t, 1).numpy(), x.sum(1))
    np.testing.assert_allclose(StdSemiring.prod(t, -1).numpy(), x.prod(-1))
    # All-ones potentials count paths: 3 * 4 * 2 paths through two matrices.
    ones_a, ones_b = StdSemiring.ones((3, 4)), StdSemiring.ones((4, 2))
    count = StdSemiring.sum(StdSemiring.sum(StdSemiring.matmul(ones_a, ones_b)))
    assert StdSemiring.unconvert(count).item() == 24.0
    assert StdSemiring.zero.tolist() == [0.0] and StdSemiring.one.tolist() == [1.0]


def test_matmul_shape_error():
    with pytest.raises(ValueError, match=r"\(1, 2, 3\).*\(1, 2, 3\)"):
        StdSemiring.matmul(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3))
