"""Tests of ``divergence/``: cross-entropy and KL against enumeration, gradients to q only."""

from __future__ import annotations

import math

import pytest
import torch
from _enumerate import log_partition, scored_segmentations

from semicrf_kernels.divergence import (
    semi_crf_streaming_cross_entropy,
    semi_crf_streaming_kl_divergence,
)
from semicrf_kernels.segmentation import Segmentation
from semicrf_kernels.segmentation_score import score_segmentation_tensors

#: (B, T, C, K, lengths, p_per_duration, q_per_duration, proj, forbid)
CASES = [
    (2, 5, 2, 3, [5, 3], False, False, False, 0.0),
    (2, 4, 3, 2, [4, 2], False, False, True, 0.0),
    (2, 4, 3, 3, [4, 3], True, True, True, 0.0),
    (2, 5, 2, 2, [5, 4], True, False, False, 0.2),
    (2, 4, 3, 3, [4, 2], False, True, True, 0.3),
    (1, 4, 2, 1, None, False, False, False, 0.0),
    (2, 3, 2, 6, [3, 2], False, False, True, 0.0),
]


def brute(p, q, b: int, T: int):
    """CE and KL of sequence b by enumeration, and q's differentiable brute-force CE."""
    p_paths = scored_segmentations(p, b)
    if not p_paths:
        return 0.0, 0.0
    lzp = log_partition(p_paths)
    q_scores = {path.key(T): path.score for path in scored_segmentations(q, b)}
    lzq = log_partition(list(scored_segmentations(q, b))) if q_scores else -math.inf
    ce = kl = 0.0
    for path in p_paths:
        prob = math.exp(path.score - lzp)
        if prob == 0.0:
            continue
        sq = q_scores.get(path.key(T), -math.inf)
        if sq == -math.inf:
            return math.inf, math.inf
        ce -= prob * (sq - lzq)
        kl += prob * ((path.score - lzp) - (sq - lzq))
    return ce, kl


def pair(make_inputs, B, T, C, K, lengths, p_pd, q_pd, proj, forbid):
    p = make_inputs(
        B=B, T=T, C=C, K=K, lengths=lengths, per_duration=p_pd, proj=proj, forbid=forbid
    )
    q = make_inputs(
        B=B, T=T, C=C, K=K, lengths=lengths, per_duration=q_pd, proj=proj, forbid=forbid
    )
    return p, q._replace(lengths=p.lengths)


def call(fn, p, q, **kw):
    return fn(
        p.cum_scores, p.transition, p.duration_bias, q.cum_scores, q.transition, q.duration_bias,
        p.lengths, p.K, p_proj_start=p.proj_start, p_proj_end=p.proj_end,
        q_proj_start=q.proj_start, q_proj_end=q.proj_end, **kw,
    )  # fmt: skip


@pytest.mark.parametrize(("B", "T", "C", "K", "lengths", "p_pd", "q_pd", "proj", "forbid"), CASES)
def test_matches_enumeration(make_inputs, B, T, C, K, lengths, p_pd, q_pd, proj, forbid) -> None:
    p, q = pair(make_inputs, B, T, C, K, lengths, p_pd, q_pd, proj, forbid)
    ce = call(semi_crf_streaming_cross_entropy, p, q)
    kl = call(semi_crf_streaming_kl_divergence, p, q)
    kl_self = call(semi_crf_streaming_kl_divergence, p, p)
    for b in range(B):
        want_ce, want_kl = brute(p, q, b, T)
        if math.isinf(want_ce):
            assert ce[b] == math.inf and kl[b] == math.inf
        else:
            assert float(ce[b]) == pytest.approx(want_ce, rel=1e-9, abs=1e-9)
            assert float(kl[b]) == pytest.approx(want_kl, rel=1e-9, abs=1e-9)
        assert float(kl_self[b]) == pytest.approx(0.0, abs=1e-9)
        # CE(p, p) is p's entropy.
    ce_self = call(semi_crf_streaming_cross_entropy, p, p)
    assert torch.allclose(ce_self - kl_self, ce_self, atol=1e-9)


