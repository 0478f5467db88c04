"""PyTorch Viterbi: path = enumeration argmax (with its tie-break), valid, scored consistently."""

from __future__ import annotations

import math

import pytest
import torch

from semicrf_kernels.logpartition.pytorch import streaming_forward_pytorch
from semicrf_kernels.testing.brute_force import brute_force_streaming
from semicrf_kernels.testing.reference import reference_viterbi
from semicrf_kernels.viterbi.path import score_path_segments
from semicrf_kernels.viterbi.pytorch import streaming_viterbi_pytorch

CASES = [
    (1, 5, 3, 1, False, False, 0.0),
    (3, 6, 3, 2, False, True, 0.0),
    (2, 5, 1, 3, False, False, 0.0),
    (2, 4, 5, 6, False, True, 0.0),
    (3, 6, 3, 4, True, True, 0.0),
    (2, 5, 2, 2, True, False, 0.0),
    (3, 6, 3, 3, False, True, 0.3),
    (2, 5, 3, 7, True, False, 0.3),
]


def segments_of(path, b: int) -> list[tuple[int, int, int]]:
    n = int(path.num_segments[b])
    return [
        (
            int(path.starts[b, i]),
            int(path.starts[b, i] + path.durations[b, i] - 1),
            int(path.labels[b, i]),
        )
        for i in range(n)
    ]


def assert_valid_path(path, lengths: torch.Tensor, K: int) -> None:
    """Segments tile [0, L) with durations in [1, K]; padding slots are -1 / 0."""
    for b in range(lengths.shape[0]):
        n = int(path.num_segments[b])
        if n == 0:
            continue
        starts, durations = path.starts[b, :n], path.durations[b, :n]
        assert starts[0] == 0
        assert torch.equal(starts[1:], (starts + durations)[:-1])
        assert int(starts[-1] + durations[-1]) == int(lengths[b])
        assert bool(((durations >= 1) & (durations <= K)).all())
        assert torch.all(path.starts[b, n:] == -1) and torch.all(path.labels[b, n:] == -1)
        assert torch.all(path.durations[b, n:] == -1) and torch.all(path.segment_scores[b, n:] == 0)


@pytest.mark.parametrize(("B", "T", "C", "K", "per_duration", "proj", "forbid"), CASES)
def test_matches_brute_force(make_inputs, B, T, C, K, per_duration, proj, forbid) -> None:
    inp = make_inputs(B, T, C, K, per_duration=per_duration, proj=proj, forbid=forbid)
    bf = brute_force_streaming(*inp.args, **inp.kwargs)
    path = streaming_viterbi_pytorch(*inp.args, **inp.kwargs)
    torch.testing.assert_close(path.scores, bf.viterbi_score, rtol=1e-10, atol=1e-10)
    assert_valid_path(path, inp.lengths, K)
    for b in range(B):
        assert segments_of(path, b) == bf.viterbi_segments[b]
        if path.num_segments[b] > 0:
            assert float(path.segment_scores[b].sum()) == pytest.approx(
                float(path.scores[b]), rel=1e-10
            )


@pytest.mark.parametrize(
    ("per_duration", "proj", "K"), [(False, True, 5), (True, True, 4), (False, False, 40)]
)
def test_matches_reference_at_odd_sizes(make_inputs, per_duration, proj, K) -> None:
    inp = make_inputs(3, 31, 5, K, per_duration=per_duration, proj=proj, forbid=0.15)
    path = streaming_viterbi_pytorch(*inp.args, **inp.kwargs)
    ref = reference_viterbi(*inp.args, **inp.kwargs)
    torch.testing.assert_close(path.scores, ref.scores, rtol=1e-10, atol=1e-10)
    for name in ("starts", "durations", "labels", "num_segments"):
        assert torch.equal(getattr(path, name), getattr(ref, name)), name
    torch.testing.assert_close(path.segment_scores, ref.segment_scores, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(
        path.scores, streaming_forward_pytorch(*inp.args, "max", **inp.kwargs)
    )


@pytest.mark.parametrize("per_duration", [False, True])
def test_exact_ties_follow_the_convention(per_duration: bool) -> None:
    # All-zero scores: every segmentation ties; the convention picks unit segments of label 0.
    C, K, T = 3, 3, 6
    cum = torch.zeros(2, T + 1, C, dtype=torch.float64)
    trans = torch.zeros((K, C, C) if per_duration else (C, C), dtype=torch.float64)
    bias = torch.zeros(K, C, dtype=torch.float64)
    lengths = torch.tensor([6, 4])
    path = streaming_viterbi_pytorch(cum, trans, bias, lengths, K)
    bf = brute_force_streaming(cum, trans, bias, lengths, K)
    for b in range(2):
        assert (
            segments_of(path, b)
            == bf.viterbi_segments[b]
            == [(t, t, 0) for t in range(int(lengths[b]))]
        )


@pytest.mark.parametrize("per_duration", [False, True])
def test_twin_labels_tie_to_the_smaller_label(make_inputs, per_duration: bool) -> None:
    # Labels 1 and 2 identical in every score: each path through label 2 has a twin through
    # label 1 computed by the very same float operations, so the tie is exact and the
    # convention (smaller previous / final label) decides.
    inp = make_inputs(3, 6, 3, 3, per_duration=per_duration, proj=True)
    twin = [
        x.clone()
        for x in (inp.cum_scores, inp.transition, inp.duration_bias, inp.proj_start, inp.proj_end)
    ]
    cum, trans, bias, ps, pe = twin
    for x in (cum, bias, ps, pe):
        x[..., 2] = x[..., 1]
    trans[..., 2] = trans[..., 1]
    trans[..., 2, :] = trans[..., 1, :]
    path = streaming_viterbi_pytorch(cum, trans, bias, inp.lengths, 3, ps, pe)
    bf = brute_force_streaming(cum, trans, bias, inp.lengths, 3, ps, pe)
    for b in range(3):
        assert segments_of(path, b) == bf.viterbi_segments[b]
    assert not (path.labels == 2).any()


def test_no_allowed_segmentation_gives_an_empty_path(make_inputs) -> None:
    inp = make_inputs(2, 5, 3, 2, lengths=[5, 2])
    trans = torch.full_like(inp.transition, -torch.inf)
    path = streaming_viterbi_pytorch(inp.cum_scores, trans, inp.duration_bias, inp.lengths, 2)
    assert torch.all(path.scores == -math.inf) and torch.all(path.num_segments == 0)
    assert torch.all(path.starts == -1) and torch.all(path.segment_scores == 0)


def test_long_float32_path(make_inputs) -> None:
    T = 20_000
    inp = make_inputs(2, T, 3, 6, proj=True, lengths=[T, T - 101]).to(torch.float32)
    path = streaming_viterbi_pytorch(*inp.args, **inp.kwargs)
    assert path.scores.dtype == torch.float32 and path.segment_scores.dtype == torch.float32
    assert_valid_path(path, inp.lengths, 6)
    rescored = score_path_segments(
        *inp.to(torch.float64)[:3], path.starts, path.durations, path.labels, path.num_segments,
        proj_start=inp.proj_start.double(), proj_end=inp.proj_end.double(),
    ).sum(1)  # fmt: skip
    assert ((rescored - path.scores.double()).abs() / rescored.abs()).max() < 1e-6
