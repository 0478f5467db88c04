"""compute_edge_block_streaming against the scalar segmentation scorer."""

from __future__ import annotations

import math

import pytest
import torch

from semicrf_kernels import compute_edge_block_streaming
from semicrf_kernels.testing.brute_force import score_segmentation


@pytest.mark.parametrize(("per_duration", "proj"), [(False, False), (False, True), (True, True)])
def test_edge_block_is_the_score_of_the_appended_segment(make_inputs, per_duration, proj) -> None:
    T, C, K = 7, 3, 4
    inp = make_inputs(2, T, C, K, per_duration=per_duration, proj=proj, forbid=0.2)
    start, k = 3, 3
    edge = compute_edge_block_streaming(
        inp.cum_scores, inp.transition, inp.duration_bias, start, k, inp.proj_start, inp.proj_end
    )
    assert edge.shape == (2, C, C)
    for b in range(2):
        ps = None if inp.proj_start is None else inp.proj_start[b]
        pe = None if inp.proj_end is None else inp.proj_end[b]
        for c_src in range(C):
            prefix = [(0, start - 1, c_src)]  # one segment before, of duration start <= K
            before = score_segmentation(
                inp.cum_scores[b], inp.transition, inp.duration_bias, prefix, ps, pe
            )
            for c_dst in range(C):
                after = score_segmentation(
                    inp.cum_scores[b], inp.transition, inp.duration_bias,
                    [*prefix, (start, start + k - 1, c_dst)], ps, pe,
                )  # fmt: skip
                if before == -math.inf or after == -math.inf:
                    assert edge[b, c_dst, c_src] == -math.inf or before == -math.inf
                else:
                    assert float(edge[b, c_dst, c_src]) == pytest.approx(
                        after - before, rel=1e-12, abs=1e-12
                    )


def test_edge_block_is_differentiable(make_inputs) -> None:
    inp = make_inputs(1, 5, 2, 2)
    cum = inp.cum_scores.clone().requires_grad_()
    compute_edge_block_streaming(cum, inp.transition, inp.duration_bias, 1, 2).sum().backward()
    expected = torch.zeros_like(cum)
    expected[0, 3] = 2.0  # each (c_dst, c_src) pair reads cum[start + k, c_dst] once per c_src
    expected[0, 1] = -2.0
    assert torch.equal(cum.grad, expected)


def test_edge_block_rejects_out_of_range(make_inputs) -> None:
    inp = make_inputs(1, 5, 2, 3)
    with pytest.raises(ValueError, match=r"k: expected a duration in \[1, K\] = \[1, 3\], got 4"):
        compute_edge_block_streaming(inp.cum_scores, inp.transition, inp.duration_bias, 0, 4)
    with pytest.raises(
        ValueError, match=r"start: expected a position in \[0, T - k\] = \[0, 3\], got 4"
    ):
        compute_edge_block_streaming(inp.cum_scores, inp.transition, inp.duration_bias, 4, 2)
    with pytest.raises(TypeError, match="start"):
        compute_edge_block_streaming(inp.cum_scores, inp.transition, inp.duration_bias, 1.0, 2)
    with pytest.raises(ValueError, match="duration_bias"):
        compute_edge_block_streaming(inp.cum_scores, inp.transition, inp.duration_bias[0], 1, 2)
