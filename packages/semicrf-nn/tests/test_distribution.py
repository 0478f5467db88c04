"""Tests of ``distribution.py`` (``SemiCRFDistribution``) and ``head.distribution``."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from _nn_helpers import brute, make_batch, make_head

from semicrf_kernels.testing.brute_force import enumerate_segmentations, score_segmentation
from semicrf_nn import (
    Segmentation,
    SemiCRFDistribution,
    labels_to_segments,
    segments_to_labels,
)


def all_paths(inputs, lengths, K, b, T):
    """(probability-free) list of (score, labels, starts) for sequence b by enumeration."""
    cum, trans, db, ps, pe = inputs
    C = cum.shape[-1]
    out = []
    for tiling in enumerate_segmentations(int(lengths[b]), K):
        for labels in itertools.product(range(C), repeat=len(tiling)):
            segs = [(s, s + d - 1, c) for (s, d), c in zip(tiling, labels)]
            score = score_segmentation(
                cum[b],
                trans,
                db,
                segs,
                None if ps is None else ps[b],
                None if pe is None else pe[b],
            )
            if score > -math.inf:
                lab = [-1] * T
                st = [False] * T
                for s, e, c in segs:
                    lab[s : e + 1] = [c] * (e - s + 1)
                    st[s] = True
                out.append((score, lab, st))
    return out


@pytest.fixture(
    params=[{}, {"duration_dependent_transitions": True, "use_boundary_projections": True}]
)
def setup(request):
    head = make_head(3, 3, **request.param)
    hidden, lengths = make_batch(3, 5, 4, seed=7)
    return head, hidden, lengths


def test_members_match_brute_force(setup) -> None:
    head, hidden, lengths = setup
    dist = head.distribution(hidden, lengths)
    assert isinstance(dist, torch.distributions.Distribution)
    assert dist.batch_shape == (3,) and dist.event_shape == (5,)
    ref, _ = brute(head, hidden, lengths)
    torch.testing.assert_close(dist.log_partition, ref.log_partition, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(dist.entropy(), ref.entropy, rtol=1e-8, atol=1e-8)
    m = dist.marginals
    torch.testing.assert_close(m.position, ref.position_marginals, rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(m.boundary, ref.boundary_marginals, rtol=1e-8, atol=1e-8)
    best = dist.argmax
    for b in range(3):
        expected = [-1] * 5
        for s, e, c in ref.viterbi_segments[b]:
            expected[s : e + 1] = [c] * (e - s + 1)
        assert best.labels[b].tolist() == expected
    assert torch.equal(dist.topk(1).labels[0], best.labels)
    assert torch.equal(dist.mode.labels, best.labels)


def test_log_prob_of_samples_and_normalisation(setup) -> None:
    head, hidden, lengths = setup
    dist = head.distribution(hidden, lengths)
    seg = dist.sample((2, 3), generator=torch.Generator().manual_seed(0))
    assert seg.labels.shape == (2, 3, 3, 5) and seg.scores.shape == (2, 3, 3)
    lp = dist.log_prob(seg)
    assert lp.shape == (2, 3, 3)
    torch.testing.assert_close(lp, seg.scores - dist.log_partition, rtol=1e-10, atol=1e-10)
    # log_prob sums to 1 over every segmentation (enumerated).
    _, inputs = brute(head, hidden, lengths)
    for b in range(3):
        paths = all_paths(inputs, lengths, 3, b, 5)
        labels = torch.tensor([p[1] for p in paths])
        starts = torch.tensor([p[2] for p in paths])
        full_labels = torch.zeros(len(paths), 3, 5, dtype=torch.long)
        full_starts = torch.zeros(len(paths), 3, 5, dtype=torch.bool)
        for bb in range(3):  # other sequences: any valid segmentation (one segment per position)
            L = int(lengths[bb])
            full_labels[:, bb, :L] = 0
            full_labels[:, bb, L:] = -1
            full_starts[:, bb, :L] = True
        full_labels[:, b], full_starts[:, b] = labels, starts
        probs = dist.log_prob(Segmentation(full_labels, full_starts, None))[:, b].exp()
        torch.testing.assert_close(probs.sum(), torch.tensor(1.0, dtype=torch.float64))
        want = torch.tensor([p[0] for p in paths], dtype=torch.float64) - dist.log_partition[b]
        torch.testing.assert_close(
            dist.log_prob(Segmentation(full_labels, full_starts, None))[:, b], want
        )


def test_log_prob_is_differentiable_and_sample_default_shape(setup) -> None:
    head, hidden, lengths = setup
    dist = head.distribution(hidden, lengths)
    one = dist.sample()
    assert one.labels.shape == (3, 5)
    dist.log_prob(one).sum().backward()
    assert head.transition_raw.grad is not None and torch.isfinite(head.transition_raw.grad).all()


def test_kl_registered_and_gradients_to_q(setup) -> None:
    head, hidden, lengths = setup
    student = make_head(
        3,
        3,
        duration_dependent_transitions=head.duration_dependent_transitions,
        use_boundary_projections=head.use_boundary_projections,
    )
    p = head.distribution(hidden, lengths)
    q = student.distribution(hidden, lengths)
    kl = torch.distributions.kl_divergence(p, q)
    torch.testing.assert_close(kl, p.kl_divergence(q))
    torch.testing.assert_close(p.cross_entropy(q) - p.entropy(), kl, rtol=1e-8, atol=1e-8)
    assert (kl > 0).all()
    torch.testing.assert_close(
        p.kl_divergence(p), torch.zeros(3, dtype=torch.float64), atol=1e-9, rtol=0
    )
    kl.sum().backward()
    assert head.transition_raw.grad is None  # the teacher is a constant
    assert student.transition_raw.grad is not None


def test_topk_and_sample_dtypes_and_padding(setup) -> None:
    head, hidden, lengths = setup
    dist = head.distribution(hidden, lengths)
    top = dist.topk(4)
    assert top.labels.shape == (4, 3, 5)
    assert (top.scores[:-1] >= top.scores[1:]).all()
    for b in range(3):
        L = int(lengths[b])
        assert (top.labels[:, b, L:] == -1).all()


def test_bad_input(setup) -> None:
    head, hidden, lengths = setup
    dist = head.distribution(hidden, lengths)
    with pytest.raises(ValueError, match="k: expected an int >= 1"):
        dist.topk(0)
    with pytest.raises(ValueError, match="sample_shape"):
        dist.sample((0,))
    seg = dist.sample()
    with pytest.raises(ValueError, match="batch=3"):
        dist.log_prob(Segmentation(seg.labels[:2], seg.starts[:2], None))
    for cut in (1, 2, 4):  # the shape is reported, never a value check misreading it
        with pytest.raises(ValueError, match="T = 5"):
            dist.log_prob(Segmentation(seg.labels[:, :cut], seg.starts[:, :cut], None))
    with pytest.raises(TypeError, match="SemiCRFDistribution"):
        dist.kl_divergence("teacher")
    other = make_head(3, 3).distribution(hidden[:2], lengths[:2])
    with pytest.raises(ValueError, match="other"):
        dist.kl_divergence(other)


def test_labels_round_trip_through_the_distribution(setup) -> None:
    head, hidden, lengths = setup
    dist = head.distribution(hidden, lengths)
    seg = dist.sample((4,))
    back = labels_to_segments(segments_to_labels(seg, 5), lengths, 3)
    # Adjacent same-label segments merge into one run, so compare labels, and scores where
    # the starts agree.
    assert torch.equal(back.labels, seg.labels)
    same = (back.starts == seg.starts).all(-1)
    torch.testing.assert_close(dist.log_prob(back)[same], dist.log_prob(seg)[same])


def test_constructor_validates() -> None:
    cum = torch.zeros(2, 4, 3)
    with pytest.raises(ValueError, match="duration_bias"):
        SemiCRFDistribution(cum, torch.zeros(3, 3), torch.zeros(2, 3), torch.tensor([3, 2]), 3)


def test_marginals_are_zero_past_each_length_and_repr(setup) -> None:
    head, hidden, lengths = setup
    assert int(lengths.min()) < 5  # some padding to look at
    dist = head.distribution(hidden, lengths)
    m = dist.marginals
    pad = torch.arange(5) >= lengths[:, None]
    assert (m.position[pad] == 0).all() and (m.boundary[pad] == 0).all()
    text = repr(dist)
    assert text.startswith("SemiCRFDistribution(batch=3, T=5, C=3, K=3")