def test_infinite_where_q_forbids_what_p_allows(make_inputs) -> None:
    p, q = pair(make_inputs, 2, 4, 2, 2, [4, 1], False, False, False, 0.0)
    trans = q.transition.clone()
    trans[0, 1] = -torch.inf  # q forbids 0 -> 1; p uses it with positive probability (L = 4)
    q = q._replace(transition=trans)
    ce = call(semi_crf_streaming_cross_entropy, p, q)
    kl = call(semi_crf_streaming_kl_divergence, p, q)
    assert ce[0] == math.inf and kl[0] == math.inf
    assert torch.isfinite(ce[1]) and torch.isfinite(kl[1])  # L = 1: no transition at all
    # The other direction: p forbids what q allows, finite (0 * -inf = 0).
    back = call(semi_crf_streaming_kl_divergence, q, p)
    want = brute(q, p, 0, 4)[1]
    assert float(back[0]) == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize(
    ("p_pd", "q_pd", "proj"), [(False, False, True), (True, False, False), (False, True, True)]
)
def test_gradients_to_q_only(make_inputs, p_pd, q_pd, proj) -> None:
    T, K = 5, 3
    p, q = pair(make_inputs, 2, T, 2, K, [5, 3], p_pd, q_pd, proj, 0.0)
    p = p._replace(cum_scores=p.cum_scores.clone().requires_grad_())
    names = ["cum_scores", "transition", "duration_bias"] + (
        ["proj_start", "proj_end"] if proj else []
    )
    leaves = {n: getattr(q, n).clone().requires_grad_() for n in names}
    q_leaf = q._replace(**leaves)
    ce = call(semi_crf_streaming_cross_entropy, p, q_leaf)
    ce.sum().backward()
    assert p.cum_scores.grad is None
    # Brute force with autograd: CE = log Z_q - sum_y p(y) score_q(y).
    ref_leaves = {n: getattr(q, n).clone().requires_grad_() for n in names}
    total = 0.0
    for b in range(2):
        paths = scored_segmentations(p, b)
        lzp = log_partition(paths)
        q_all = scored_segmentations(q, b)

        def seg_tensor(items):
            labels = torch.tensor([list(x.key(T)[0]) for x in items])[:, None]
            starts = torch.tensor([list(x.key(T)[1]) for x in items])[:, None]
            return Segmentation(labels, starts, None)

        def q_scores(items, b=b):
            return score_segmentation_tensors(
                ref_leaves["cum_scores"][b : b + 1], ref_leaves["transition"],
                ref_leaves["duration_bias"], q.lengths[b : b + 1], seg_tensor(items),
                proj_start=None if not proj else ref_leaves["proj_start"][b : b + 1],
                proj_end=None if not proj else ref_leaves["proj_end"][b : b + 1],
            )[:, 0]  # fmt: skip

        probs = torch.tensor([math.exp(x.score - lzp) for x in paths], dtype=torch.float64)
        total = total + torch.logsumexp(q_scores(q_all), 0) - (probs * q_scores(paths)).sum()
    total.backward()
    for n in names:
        assert torch.allclose(leaves[n].grad, ref_leaves[n].grad, atol=1e-9), n


def test_bad_inputs(make_inputs) -> None:
    p, q = pair(make_inputs, 2, 4, 2, 2, [4, 2], False, False, False, 0.0)
    with pytest.raises(ValueError, match="q_cum_scores"):
        call(semi_crf_streaming_cross_entropy, p, q._replace(cum_scores=q.cum_scores[:, :4]))
    with pytest.raises(ValueError, match="q's model: duration_bias"):
        call(semi_crf_streaming_kl_divergence, p, q._replace(duration_bias=q.duration_bias[:1]))
