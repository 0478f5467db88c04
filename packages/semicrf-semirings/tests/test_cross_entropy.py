"""CrossEntropySemiring against -sum P log Q on explicitly enumerated distributions."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from semicrf_semirings import NEG_INF, CrossEntropySemiring, EntropySemiring

CE = CrossEntropySemiring


def normalise(scores):
    s = np.asarray(scores, dtype=np.float64)
    p = np.exp(s - s.max())
    return p / p.sum()


def cross_entropy(p_scores, q_scores):
    p, q = normalise(p_scores), normalise(q_scores)
    keep = p > 0
    return float(-(p[keep] * np.log(q[keep])).sum())


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 7), seed=st.integers(0, 2**31))
def test_sum_is_cross_entropy(n, seed):
    rng = np.random.default_rng(seed)
    p, q = rng.normal(size=n), rng.normal(size=n)
    out = CE.sum(CE.convert([torch.from_numpy(p), torch.from_numpy(q)]), -1)
    assert CE.unconvert(out).item() == pytest.approx(cross_entropy(p, q), abs=1e-12)
    assert out[0].item() == pytest.approx(np.log(np.exp(p).sum()), rel=1e-12)
    assert out[1].item() == pytest.approx(np.log(np.exp(q).sum()), rel=1e-12)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 3), l=st.integers(1, 4), m=st.integers(1, 3), seed=st.integers(0, 2**31))
def test_chain_of_two_matmuls_is_cross_entropy_over_paths(n, l, m, seed):
    rng = np.random.default_rng(seed)
    shapes = [(n, l), (l, m)]
    ps = [rng.normal(size=s) for s in shapes]
    qs = [rng.normal(size=s) for s in shapes]
    conv = [CE.convert([torch.from_numpy(p), torch.from_numpy(q)]) for p, q in zip(ps, qs)]
    out = CE.sum(CE.sum(CE.matmul(*conv), -1), -1)
    idx = list(itertools.product(range(n), range(l), range(m)))
    p_paths = [ps[0][i, j] + ps[1][j, r] for i, j, r in idx]
    q_paths = [qs[0][i, j] + qs[1][j, r] for i, j, r in idx]
    assert CE.unconvert(out).item() == pytest.approx(cross_entropy(p_paths, q_paths), abs=1e-10)


def test_equal_models_give_the_entropy():
    x = torch.randn(2, 3, 4, dtype=torch.float64)
    ce = CE.sum(CE.sum(CE.convert([x, x]), -1), -1)
    h = EntropySemiring.sum(EntropySemiring.sum(EntropySemiring.convert(x), -1), -1)
    torch.testing.assert_close(CE.unconvert(ce), EntropySemiring.unconvert(h))


@pytest.mark.parametrize("fill", [NEG_INF, float("-inf")])
def test_structures_p_forbids_are_ignored_without_nan(fill):
    p = torch.tensor([0.2, fill, -0.5, fill], dtype=torch.float64)
    q = torch.tensor([0.1, 1.0, fill, fill], dtype=torch.float64)
    xs = CE.convert([p, q])
    # q forbids a structure p allows (index 2): infinite with -inf, huge but finite with -1e9.
    val = CE.unconvert(CE.sum(xs, -1)).item()
    assert (val == float("inf")) if fill == float("-inf") else (1e8 < val < float("inf"))
    q_ok = torch.tensor([0.1, 1.0, 0.3, fill], dtype=torch.float64)
    xs = CE.convert([p, q_ok]).requires_grad_(True)
    out = CE.sum(xs, -1)
    keep = [0, 2]
    # p's support is {0, 2}; Q is normalised over all its structures.
    qn = normalise(q_ok.numpy())
    pn = normalise(p[keep].numpy())
    expect = float(-(pn * np.log(qn[keep])).sum())
    assert CE.unconvert(out).item() == pytest.approx(expect, abs=1e-10)
    out.sum().backward()
    assert torch.isfinite(xs.grad).all()


def test_gradcheck():
    rng = np.random.default_rng(11)
    a = torch.tensor(rng.normal(size=(3, 2, 3)), requires_grad=True)
    b = torch.tensor(rng.normal(size=(3, 3, 2)), requires_grad=True)
    assert torch.autograd.gradcheck(CE.matmul, (a, b))


@pytest.mark.parametrize(
    "bad",
    [torch.zeros(3), [torch.zeros(3)], [torch.zeros(3)] * 3, "pq"],
    ids=["tensor", "one", "three", "str"],
)
def test_convert_needs_a_list_of_two(bad):
    with pytest.raises(ValueError, match="list"):
        CE.convert(bad)


def test_convert_checks_shapes_and_types():
    with pytest.raises(ValueError, match=r"\(3,\) and \(4,\)"):
        CE.convert([torch.zeros(3), torch.zeros(4)])
    with pytest.raises(TypeError, match="two tensors"):
        CE.convert([torch.zeros(3), 1.0])
    assert CE.zero.tolist() == [-math.inf, -math.inf, 0.0] and CE.one.tolist() == [0.0] * 3
    assert CE.size() == 3
