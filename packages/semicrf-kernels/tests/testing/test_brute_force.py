"""The enumeration itself, checked against counts, closed forms and finite differences."""

from __future__ import annotations

import math

import pytest
import torch

from semicrf_kernels.constants import NEG_INF
from semicrf_kernels.testing.brute_force import (
    brute_force_streaming,
    enumerate_segmentations,
    score_segmentation,
)


def compositions(L: int, K: int) -> int:
    # Number of ordered tilings of L by parts in [1, K]: a K-step Fibonacci recurrence.
    ways = [1] + [0] * L
    for n in range(1, L + 1):
        ways[n] = sum(ways[n - d] for d in range(1, min(K, n) + 1))
    return ways[L]


@pytest.mark.parametrize(("L", "K"), [(1, 1), (4, 1), (5, 2), (6, 3), (4, 9), (7, 7)])
def test_enumerate_segmentations_tiles_once(L: int, K: int) -> None:
    segs = list(enumerate_segmentations(L, K))
    assert len(segs) == compositions(L, K)
    assert len({tuple(s) for s in segs}) == len(segs)
    for seg in segs:
        pos = 0
        for s, d in seg:
            assert s == pos and 1 <= d <= K
            pos += d
        assert pos == L
    if K >= L:
        assert len(segs) == 2 ** (L - 1)


def test_enumerate_segmentations_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="K"):
        list(enumerate_segmentations(3, 0))
    with pytest.raises(ValueError, match="L"):
        list(enumerate_segmentations(-1, 2))


@pytest.mark.parametrize("per_duration", [False, True])
def test_score_segmentation_by_hand(make_inputs, per_duration: bool) -> None:
    inp = make_inputs(1, 6, 3, 4, per_duration=per_duration, proj=True)
    cum, trans, bias = inp.cum_scores[0], inp.transition, inp.duration_bias
    ps, pe = inp.proj_start[0], inp.proj_end[0]
    path = [(0, 1, 2), (2, 5, 0)]  # durations 2 and 4
    t1 = trans[1] if per_duration else trans
    t2 = trans[3] if per_duration else trans
    expected = (
        torch.logsumexp(t1[:, 2], 0)
        + (cum[2, 2] - cum[0, 2])
        + bias[1, 2]
        + ps[0, 2]
        + pe[1, 2]
        + t2[2, 0]
        + (cum[6, 0] - cum[2, 0])
        + bias[3, 0]
        + ps[2, 0]
        + pe[5, 0]
    )
    got = score_segmentation(cum, trans, bias, path, ps, pe)
    assert got == pytest.approx(float(expected), rel=1e-12)


def test_score_segmentation_forbidden_and_malformed(make_inputs) -> None:
    inp = make_inputs(1, 4, 2, 3)
    trans = inp.transition.clone()
    trans[1, 0] = NEG_INF
    path = [(0, 0, 1), (1, 3, 0)]
    assert score_segmentation(inp.cum_scores[0], trans, inp.duration_bias, path) == -math.inf
    with pytest.raises(ValueError, match="segments"):
        score_segmentation(inp.cum_scores[0], trans, inp.duration_bias, [(1, 3, 0)])
    with pytest.raises(ValueError, match="duration"):
        score_segmentation(inp.cum_scores[0], trans, inp.duration_bias, [(0, 3, 0)])


def linear_chain_log_z(inp) -> torch.Tensor:
    # With K = 1 the model is a linear-chain CRF: a matrix forward written independently.
    out = []
    emissions = inp.cum_scores[:, 1:] - inp.cum_scores[:, :-1]
    for b in range(inp.cum_scores.shape[0]):
        L = int(inp.lengths[b])
        unary = emissions[b] + inp.duration_bias[0]
        v = torch.logsumexp(inp.transition, 0) + unary[0]
        for t in range(1, L):
            v = torch.logsumexp(v[:, None] + inp.transition, 0) + unary[t]
        out.append(torch.logsumexp(v, 0))
    return torch.stack(out)


