"""Vectorised per-segment scoring against the scalar scorer of the enumeration."""

from __future__ import annotations

import math

import pytest
import torch

from semicrf_kernels.constants import NEG_INF
from semicrf_kernels.testing.brute_force import enumerate_segmentations, score_segmentation
from semicrf_kernels.viterbi.path import ViterbiPath, score_path_segments


def random_paths(gen: torch.Generator, lengths: torch.Tensor, K: int, C: int, T: int):
    B = lengths.shape[0]
    starts = torch.full((B, T), -1, dtype=torch.int64)
    durations = torch.full((B, T), -1, dtype=torch.int64)
    labels = torch.full((B, T), -1, dtype=torch.int64)
    num = torch.zeros(B, dtype=torch.int64)
    paths = []
    for b in range(B):
        options = list(enumerate_segmentations(int(lengths[b]), K))
        choice = options[int(torch.randint(len(options), (1,), generator=gen))]
        segs = []
        for i, (s, d) in enumerate(choice):
            c = int(torch.randint(C, (1,), generator=gen))
            starts[b, i], durations[b, i], labels[b, i] = s, d, c
            segs.append((s, s + d - 1, c))
        num[b] = len(choice)
        paths.append(segs)
    return starts, durations, labels, num, paths


@pytest.mark.parametrize(("per_duration", "proj"), [(False, False), (False, True), (True, True)])
def test_score_path_segments_matches_scalar_scorer(make_inputs, rng, per_duration, proj) -> None:
    B, T, C, K = 4, 7, 3, 3
    inp = make_inputs(B, T, C, K, per_duration=per_duration, proj=proj, forbid=0.2)
    starts, durations, labels, num, paths = random_paths(rng, inp.lengths, K, C, T)
    got = score_path_segments(
        inp.cum_scores, inp.transition, inp.duration_bias, starts, durations, labels, num,
        proj_start=inp.proj_start, proj_end=inp.proj_end,
    )  # fmt: skip
    assert got.shape == (B, T) and got.dtype == torch.float64
    for b in range(B):
        n = int(num[b])
        ps = None if inp.proj_start is None else inp.proj_start[b]
        pe = None if inp.proj_end is None else inp.proj_end[b]
        total = float(got[b, :n].sum())
        expected = score_segmentation(
            inp.cum_scores[b], inp.transition, inp.duration_bias, paths[b], ps, pe
        )
        if expected == -math.inf:
            assert total == -math.inf
        else:
            assert total == pytest.approx(expected, rel=1e-12)
        # Each segment alone, checked on the first one: start score + segment.
        first = score_segmentation(
            inp.cum_scores[b, : paths[b][0][1] + 2],
            inp.transition,
            inp.duration_bias,
            paths[b][:1],
            ps,
            pe,
        )
        assert float(got[b, 0]) == pytest.approx(first, rel=1e-12) or first == float(got[b, 0])
        assert torch.all(got[b, n:] == 0)


def test_score_path_segments_float32_and_empty(make_inputs, rng) -> None:
    inp = make_inputs(2, 5, 2, 2, lengths=[5, 3]).to(torch.float32)
    starts, durations, labels, num, _ = random_paths(rng, inp.lengths, 2, 2, 5)
    num[1] = 0
    got = score_path_segments(
        inp.cum_scores, inp.transition, inp.duration_bias, starts, durations, labels, num
    )
    assert got.dtype == torch.float32
    assert torch.all(got[1] == 0) and torch.isfinite(got).all()


def test_forbidden_first_segment_gives_minus_inf_without_nan(make_inputs) -> None:
    inp = make_inputs(1, 3, 2, 3)
    trans = inp.transition.clone()
    trans[:, 1] = NEG_INF  # no segment may have label 1, the first one included
    starts = torch.tensor([[0, -1, -1]])
    durations = torch.tensor([[3, -1, -1]])
    labels = torch.tensor([[1, -1, -1]])
    got = score_path_segments(
        inp.cum_scores, trans, inp.duration_bias, starts, durations, labels, torch.tensor([1])
    )
    assert got[0, 0] == -math.inf and not torch.isnan(got).any()


def test_viterbi_path_is_a_named_tuple() -> None:
    assert ViterbiPath._fields == (
        "scores",
        "starts",
        "durations",
        "labels",
        "segment_scores",
        "num_segments",
    )
