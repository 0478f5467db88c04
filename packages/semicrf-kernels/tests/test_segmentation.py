"""Tests of ``segmentation.py`` and ``segmentation_score.py``: conversions and scoring."""

from __future__ import annotations

import math

import pytest
import torch

from semicrf_kernels.segmentation import (
    Segmentation,
    labels_to_segments,
    segmentation_from_path,
    segments_to_labels,
)
from semicrf_kernels.segmentation_score import check_segmentation, score_segmentation_tensors
from semicrf_kernels.testing.brute_force import score_segmentation
from semicrf_kernels.viterbi.pytorch import streaming_viterbi_pytorch


def _runs(labels: list[int], K: int) -> list[tuple[int, int, int]]:
    """Maximal runs split into K-pieces, by a plain loop (the rule of conventions section 2)."""
    out = []
    s = 0
    for t in range(1, len(labels) + 1):
        if t == len(labels) or labels[t] != labels[t - 1] or t - s == K:
            out.append((s, t - 1, labels[s]))
            s = t
    return out


@pytest.mark.parametrize("K", [1, 2, 3, 7])
def test_labels_to_segments_matches_loop(rng, K) -> None:
    B, T, C = 4, 11, 3
    labels = torch.randint(0, C, (B, T), generator=rng)
    labels[1, 2:9] = 2  # a run longer than some K
    lengths = torch.tensor([11, 9, 1, 5])
    seg = labels_to_segments(labels, lengths, K)
    assert seg.scores is None
    for b in range(B):
        L = int(lengths[b])
        expected = _runs(labels[b, :L].tolist(), K)
        got_starts = seg.starts[b].nonzero().flatten().tolist()
        assert got_starts == [s for s, _, _ in expected]
        assert seg.labels[b, :L].tolist() == labels[b, :L].tolist()
        assert (seg.labels[b, L:] == -1).all()
    # Back to labels through the segment list form.
    lists = [_runs(labels[b, : int(lengths[b])].tolist(), K) for b in range(B)]
    assert torch.equal(segments_to_labels(lists, T), seg.labels)
    assert torch.equal(segments_to_labels(seg, T), seg.labels)
    assert segments_to_labels(seg, T + 2)[:, T:].eq(-1).all()


def test_labels_to_segments_leading_dims(rng) -> None:
    labels = torch.randint(0, 2, (3, 2, 6), generator=rng)
    lengths = torch.tensor([6, 4])
    seg = labels_to_segments(labels, lengths, 2)
    for i in range(3):
        one = labels_to_segments(labels[i], lengths, 2)
        assert torch.equal(seg.labels[i], one.labels)
        assert torch.equal(seg.starts[i], one.starts)


def test_viterbi_path_to_segmentation(make_inputs) -> None:
    inp = make_inputs(B=4, T=9, C=3, K=3, proj=True, forbid=0.2)
    path = streaming_viterbi_pytorch(*inp.args, **inp.kwargs)
    seg = path.to_segmentation()
    assert torch.equal(seg.starts, segmentation_from_path(path).starts)
    for b in range(4):
        n = int(path.num_segments[b])
        L = int(inp.lengths[b])
        expected = torch.full((9,), -1, dtype=torch.int64)
        starts = torch.zeros(9, dtype=torch.bool)
        for i in range(n):
            s, d, c = (int(path.starts[b, i]), int(path.durations[b, i]), int(path.labels[b, i]))
            expected[s : s + d] = c
            starts[s] = True
        assert torch.equal(seg.labels[b], expected)
        assert torch.equal(seg.starts[b], starts)
        if n:
            assert int((seg.labels[b] >= 0).sum()) == L
    assert torch.equal(seg.scores, path.scores)


