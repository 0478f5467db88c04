"""Tests of ``topk/pytorch.py``: the k best segmentations against enumeration and Viterbi."""

from __future__ import annotations

import math

import pytest
import torch
from _enumerate import scored_segmentations, tie_key

from semicrf_kernels.topk import semi_crf_streaming_topk
from semicrf_kernels.viterbi.pytorch import streaming_viterbi_pytorch

#: (B, T, C, K, lengths, per_duration, proj, forbid)
CASES = [
    (2, 5, 2, 3, [5, 3], False, False, 0.0),
    (2, 4, 3, 2, [4, 2], False, True, 0.0),
    (2, 4, 3, 3, [4, 3], True, True, 0.0),
    (2, 5, 2, 2, [5, 4], True, False, 0.3),
    (2, 5, 3, 3, [5, 2], False, True, 0.4),
    (1, 4, 3, 1, None, False, False, 0.0),
    (2, 3, 2, 6, [3, 2], False, False, 0.0),
]


def tie_groups(paths, tol: float):
    """Enumerated paths by decreasing score, scores within ``tol`` (relative) grouped as ties,
    each group in the documented tie order."""
    paths = sorted(paths, key=lambda p: -p.score)
    groups = []
    for p in paths:
        if groups and abs(groups[-1][0].score - p.score) <= tol * max(1.0, abs(p.score)):
            groups[-1].append(p)
        else:
            groups.append([p])
    return [sorted(group, key=tie_key) for group in groups]


def check_against_enumeration(inp, seg, k: int, T: int, exact_ties: bool = False) -> None:
    """The k results are the k best of the enumeration, in order.

    With ``exact_ties`` (integer inputs: equal scores are bitwise equal) ties must follow the
    documented order exactly. Otherwise segmentations whose scores are equal in exact arithmetic
    (e.g. two same-label segments whose durations swap) differ in the last bits, and rounding
    decides their order: the test then only checks which segmentations a tie group contributes.
    """
    for b in range(inp.lengths.shape[0]):
        groups = tie_groups(scored_segmentations(inp, b), 0.0 if exact_ties else 1e-9)
        got = [
            (tuple(seg.labels[r, b].tolist()), tuple(seg.starts[r, b].tolist())) for r in range(k)
        ]
        r = 0
        for group in groups:
            if r >= k:
                break
            take = got[r : r + len(group)]
            keys = [p.key(T) for p in group]
            for i, p in enumerate(group[: len(take)]):
                assert float(seg.scores[r + i, b]) == pytest.approx(p.score, rel=1e-10, abs=1e-10)
            if exact_ties:
                assert take == keys[: len(take)], (b, r)
            else:
                assert len(set(take)) == len(take) and set(take) <= set(keys), (b, r)
            r += len(group)
        for rank in range(r, k):  # absent: fewer segmentations than k
            assert seg.scores[rank, b] == -math.inf
            assert all(x == -1 for x in got[rank][0]) and not any(got[rank][1])


@pytest.mark.parametrize(("B", "T", "C", "K", "lengths", "per_duration", "proj", "forbid"), CASES)
@pytest.mark.parametrize("k", [1, 3, 17])
def test_topk_matches_enumeration(
    make_inputs, B, T, C, K, lengths, per_duration, proj, forbid, k
) -> None:
    inp = make_inputs(
        B=B, T=T, C=C, K=K, lengths=lengths, per_duration=per_duration, proj=proj, forbid=forbid
    )
    seg = semi_crf_streaming_topk(*inp.args, k, **inp.kwargs)
    assert seg.labels.shape == (k, B, T) and seg.scores.shape == (k, B)
    check_against_enumeration(inp, seg, k, T)


def test_k_beyond_the_number_of_segmentations(make_inputs) -> None:
    inp = make_inputs(B=2, T=3, C=2, K=2, lengths=[3, 1])
    # L = 3, K = 2, C = 2: 3 tilings with 2+2+3... enumerate to be sure.
    count = [len(scored_segmentations(inp, b)) for b in range(2)]
    k = max(count) + 5
    seg = semi_crf_streaming_topk(*inp.args, k)
    check_against_enumeration(inp, seg, k, 3)
    assert int(torch.isfinite(seg.scores[:, 1]).sum()) == count[1] == 2


def _integer_inputs(make_inputs, per_duration: bool, exact_start: bool):
    """Inputs with small integer scores: many segmentations tie exactly."""
    inp = make_inputs(B=3, T=6, C=3, K=3, lengths=[6, 5, 3], per_duration=per_duration, proj=True)
    emissions = torch.randint(-1, 2, (3, 6, 3), generator=torch.Generator().manual_seed(3)).double()
    cum = torch.zeros(3, 7, 3, dtype=torch.float64)
    cum[:, 1:] = emissions.cumsum(1)
    trans = inp.transition.round()
    if exact_start:
        # One allowed entry per column (a cycle): the start score is that integer, exactly.
        allowed = torch.tensor([[0, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=torch.bool)
        trans = torch.where(allowed, trans, -torch.inf)
    return inp._replace(
        cum_scores=cum,
        transition=trans,
        duration_bias=inp.duration_bias.round(),
        proj_start=inp.proj_start.round(),
        proj_end=inp.proj_end.round(),
    )


@pytest.mark.parametrize("per_duration", [False, True])
def test_ties_follow_the_documented_order(make_inputs, per_duration) -> None:
    inp = _integer_inputs(make_inputs, per_duration, exact_start=True)
    seg = semi_crf_streaming_topk(*inp.args, 12, **inp.kwargs)
    scores = seg.scores[:, 0]
    assert (scores[:-1] == scores[1:]).any(), "the inputs must contain exact ties"
    check_against_enumeration(inp, seg, 12, 6, exact_ties=True)


@pytest.mark.parametrize("per_duration", [False, True])
@pytest.mark.parametrize("integers", [False, True])
def test_top1_is_the_viterbi_path(make_inputs, per_duration, integers) -> None:
    if integers:
        inp = _integer_inputs(make_inputs, per_duration, exact_start=False)
    else:
        inp = make_inputs(B=4, T=13, C=5, K=4, per_duration=per_duration, proj=True, forbid=0.2)
    best = semi_crf_streaming_topk(*inp.args, 1, **inp.kwargs)
    path = streaming_viterbi_pytorch(*inp.args, **inp.kwargs).to_segmentation()
    assert torch.equal(best.labels[0], path.labels)
    assert torch.equal(best.starts[0], path.starts)
    assert torch.equal(best.scores[0], path.scores)  # bit for bit


def test_scores_decrease_and_are_distinct(make_inputs) -> None:
    inp = make_inputs(B=2, T=20, C=4, K=5, proj=True, dtype=torch.float32)
    seg = semi_crf_streaming_topk(*inp.args, 10, **inp.kwargs)
    assert seg.scores.dtype == torch.float32
    assert (seg.scores[:-1] >= seg.scores[1:]).all()
    for b in range(2):
        keys = {
            (tuple(seg.labels[r, b].tolist()), tuple(seg.starts[r, b].tolist())) for r in range(10)
        }
        assert len(keys) == 10


def test_bad_k(make_inputs) -> None:
    inp = make_inputs(B=1, T=4, C=2, K=2)
    with pytest.raises(ValueError, match="k: expected an int >= 1, got 0"):
        semi_crf_streaming_topk(*inp.args, 0)
    with pytest.raises(TypeError, match="k"):
        semi_crf_streaming_topk(*inp.args, None)