def test_k1_is_a_linear_chain_crf(make_inputs) -> None:
    inp = make_inputs(3, 6, 3, 1)
    bf = brute_force_streaming(*inp.args)
    torch.testing.assert_close(bf.log_partition, linear_chain_log_z(inp), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("C", [1, 3])
def test_uniform_distribution_entropy(C: int) -> None:
    # All-zero scores and transitions: every labelled segmentation has the same score log C,
    # so the distribution is uniform over sum_n compositions_n * C**n paths.
    L, K = 5, 3
    cum = torch.zeros(1, L + 1, C, dtype=torch.float64)
    bf = brute_force_streaming(
        cum, torch.zeros(C, C, dtype=torch.float64), torch.zeros(K, C, dtype=torch.float64),
        torch.tensor([L]), K,
    )  # fmt: skip
    n_paths = sum(C ** len(s) for s in enumerate_segmentations(L, K))
    assert bf.entropy.item() == pytest.approx(math.log(n_paths), rel=1e-12)
    assert bf.log_partition.item() == pytest.approx(math.log(n_paths) + math.log(C), rel=1e-12)
    # The tie-break from the end: smallest label, then smallest duration, every step.
    assert bf.viterbi_segments[0] == [(t, t, 0) for t in range(L)]


@pytest.mark.parametrize("per_duration", [False, True])
def test_marginals_are_derivatives_of_log_partition(make_inputs, per_duration: bool) -> None:
    inp = make_inputs(2, 5, 3, 3, per_duration=per_duration, proj=True)
    bf = brute_force_streaming(*inp.args, **inp.kwargs)
    eps = 1e-6
    for b, t, c in [(0, 0, 1), (0, 3, 2), (1, 0, 0), (0, 4, 0)]:
        if t >= int(inp.lengths[b]):
            continue
        # Position marginal = d logZ / d emission[t, c] (shift cum rows > t).
        cum = inp.cum_scores.clone()
        cum[b, t + 1 :, c] += eps
        up = brute_force_streaming(cum, *inp.args[1:], **inp.kwargs).log_partition[b]
        cum[b, t + 1 :, c] -= 2 * eps
        down = brute_force_streaming(cum, *inp.args[1:], **inp.kwargs).log_partition[b]
        assert float((up - down) / (2 * eps)) == pytest.approx(
            float(bf.position_marginals[b, t, c]), abs=1e-7
        )
        # Boundary marginal = sum_c d logZ / d proj_start[t, c].
        ps = inp.proj_start.clone()
        ps[b, t] += eps
        up = brute_force_streaming(*inp.args, proj_start=ps, proj_end=inp.proj_end).log_partition
        ps[b, t] -= 2 * eps
        down = brute_force_streaming(*inp.args, proj_start=ps, proj_end=inp.proj_end).log_partition
        assert float((up[b] - down[b]) / (2 * eps)) == pytest.approx(
            float(bf.boundary_marginals[b, t]), abs=1e-7
        )
    for b in range(2):
        L = int(inp.lengths[b])
        torch.testing.assert_close(
            bf.position_marginals[b, :L].sum(-1), torch.ones(L, dtype=torch.float64)
        )
        assert bf.boundary_marginals[b, 0].item() == pytest.approx(1.0)
        assert bf.position_marginals[b, L:].abs().sum() == 0
        assert bf.boundary_marginals[b, L:].abs().sum() == 0


def test_viterbi_is_the_best_scored_path(make_inputs) -> None:
    inp = make_inputs(3, 6, 3, 4, proj=True)
    bf = brute_force_streaming(*inp.args, **inp.kwargs)
    for b in range(3):
        L = int(inp.lengths[b])
        best = bf.viterbi_segments[b]
        got = score_segmentation(
            inp.cum_scores[b],
            inp.transition,
            inp.duration_bias,
            best,
            inp.proj_start[b],
            inp.proj_end[b],
        )
        assert got == pytest.approx(bf.viterbi_score[b].item(), rel=1e-12)
        assert best[-1][1] == L - 1
        assert bf.viterbi_score[b] <= bf.log_partition[b]


def test_everything_forbidden(make_inputs) -> None:
    inp = make_inputs(2, 4, 3, 5)
    trans = torch.full_like(inp.transition, NEG_INF)
    bf = brute_force_streaming(inp.cum_scores, trans, inp.duration_bias, inp.lengths, inp.K)
    assert torch.all(bf.log_partition == -math.inf)
    assert torch.all(bf.viterbi_score == -math.inf)
    assert bf.viterbi_segments == [[], []]
    assert bf.position_marginals.abs().sum() == 0 and bf.entropy.abs().sum() == 0


def test_forbidden_duration_removes_paths(make_inputs) -> None:
    # Forbidding duration 1 leaves only the segmentations without unit segments.
    inp = make_inputs(1, 5, 2, 3, lengths=[5])
    bias = inp.duration_bias.clone()
    bias[0] = -torch.inf
    bf = brute_force_streaming(inp.cum_scores, inp.transition, bias, inp.lengths, 3)
    assert all(e - s + 1 >= 2 for s, e, _ in bf.viterbi_segments[0])
    assert (bf.boundary_marginals[0, 1] == 0) and (bf.boundary_marginals[0, 4] == 0)