@pytest.mark.parametrize("per_duration", [False, True])
@pytest.mark.parametrize("proj", [False, True])
def test_score_matches_brute_force_and_grad(make_inputs, rng, per_duration, proj) -> None:
    K, C, T = 3, 3, 8
    inp = make_inputs(B=3, T=T, C=C, K=K, per_duration=per_duration, proj=proj, forbid=0.2)
    labels = torch.randint(0, C, (2, 3, T), generator=rng)
    seg = labels_to_segments(labels, inp.lengths, K)
    check_segmentation(seg, inp.lengths, K, C)
    leaves = [
        x.clone().requires_grad_() for x in (inp.cum_scores, inp.transition, inp.duration_bias)
    ]
    scores = score_segmentation_tensors(
        *leaves, inp.lengths, seg, proj_start=inp.proj_start, proj_end=inp.proj_end
    )
    assert scores.shape == (2, 3)
    for i in range(2):
        for b in range(3):
            L = int(inp.lengths[b])
            segs = _runs(labels[i, b, :L].tolist(), K)
            expected = score_segmentation(
                inp.cum_scores[b], inp.transition, inp.duration_bias, segs,
                None if inp.proj_start is None else inp.proj_start[b],
                None if inp.proj_end is None else inp.proj_end[b],
            )  # fmt: skip
            if math.isinf(expected):
                assert scores[i, b] == -math.inf
            else:
                assert float(scores[i, b].detach()) == pytest.approx(expected, rel=1e-12, abs=1e-12)
    finite = torch.isfinite(scores)
    if finite.any():
        scores[finite].sum().backward()
        # The cum-score gradient of a segmentation's score is +-1 at segment ends and starts.
        g = leaves[0].grad
        assert torch.isfinite(g).all()
        for b in range(3):
            assert (g[b, int(inp.lengths[b]) + 1 :] == 0).all()


def test_check_segmentation_errors() -> None:
    lengths = torch.tensor([3])
    good = labels_to_segments(torch.tensor([[0, 0, 1]]), lengths, 2)
    check_segmentation(good, lengths, 2, 2)
    with pytest.raises(ValueError, match="batch=1"):
        check_segmentation(good._replace(labels=good.labels[None].expand(2, 2, 3)), lengths, 2, 2)
    with pytest.raises(ValueError, match="starts"):
        check_segmentation(good._replace(starts=good.starts[:, :2]), lengths, 2, 2)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        check_segmentation(good._replace(labels=torch.tensor([[0, 0, 5]])), lengths, 2, 2)
    with pytest.raises(ValueError, match="one label per segment"):
        check_segmentation(good._replace(labels=torch.tensor([[0, 1, 1]])), lengths, 2, 2)
    with pytest.raises(ValueError, match="at most K"):
        check_segmentation(labels_to_segments(torch.tensor([[0, 0, 0]]), lengths, 3), lengths, 2, 2)
    with pytest.raises(TypeError, match="Segmentation"):
        check_segmentation((good.labels, good.starts), lengths, 2, 2)


def test_segments_to_labels_errors() -> None:
    with pytest.raises(ValueError, match="end >= start"):
        segments_to_labels([[(2, 1, 0)]], 4)
    with pytest.raises(ValueError, match="T = 4"):
        segments_to_labels([[(0, 4, 0)]], 4)
    with pytest.raises(TypeError, match="Segmentation"):
        segments_to_labels("abc", 4)
    assert segments_to_labels([[], [(0, 1, 2)]], 3).tolist() == [[-1, -1, -1], [2, 2, -1]]
    with pytest.raises(ValueError, match="lengths"):
        labels_to_segments(torch.zeros(2, 3, dtype=torch.long), torch.tensor([4, 1]), 2)
    with pytest.raises(ValueError, match="K"):
        labels_to_segments(torch.zeros(2, 3, dtype=torch.long), torch.tensor([3, 1]), 0)
    with pytest.raises(ValueError, match=r"lengths: expected values in \[1, T\]"):
        labels_to_segments(torch.zeros(2, 3, dtype=torch.long), torch.tensor([3, 0]), 2)
    with pytest.raises(TypeError, match="lengths: expected an integer dtype"):
        labels_to_segments(torch.zeros(2, 3, dtype=torch.long), torch.tensor([3.0, 1.0]), 2)
    # a Segmentation cut short must not drop labelled positions; padding past them is fine
    seg = labels_to_segments(torch.tensor([[0, 0, 1, 1], [1, 1, 0, 0]]), torch.tensor([4, 2]), 3)
    with pytest.raises(ValueError, match="covers position 3 >= T = 3"):
        segments_to_labels(seg, 3)
    assert segments_to_labels(seg._replace(labels=seg.labels[1:]), 2).tolist() == [[1, 1]]


def test_segmentation_is_namedtuple() -> None:
    seg = Segmentation(
        torch.zeros(1, 2, dtype=torch.long), torch.ones(1, 2, dtype=torch.bool), None
    )
    assert seg._fields == ("labels", "starts", "scores")
