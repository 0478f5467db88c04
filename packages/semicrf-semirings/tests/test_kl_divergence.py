"""KLDivergenceSemiring against sum P (log P - log Q) on enumerated distributions."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from semicrf_semirings import NEG_INF, KLDivergenceSemiring

KL = KLDivergenceSemiring


def kl(p_scores, q_scores):
    def norm(s):
        s = np.asarray(s, dtype=np.float64)
        e = np.exp(s - s.max())
        return e / e.sum()

    p, q = norm(p_scores), norm(q_scores)
    keep = p > 0
    return float((p[keep] * (np.log(p[keep]) - np.log(q[keep]))).sum())


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 3), l=st.integers(1, 4), m=st.integers(1, 3), seed=st.integers(0, 2**31))
def test_chain_of_two_matmuls_is_kl_over_paths(n, l, m, seed):
    rng = np.random.default_rng(seed)
    shapes = [(n, l), (l, m)]
    ps = [rng.normal(size=s) for s in shapes]
    qs = [rng.normal(size=s) for s in shapes]
    conv = [KL.convert([torch.from_numpy(p), torch.from_numpy(q)]) for p, q in zip(ps, qs)]
    out = KL.sum(KL.sum(KL.matmul(*conv), -1), -1)
    idx = list(itertools.product(range(n), range(l), range(m)))
    p_paths = [ps[0][i, j] + ps[1][j, r] for i, j, r in idx]
    q_paths = [qs[0][i, j] + qs[1][j, r] for i, j, r in idx]
    value = KL.unconvert(out).item()
    assert value == pytest.approx(kl(p_paths, q_paths), abs=1e-10)
    assert value >= -1e-12


def test_kl_of_a_model_with_itself_is_zero_and_equal_scores_up_to_a_shift():
    x = torch.randn(3, 5, dtype=torch.float64)
    out = KL.sum(KL.sum(KL.convert([x, x + 2.5]), -1), -1)
    assert abs(KL.unconvert(out).item()) < 1e-12


@pytest.mark.parametrize("fill", [NEG_INF, float("-inf")])
def test_zeros_of_p_contribute_nothing_and_no_nan(fill):
    p = torch.tensor([0.4, fill, -0.3], dtype=torch.float64)
    q = torch.tensor([0.0, 0.7, 0.2], dtype=torch.float64)
    xs = KL.convert([p, q]).requires_grad_(True)
    out = KL.sum(xs, -1)
    pn = np.exp([0.4, -0.3]) / np.exp([0.4, -0.3]).sum()
    qn = np.exp(q.numpy()) / np.exp(q.numpy()).sum()
    expect = float((pn * (np.log(pn) - np.log(qn[[0, 2]]))).sum())
    assert KL.unconvert(out).item() == pytest.approx(expect, abs=1e-12)
    out.sum().backward()
    assert torch.isfinite(xs.grad).all()


def test_gradcheck_and_validation():
    rng = np.random.default_rng(12)
    a = torch.tensor(rng.normal(size=(3, 2, 3)), requires_grad=True)
    b = torch.tensor(rng.normal(size=(3, 3, 2)), requires_grad=True)
    assert torch.autograd.gradcheck(KL.matmul, (a, b))
    with pytest.raises(ValueError, match="list"):
        KL.convert(torch.zeros(2, 3))
    assert KL.size() == 3 and KL.zero.tolist() == [-math.inf, -math.inf, 0.0]
