"""The public entry points: dispatch, semiring rules, dtypes and the package's exports."""

from __future__ import annotations

import inspect

import pytest
import torch

import semicrf_kernels
import semicrf_kernels.streaming as streaming
from semicrf_kernels import (
    NEG_INF,
    SemiCRFStreaming,
    ViterbiPath,
    semi_crf_streaming_forward,
    semi_crf_streaming_viterbi,
)
from semicrf_kernels.testing.brute_force import brute_force_streaming


def test_forward_log_and_max_match_brute_force(make_inputs) -> None:
    inp = make_inputs(3, 6, 3, 4, per_duration=True, proj=True, forbid=0.2)
    bf = brute_force_streaming(*inp.args, **inp.kwargs)
    log_z = semi_crf_streaming_forward(*inp.args, use_triton=False, **inp.kwargs)
    best = semi_crf_streaming_forward(*inp.args, "max", use_triton=False, **inp.kwargs)
    torch.testing.assert_close(log_z, bf.log_partition, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(best, bf.viterbi_score, rtol=1e-10, atol=1e-10)


def test_forward_gradient_through_the_api(make_inputs) -> None:
    # NEG_INF entries are forbidden exactly and get zero gradient; the rest match gradcheck.
    inp = make_inputs(2, 6, 3, 3, proj=True, forbid=0.2)
    trans = inp.transition.clone()
    trans[0, 1] = NEG_INF
    leaves = [
        x.clone().requires_grad_()
        for x in (inp.cum_scores, trans, inp.duration_bias, inp.proj_start)
    ]

    def fn(cum, tr, bias, ps):
        return semi_crf_streaming_forward(
            cum, tr, bias, inp.lengths, 3, use_triton=False, proj_start=ps
        )

    assert torch.autograd.gradcheck(fn, leaves, eps=1e-6, atol=1e-7)
    fn(*leaves).sum().backward()
    assert leaves[1].grad[0, 1] == 0


def test_use_triton_true_without_a_usable_device_falls_back(make_inputs) -> None:
    inp = make_inputs(2, 7, 3, 3)
    if semicrf_kernels._shared.triton_support.triton_available_for(inp.cum_scores):
        pytest.skip("Triton can run here (interpreter mode); the fallback is not exercised")
    torch.testing.assert_close(
        semi_crf_streaming_forward(*inp.args, use_triton=True),
        semi_crf_streaming_forward(*inp.args, use_triton=False),
    )


def test_max_semiring_with_gradients_is_refused(make_inputs) -> None:
    inp = make_inputs(1, 4, 2, 2)
    cum = inp.cum_scores.clone().requires_grad_()
    with pytest.raises(ValueError, match=r"semiring.*semi_crf_streaming_viterbi"):
        semi_crf_streaming_forward(cum, *inp.args[1:], "max", use_triton=False)
    with torch.no_grad():
        semi_crf_streaming_forward(cum, *inp.args[1:], "max", use_triton=False)


@pytest.mark.parametrize("semiring", ["entropy", "Log", ""])
def test_unknown_semiring(make_inputs, semiring: str) -> None:
    inp = make_inputs(1, 4, 2, 2)
    with pytest.raises(ValueError, match=f"semiring: expected 'log' or 'max', got {semiring!r}"):
        semi_crf_streaming_forward(*inp.args, semiring)


def test_half_precision_inputs(make_inputs) -> None:
    inp = make_inputs(2, 9, 3, 3, proj=True).to(torch.float16)
    out = semi_crf_streaming_forward(*inp.args, use_triton=False, **inp.kwargs)
    assert out.dtype == torch.float32
    cum = inp.cum_scores.clone().requires_grad_()
    semi_crf_streaming_forward(cum, *inp.args[1:], use_triton=False, **inp.kwargs).sum().backward()
    assert cum.grad.dtype == torch.float16


def test_projections_and_validate_are_keyword_only() -> None:
    for fn in (semi_crf_streaming_forward, semi_crf_streaming_viterbi):
        params = inspect.signature(fn).parameters
        for name in ("proj_start", "proj_end", "validate"):
            assert params[name].kind is inspect.Parameter.KEYWORD_ONLY
    names = list(inspect.signature(semi_crf_streaming_forward).parameters)
    assert names[:8] == [
        "cum_scores",
        "transition",
        "duration_bias",
        "lengths",
        "K",
        "semiring",
        "use_triton",
        "num_warps",
    ]


def test_viterbi_api(make_inputs) -> None:
    inp = make_inputs(3, 6, 3, 3, proj=True, forbid=0.2)
    path = semi_crf_streaming_viterbi(*inp.args, use_triton=False, **inp.kwargs)
    assert isinstance(path, ViterbiPath)
    bf = brute_force_streaming(*inp.args, **inp.kwargs)
    torch.testing.assert_close(path.scores, bf.viterbi_score, rtol=1e-10, atol=1e-10)
    for b in range(3):
        n = int(path.num_segments[b])
        segs = [
            (int(s), int(s + d - 1), int(c))
            for s, d, c in zip(path.starts[b, :n], path.durations[b, :n], path.labels[b, :n])
        ]
        assert segs == bf.viterbi_segments[b]
    with pytest.raises(ValueError, match="lengths"):
        semi_crf_streaming_viterbi(inp.cum_scores, *inp.args[1:3], torch.tensor([7, 1, 1]), 3)


def test_bad_num_warps(make_inputs) -> None:
    inp = make_inputs(1, 4, 2, 2)
    with pytest.raises(ValueError, match="num_warps"):
        semi_crf_streaming_forward(*inp.args, num_warps=3)
    with pytest.raises(TypeError, match="num_warps"):
        semi_crf_streaming_viterbi(*inp.args, num_warps=4.0)


def test_package_exports() -> None:
    assert semicrf_kernels.__version__ == "0.1.0"
    assert semicrf_kernels.NEG_INF == -1e9
    assert semicrf_kernels.SemiCRFStreaming is SemiCRFStreaming
    for name in (
        "semi_crf_streaming_forward", "semi_crf_streaming_viterbi", "compute_edge_block_streaming",
        "SemiCRFStreaming", "HAS_TRITON", "NEG_INF", "ViterbiPath", "score_path_segments",
        "streaming_marginals_pytorch",
    ):  # fmt: skip
        assert name in semicrf_kernels.__all__
        assert getattr(semicrf_kernels, name) is getattr(streaming, name)
    if semicrf_kernels.HAS_TRITON:
        assert "SemiCRFStreamingTriton" in streaming.__all__
        assert "SemiCRFStreamingTriton" in semicrf_kernels.__all__
    with pytest.raises(AttributeError):
        _ = semicrf_kernels.no_such_name
    with pytest.raises(AttributeError):
        _ = streaming.no_such_name
