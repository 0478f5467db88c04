"""Gold segmentations and their scores, against the enumeration module's scorer."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from semicrf_kernels.testing.brute_force import score_segmentation
from semicrf_nn import Segment, labels_to_segment_lists, score_gold_vectorized
from semicrf_nn.gold import (
    describe_forbidden_gold,
    gold_segmentation,
    score_gold_reference,
    segments_to_tensors,
    start_scores,
)


def _runs_split(labels: list[int], L: int, K: int) -> list[tuple[int, int, int]]:
    """Maximal runs of equal labels in [0, L), split into K-sized pieces: a plain loop."""
    out = []
    s = 0
    while s < L:
        e = s
        while e + 1 < L and labels[e + 1] == labels[s]:
            e += 1
        for a in range(s, e + 1, K):
            out.append((a, min(a + K - 1, e), labels[s]))
        s = e + 1
    return out


def _random_problem(B, T, C, K, *, per_duration=False, proj=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    cum = torch.cat(
        [
            torch.zeros(B, 1, C, dtype=torch.float64),
            torch.randn(B, T, C, generator=g, dtype=torch.float64).cumsum(1),
        ],
        1,
    )
    trans = torch.randn(*((K, C, C) if per_duration else (C, C)), generator=g, dtype=torch.float64)
    db = torch.randn(K, C, generator=g, dtype=torch.float64)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    lengths[0] = T
    # Few distinct labels so long runs (and K-splits) are common.
    labels = torch.randint(0, C, (B, T), generator=g)
    labels = torch.where(torch.rand(B, T, generator=g) < 0.6, labels[:, :1].expand(B, T), labels)
    ps = pe = None
    if proj:
        ps = torch.randn(B, T, C, generator=g, dtype=torch.float64)
        pe = torch.randn(B, T, C, generator=g, dtype=torch.float64)
    return cum, trans, db, lengths, labels, ps, pe


@pytest.mark.parametrize(
    ("B", "T", "C", "K", "per_duration", "proj"),
    [
        (3, 9, 3, 1, False, False),
        (3, 9, 3, 2, False, True),
        (4, 11, 5, 3, True, False),
        (2, 6, 1, 4, False, True),
        (3, 5, 3, 8, True, True),  # K > T
    ],
)
def test_gold_score_matches_enumeration_scorer(B, T, C, K, per_duration, proj) -> None:
    cum, trans, db, lengths, labels, ps, pe = _random_problem(
        B, T, C, K, per_duration=per_duration, proj=proj, seed=T * K
    )
    got = score_gold_vectorized(cum, labels, lengths, trans, db, K, ps, pe)
    assert got.shape == (B,) and got.dtype == torch.float64
    for b in range(B):
        L = int(lengths[b])
        segs = _runs_split(labels[b].tolist(), L, K)
        expected = score_segmentation(
            cum[b], trans, db, segs, None if ps is None else ps[b], None if pe is None else pe[b]
        )
        assert math.isclose(float(got[b]), expected, rel_tol=1e-12, abs_tol=1e-10)


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    T=st.integers(1, 12),
    C=st.integers(1, 4),
    K=st.integers(1, 6),
)
def test_labels_to_segment_lists_and_reference_agree(data, T, C, K) -> None:
    B = 2
    labels = torch.tensor(
        data.draw(
            st.lists(
                st.lists(st.integers(0, C - 1), min_size=T, max_size=T), min_size=B, max_size=B
            )
        )
    )
    lengths = torch.tensor(data.draw(st.lists(st.integers(1, T), min_size=B, max_size=B)))
    segs = labels_to_segment_lists(labels, lengths, K)
    for b in range(B):
        assert [(s.start, s.end, s.label) for s in segs[b]] == _runs_split(
            labels[b].tolist(), int(lengths[b]), K
        )
        assert all(1 <= s.duration <= K for s in segs[b])
    cum, trans, db, *_ = _random_problem(B, T, C, K, seed=T + 7 * C)
    torch.testing.assert_close(
        score_gold_vectorized(cum, labels, lengths, trans, db, K),
        score_gold_reference(cum, segs, trans, db),
        rtol=1e-12,
        atol=1e-10,
    )


def test_padding_is_ignored() -> None:
    cum, trans, db, lengths, labels, ps, pe = _random_problem(3, 8, 3, 3, proj=True, seed=5)
    lengths = torch.tensor([8, 3, 5])
    base = score_gold_vectorized(cum, labels, lengths, trans, db, 3, ps, pe)
    pad = torch.arange(8)[None, :] >= lengths[:, None]
    labels2 = torch.where(pad, torch.full_like(labels, -100), labels)
    cum2 = cum.clone()
    cum2[:, 1:] = torch.where(
        (torch.arange(1, 9)[None, :] > lengths[:, None])[..., None], 1e6, cum[:, 1:]
    )
    ps2 = torch.where(pad[..., None], 99.0, ps)
    pe2 = torch.where(pad[..., None], -99.0, pe)
    torch.testing.assert_close(
        score_gold_vectorized(cum2, labels2, lengths, trans, db, 3, ps2, pe2), base, rtol=0, atol=0
    )


def test_explicit_segments_allow_adjacent_same_label() -> None:
    cum, trans, db, *_ = _random_problem(2, 7, 3, 4, per_duration=True, seed=11)
    lengths = torch.tensor([7, 4])
    segments = [
        [Segment(0, 1, 2), (2, 3, 2), (4, 6, 0)],
        [(0, 3, 1)],
    ]
    got = score_gold_vectorized(cum, None, lengths, trans, db, 4, segments=segments)
    expected0 = score_segmentation(cum[0], trans, db, [(0, 1, 2), (2, 3, 2), (4, 6, 0)])
    expected1 = score_segmentation(cum[1], trans, db, [(0, 3, 1)])
    torch.testing.assert_close(got, torch.tensor([expected0, expected1], dtype=torch.float64))
    # An explicit segment longer than K is split like a label run.
    cum, trans, db, *_ = _random_problem(2, 7, 3, 2, seed=12)
    long = score_gold_vectorized(
        cum, None, lengths, trans, db, 2, segments=[[(0, 6, 1)], [(0, 3, 1)]]
    )
    labels = torch.ones(2, 7, dtype=torch.int64)
    torch.testing.assert_close(long, score_gold_vectorized(cum, labels, lengths, trans, db, 2))


@pytest.mark.parametrize(
    ("segments", "match"),
    [
        ([[(0, 2, 0), (4, 6, 1)], [(0, 3, 0)]], "right after the previous"),
        ([[(1, 6, 0)], [(0, 3, 0)]], "position 0"),
        ([[(0, 5, 0)], [(0, 3, 0)]], "end at lengths"),
        ([[(0, 6, 3)], [(0, 3, 0)]], r"label outside \[0, 3\)"),
        ([[(0, 6, 0)], []], "empty"),
        ([[(0, 6, 0)]], "2 lists"),
    ],
)
def test_bad_explicit_segments_raise(segments, match) -> None:
    with pytest.raises(ValueError, match=match):
        segments_to_tensors(segments, torch.tensor([7, 4]), 7, 3)


def test_forbidden_gold_is_minus_inf_and_described() -> None:
    C, K = 3, 2
    cum, trans, db, *_ = _random_problem(2, 6, C, K, seed=3)
    trans[0, 1] = -math.inf  # 0 -> 1 forbidden
    trans[2, 2] = -1e9  # at or below NEG_INF / 2 counts as forbidden too
    lengths = torch.tensor([6, 6])
    labels = torch.tensor([[0, 0, 1, 1, 1, 1], [2, 2, 2, 0, 0, 0]])
    got = score_gold_vectorized(cum, labels, lengths, trans, db, K)
    assert got[0] == -math.inf and got[1] == -math.inf
    parts = gold_segmentation(cum, labels, lengths, trans, db, K)
    assert "transition 0 -> 1" in describe_forbidden_gold(parts, 0)
    # Run of 2s of length 3 with K=2 is split: the split uses the forbidden 2 -> 2.
    assert "transition 2 -> 2" in describe_forbidden_gold(parts, 1)
    ok = torch.tensor([[1, 1, 2, 2, 0, 0], [0, 0, 0, 0, 2, 1]])
    assert torch.isfinite(score_gold_vectorized(cum, ok, lengths, trans, db, K)).all()
    assert describe_forbidden_gold(gold_segmentation(cum, ok, lengths, trans, db, K), 0) is None


def test_forbidden_start_and_duration_are_described() -> None:
    cum, trans, db, *_ = _random_problem(1, 4, 2, 3, seed=8)
    trans[:, 1] = -math.inf  # nothing may enter label 1, so it cannot start either
    db[2, 0] = -math.inf  # duration 3 forbidden for label 0
    lengths = torch.tensor([4])
    starts_with_1 = torch.tensor([[1, 0, 0, 0]])
    parts = gold_segmentation(cum, starts_with_1, lengths, trans, db, 3)
    assert "start score" in describe_forbidden_gold(parts, 0)
    long0 = torch.tensor([[0, 0, 0, 0]])
    parts = gold_segmentation(cum, long0, lengths, trans, db, 3)
    assert "forbidden duration" in describe_forbidden_gold(parts, 0)


def test_start_scores_are_nan_free_for_unreachable_labels() -> None:
    trans = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    masked = torch.where(torch.tensor([True, False, True])[None, :], trans, -math.inf)
    start = start_scores(masked)
    assert start[1] == -math.inf
    torch.testing.assert_close(start[[0, 2]], torch.logsumexp(trans[:, [0, 2]], 0))
    start[[0, 2]].sum().backward()
    assert torch.isfinite(trans.grad).all() and (trans.grad[:, 1] == 0).all()


def test_gold_score_gradcheck() -> None:
    cum, trans, db, lengths, labels, ps, pe = _random_problem(
        2, 6, 3, 3, per_duration=True, proj=True, seed=21
    )
    inputs = [x.clone().requires_grad_() for x in (cum, trans, db, ps, pe)]

    def f(c, t, d, a, e):
        return score_gold_vectorized(c, labels, lengths, t, d, 3, a, e)

    assert torch.autograd.gradcheck(f, inputs)


def test_shape_errors_name_the_argument() -> None:
    cum, trans, db, lengths, labels, *_ = _random_problem(2, 5, 3, 2, seed=1)
    with pytest.raises(ValueError, match="duration_bias"):
        score_gold_vectorized(cum, labels, lengths, trans, db[:1], 2)
    with pytest.raises(ValueError, match="transition"):
        score_gold_vectorized(cum, labels, lengths, trans[:2], db, 2)
    with pytest.raises(ValueError, match="labels"):
        score_gold_vectorized(cum, labels[:, :3], lengths, trans, db, 2)
    with pytest.raises(ValueError, match="proj_start"):
        score_gold_vectorized(cum, labels, lengths, trans, db, 2, proj_start=torch.zeros(2, 5, 2))
    with pytest.raises(ValueError, match="exactly one"):
        score_gold_vectorized(cum, None, lengths, trans, db, 2)
    with pytest.raises(TypeError, match="cum_scores"):
        score_gold_vectorized(cum.numpy(), labels, lengths, trans, db, 2)
