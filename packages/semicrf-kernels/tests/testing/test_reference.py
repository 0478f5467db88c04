"""The float64 reference recurrence against enumeration of every segmentation."""

from __future__ import annotations

import math

import pytest
import torch

from semicrf_kernels.constants import NEG_INF
from semicrf_kernels.testing.brute_force import brute_force_streaming, score_segmentation
from semicrf_kernels.testing.reference import reference_forward, reference_viterbi

# (B, T, C, K, per_duration, proj, forbid): K = 1, 2, K > T, C = 1, 3, 5, batch 1, ...
CASES = [
    (1, 5, 3, 1, False, False, 0.0),
    (3, 6, 3, 2, False, True, 0.0),
    (2, 5, 1, 3, False, False, 0.0),
    (2, 4, 5, 6, False, False, 0.0),
    (3, 6, 3, 4, True, True, 0.0),
    (2, 5, 2, 2, True, False, 0.0),
    (3, 6, 3, 3, False, True, 0.3),
    (2, 5, 3, 7, True, False, 0.3),
]


@pytest.mark.parametrize(("B", "T", "C", "K", "per_duration", "proj", "forbid"), CASES)
def test_reference_matches_brute_force(make_inputs, B, T, C, K, per_duration, proj, forbid) -> None:
    inp = make_inputs(B, T, C, K, per_duration=per_duration, proj=proj, forbid=forbid)
    bf = brute_force_streaming(*inp.args, **inp.kwargs)
    log_z = reference_forward(*inp.args, "log", **inp.kwargs)
    best = reference_forward(*inp.args, "max", **inp.kwargs)
    torch.testing.assert_close(log_z, bf.log_partition, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(best, bf.viterbi_score, rtol=1e-12, atol=1e-12)

    path = reference_viterbi(*inp.args, **inp.kwargs)
    torch.testing.assert_close(path.scores, bf.viterbi_score, rtol=1e-12, atol=1e-12)
    for b in range(B):
        n = int(path.num_segments[b])
        segs = [
            (
                int(path.starts[b, i]),
                int(path.starts[b, i] + path.durations[b, i] - 1),
                int(path.labels[b, i]),
            )
            for i in range(n)
        ]
        assert segs == bf.viterbi_segments[b]
        assert torch.all(path.starts[b, n:] == -1) and torch.all(path.segment_scores[b, n:] == 0)
        if n:
            ps = None if inp.proj_start is None else inp.proj_start[b]
            pe = None if inp.proj_end is None else inp.proj_end[b]
            direct = score_segmentation(
                inp.cum_scores[b], inp.transition, inp.duration_bias, segs, ps, pe
            )
            assert float(path.segment_scores[b, :n].sum()) == pytest.approx(direct, rel=1e-12)


def test_reference_viterbi_ties_follow_the_convention() -> None:
    # Integer scores make exact ties: the brute force and the recurrence must agree on them.
    gen = torch.Generator().manual_seed(7)
    for _ in range(5):
        C, K, T = 3, 3, 6
        em = torch.randint(-1, 2, (2, T, C), generator=gen).double()
        cum = torch.cat([torch.zeros(2, 1, C, dtype=torch.float64), em.cumsum(1)], 1)
        trans = torch.randint(-1, 1, (C, C), generator=gen).double()
        bias = torch.randint(-1, 1, (K, C), generator=gen).double()
        lengths = torch.tensor([6, 4])
        bf = brute_force_streaming(cum, trans, bias, lengths, K)
        path = reference_viterbi(cum, trans, bias, lengths, K)
        for b in range(2):
            n = int(path.num_segments[b])
            segs = [
                (
                    int(path.starts[b, i]),
                    int(path.starts[b, i] + path.durations[b, i] - 1),
                    int(path.labels[b, i]),
                )
                for i in range(n)
            ]
            assert segs == bf.viterbi_segments[b]


def test_reference_everything_forbidden(make_inputs) -> None:
    inp = make_inputs(2, 4, 3, 2)
    bias = torch.full_like(inp.duration_bias, NEG_INF)
    for semiring in ("log", "max"):
        out = reference_forward(inp.cum_scores, inp.transition, bias, inp.lengths, 2, semiring)
        assert torch.all(out == -math.inf)
    path = reference_viterbi(inp.cum_scores, inp.transition, bias, inp.lengths, 2)
    assert torch.all(path.num_segments == 0) and torch.all(path.scores == -math.inf)


def test_reference_rejects_unknown_semiring(make_inputs) -> None:
    inp = make_inputs(1, 3, 2, 2)
    with pytest.raises(ValueError, match="semiring"):
        reference_forward(*inp.args, "entropy")
