"""Segment and ViterbiResult containers."""

from __future__ import annotations

import torch

from semicrf_nn import Segment, ViterbiResult


def test_segment_fields_and_duration() -> None:
    seg = Segment(start=3, end=7, label=2, score=-1.5)
    assert (seg.start, seg.end, seg.label, seg.score) == (3, 7, 2, -1.5)
    assert seg.duration == 5
    assert Segment(4, 4, 0).duration == 1 and Segment(4, 4, 0).score == 0.0
    assert Segment(1, 2, 0, 0.5) == Segment(1, 2, 0, 0.5)


def test_viterbi_result_is_a_named_tuple() -> None:
    result = ViterbiResult(torch.tensor([1.0]), [[Segment(0, 0, 1, 1.0)]])
    scores, segments = result  # unpacks like a tuple
    assert scores is result.scores and segments is result.segments
    assert result._fields == ("scores", "segments")
