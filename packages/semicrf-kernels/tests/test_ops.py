"""The custom operators of the ``op.py`` of every op folder: schemas, fake implementations, autograd,
``torch.compile(fullgraph=True)``, and that the public API through them computes exactly what the
``autograd.Function`` paths compute.

The CPU runs the PyTorch path here (no ``TRITON_INTERPRET``); ``test_triton_properties.py``
checks the Triton path of the same operators under the interpreter. ``torch.compile`` uses the
``aot_eager`` backend: it runs Dynamo, the fake implementations and AOT autograd (everything the
operators take part in) without inductor's C++ build, which takes minutes on the CI's CPUs.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from semicrf_kernels import (
    NEG_INF,
    SemiCRFStreaming,
    cumulative_scores,
    semi_crf_streaming_forward,
    semi_crf_streaming_viterbi,
)
from semicrf_kernels._shared.inputs import prepare_inputs
from semicrf_kernels._shared.op_support import uses_triton
from semicrf_kernels.testing.brute_force import brute_force_streaming

OPS = torch.ops.semicrf_kernels
FLOATS = ("cum_scores", "transition", "duration_bias", "proj_start", "proj_end")
needs_pytorch_path = pytest.mark.skipif(
    uses_triton(torch.zeros(1), True),
    reason="TRITON_INTERPRET is set: the CPU runs the Triton path (test_triton_properties.py)",
)
pytestmark = needs_pytorch_path


def _leaves(inp, dtype=None):
    """Fresh leaf copies of the float inputs, keyed by name (None stays None)."""
    out = {}
    for name in FLOATS:
        x = getattr(inp, name)
        if x is not None:
            x = x.detach().clone().to(dtype or x.dtype).requires_grad_()
        out[name] = x
    return out


def _grads(value: torch.Tensor, leaves: dict, weights: torch.Tensor) -> dict:
    present = {k: v for k, v in leaves.items() if v is not None}
    grads = torch.autograd.grad((value * weights).sum(), list(present.values()))
    return dict(zip(present, grads))


# ----------------------------------------------------------------------------- registration
def test_the_three_operators_are_registered_with_their_schemas() -> None:
    forward = str(OPS.streaming_forward.default._schema)
    assert "Tensor? proj_start" in forward and "str semiring" in forward
    assert "bool with_backward=False" in forward
    assert forward.endswith("-> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)")
    assert "Tensor grad_output" in str(OPS.streaming_backward.default._schema)
    viterbi = str(OPS.streaming_viterbi.default._schema)
    assert viterbi.endswith("-> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)")


@pytest.mark.parametrize("per_duration", [False, True], ids=["CC", "KCC"])
def test_opcheck_forward_with_autograd(make_inputs, per_duration: bool) -> None:
    # opcheck compares the fake implementation with the real outputs (shapes, dtypes, strides),
    # checks the schema, the autograd registration and AOT dispatch with dynamic shapes.
    inp = make_inputs(2, 5, 3, 3, per_duration=per_duration, proj=True, forbid=0.2)
    prepared = prepare_inputs(*inp.args, **inp.kwargs)
    args = [
        x.requires_grad_() if torch.is_tensor(x) and x.is_floating_point() else x for x in prepared
    ]
    tests = ("test_schema", "test_autograd_registration", "test_faketensor")
    if per_duration:
        tests += ("test_aot_dispatch_dynamic",)  # slow (it compiles); once is enough
    torch.library.opcheck(OPS.streaming_forward.default, (*args, "log", True, 4), test_utils=tests)


@pytest.mark.parametrize("per_duration", [False, True], ids=["CC", "KCC"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_opcheck_backward_and_viterbi(make_inputs, per_duration: bool, dtype) -> None:
    inp = make_inputs(3, 6, 4, 2, per_duration=per_duration, proj=per_duration).to(dtype)
    prepared = prepare_inputs(*inp.args, **inp.kwargs)
    state = OPS.streaming_forward.default(*prepared, "log", True, 4)
    grad_output = torch.rand(3, dtype=dtype)
    tests = ("test_schema", "test_faketensor")
    torch.library.opcheck(
        OPS.streaming_backward.default,
        (grad_output, *prepared, *state[1:5], True, 4, *state[5:]),
        test_utils=tests,
    )
    torch.library.opcheck(OPS.streaming_viterbi.default, (*prepared, True, 4), test_utils=tests)


# ----------------------------------------------------------------------------- eager equality
@pytest.mark.parametrize(
    "per_duration, proj, forbid", [(False, False, 0.0), (False, True, 0.3), (True, True, 0.3)]
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_api_equals_the_autograd_function_bitwise(
    make_inputs, per_duration: bool, proj: bool, forbid: float, dtype
) -> None:
    """The public function and the ``Function.apply`` interface (``SemiCRFStreaming``) agree bit
    for bit: both must stay on the one autograd route, the custom operator."""
    inp = make_inputs(3, 7, 3, 3, per_duration=per_duration, proj=proj, forbid=forbid).to(dtype)
    weights = torch.rand(3, dtype=dtype)
    a, b = _leaves(inp), _leaves(inp)
    via_op = semi_crf_streaming_forward(
        a["cum_scores"], a["transition"], a["duration_bias"], inp.lengths, inp.K,
        proj_start=a["proj_start"], proj_end=a["proj_end"],
    )  # fmt: skip
    via_function = SemiCRFStreaming.apply(
        b["cum_scores"], b["transition"], b["duration_bias"], inp.lengths, inp.K,
        b["proj_start"], b["proj_end"],
    )  # fmt: skip
    assert via_op.dtype == dtype
    assert torch.equal(via_op, via_function)
    grads_op, grads_function = _grads(via_op, a, weights), _grads(via_function, b, weights)
    for name in grads_op:
        assert grads_op[name].dtype == dtype
        assert torch.equal(grads_op[name], grads_function[name]), name


def test_values_and_gradients_match_enumeration_through_the_op(make_inputs) -> None:
    # d log Z / d emission[t, c] is P(position t has label c): an independent check of the
    # operator's backward against brute-force marginals.
    inp = make_inputs(3, 6, 3, 4, per_duration=True, proj=True, forbid=0.2)
    emissions = (inp.cum_scores[:, 1:] - inp.cum_scores[:, :-1]).clone().requires_grad_()
    cum = torch.nn.functional.pad(emissions.cumsum(dim=1), (0, 0, 1, 0))
    log_z = semi_crf_streaming_forward(cum, *inp.args[1:], **inp.kwargs)
    (grad,) = torch.autograd.grad(log_z.sum(), emissions)
    bf = brute_force_streaming(*inp.args, **inp.kwargs)
    torch.testing.assert_close(log_z, bf.log_partition, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(grad, bf.position_marginals, rtol=1e-9, atol=1e-10)


def test_mixed_input_dtypes_get_gradients_in_their_own_dtype(make_inputs) -> None:
    inp = make_inputs(2, 6, 3, 3, proj=True)
    cum = inp.cum_scores.float().requires_grad_()
    trans = inp.transition.double().requires_grad_()
    bias = inp.duration_bias.to(torch.bfloat16).requires_grad_()
    ps = inp.proj_start.half().requires_grad_()
    log_z = semi_crf_streaming_forward(cum, trans, bias, inp.lengths, inp.K, proj_start=ps)
    assert log_z.dtype == torch.float32
    log_z.sum().backward()
    for x in (cum, trans, bias, ps):
        assert x.grad.dtype == x.dtype and bool(torch.isfinite(x.grad).all())


def test_impossible_sequences_give_minus_inf_and_zero_gradients(make_inputs) -> None:
    inp = make_inputs(3, 5, 3, 2, proj=True)
    bias = inp.duration_bias.clone()
    bias[:, :] = -torch.inf  # no duration allowed at all
    bias[0, 1] = 0.5  # ...except duration 1 with label 1
    trans = inp.transition.clone()
    trans[1, 1] = NEG_INF  # and label 1 cannot follow itself: only L = 1 is possible
    lengths = torch.tensor([1, 4, 5])
    leaves = _leaves(inp._replace(transition=trans, duration_bias=bias))
    log_z = semi_crf_streaming_forward(
        leaves["cum_scores"], leaves["transition"], leaves["duration_bias"], lengths, inp.K,
        proj_start=leaves["proj_start"], proj_end=leaves["proj_end"],
    )  # fmt: skip
    assert bool(torch.isfinite(log_z[0])) and log_z[1:].eq(-torch.inf).all()
    grads = _grads(log_z, leaves, torch.ones(3, dtype=log_z.dtype))
    for name, g in grads.items():
        assert not bool(torch.isnan(g).any()), name
    for name in ("cum_scores", "proj_start", "proj_end"):
        assert bool((grads[name][1:] == 0).all()), name
    path = semi_crf_streaming_viterbi(*inp.args[:1], trans, bias, lengths, inp.K, **inp.kwargs)
    assert path.num_segments.tolist() == [1, 0, 0]
    assert path.scores[1:].eq(-torch.inf).all()


def test_max_semiring_through_the_operator_has_no_gradient(make_inputs) -> None:
    inp = make_inputs(2, 5, 3, 3)
    prepared = prepare_inputs(*inp.args)
    cum = prepared.cum_scores.clone().requires_grad_()
    out = OPS.streaming_forward.default(cum, *prepared[1:], "max", True, 4)
    with pytest.raises(RuntimeError, match="semiring 'max' has no gradient"):
        out[0].sum().backward()
    best = semi_crf_streaming_forward(*inp.args, "max")
    torch.testing.assert_close(out[0].detach(), best, rtol=0, atol=0)


def test_only_the_partition_output_is_differentiable(make_inputs) -> None:
    # The saved state is marked non-differentiable: backward never receives (or allocates)
    # gradients the size of alpha for it.
    inp = make_inputs(2, 6, 3, 3)
    prepared = prepare_inputs(*inp.args)
    cum = prepared.cum_scores.clone().requires_grad_()
    out = OPS.streaming_forward.default(cum, *prepared[1:], "log", True, 4)
    assert [x.requires_grad for x in out] == [True] + [False] * 7
    (grad,) = torch.autograd.grad(out[0].sum(), cum)
    expected = semi_crf_streaming_forward(cum, *inp.args[1:])
    assert torch.equal(grad, torch.autograd.grad(expected.sum(), cum)[0])


# ----------------------------------------------------------------------------- layouts
def test_non_contiguous_and_expanded_inputs_equal_contiguous_ones(make_inputs) -> None:
    inp = make_inputs(3, 6, 5, 3, per_duration=True, proj=True)
    # The same values in other layouts: transposed storage, stride-2 slices, expanded rows.
    cum_t = inp.cum_scores.transpose(1, 2).contiguous().transpose(1, 2)
    trans_t = inp.transition.transpose(1, 2).contiguous().transpose(1, 2)
    bias_row = inp.duration_bias[:1]
    bias_expanded = bias_row.expand(inp.K, -1)
    ps_wide = torch.stack([inp.proj_start, torch.full_like(inp.proj_start, 7.0)], dim=-1)
    ps_strided = ps_wide[..., 0]
    lengths_strided = torch.stack([inp.lengths, inp.lengths * 0], dim=1)[:, 0]
    assert not cum_t.is_contiguous() and not ps_strided.is_contiguous()
    assert not lengths_strided.is_contiguous() and bias_expanded.stride(0) == 0

    def run(cum, trans, bias, lengths, ps):
        cum = cum.detach().requires_grad_()
        log_z = semi_crf_streaming_forward(
            cum, trans, bias, lengths, inp.K, proj_start=ps, proj_end=inp.proj_end
        )
        (grad,) = torch.autograd.grad(log_z.sum(), cum)
        path = semi_crf_streaming_viterbi(
            cum.detach(), trans, bias, lengths, inp.K, proj_start=ps, proj_end=inp.proj_end
        )
        return log_z, grad, path

    strided = run(cum_t, trans_t, bias_expanded, lengths_strided, ps_strided)
    dense = run(
        inp.cum_scores, inp.transition, bias_expanded.contiguous(), inp.lengths, inp.proj_start
    )
    assert torch.equal(strided[0], dense[0]) and torch.equal(strided[1], dense[1])
    for a, b in zip(strided[2], dense[2]):
        assert torch.equal(a, b)


def test_expanded_batch_gives_identical_sequences(make_inputs) -> None:
    inp = make_inputs(1, 6, 3, 4)
    B = 4
    cum = inp.cum_scores.expand(B, -1, -1)
    lengths = inp.lengths.expand(B)
    log_z = semi_crf_streaming_forward(cum, inp.transition, inp.duration_bias, lengths, inp.K)
    single = semi_crf_streaming_forward(*inp.args)
    assert torch.equal(log_z, single.expand(B))


# ----------------------------------------------------------------------------- torch.compile
def _compiled(fn):
    return torch.compile(fn, fullgraph=True, backend="aot_eager")


def test_compiled_forward_and_gradients_equal_eager(make_inputs) -> None:
    torch._dynamo.reset()

    def loss(cum, trans, bias, ps, lengths):
        log_z = semi_crf_streaming_forward(cum, trans, bias, lengths, 3, proj_start=ps)
        return (log_z * torch.arange(1, log_z.shape[0] + 1)).sum()

    compiled = _compiled(loss)
    # A second shape exercises the fake implementations with symbolic sizes (recompiled
    # dynamic after the first shape changes).
    for B, T, C in ((3, 7, 3), (2, 9, 5), (4, 5, 3)):
        inp = make_inputs(B, T, C, 3, proj=True, forbid=0.2).to(torch.float32)
        args = [x.clone().requires_grad_() for x in (inp.cum_scores, inp.transition,
                                                      inp.duration_bias, inp.proj_start)]  # fmt: skip
        eager_args = [x.detach().clone().requires_grad_() for x in args]
        value = compiled(*args, inp.lengths)
        expected = loss(*eager_args, inp.lengths)
        assert torch.equal(value, expected)
        grads = torch.autograd.grad(value, args)
        expected_grads = torch.autograd.grad(expected, eager_args)
        for g, e in zip(grads, expected_grads):
            assert torch.equal(g, e)


def test_compiled_viterbi_and_max_score_equal_eager(make_inputs) -> None:
    torch._dynamo.reset()

    def decode(cum, trans, bias, lengths):
        path = semi_crf_streaming_viterbi(cum, trans, bias, lengths, 4)
        best = semi_crf_streaming_forward(cum, trans, bias, lengths, 4, "max")
        return path.scores, path.starts, path.labels, path.segment_scores, best

    inp = make_inputs(3, 8, 3, 4, per_duration=True, forbid=0.2)
    with torch.no_grad():
        got = _compiled(decode)(*inp.args[:4])
        expected = decode(*inp.args[:4])
    for a, b in zip(got, expected):
        assert torch.equal(a, b)


def test_autograd_function_without_projection_arguments(make_inputs) -> None:
    inp = make_inputs(2, 5, 3, 3)
    cum = inp.cum_scores.clone().requires_grad_()
    SemiCRFStreaming.apply(
        cum, inp.transition, inp.duration_bias, inp.lengths, inp.K
    ).sum().backward()
    assert cum.grad is not None


# ----------------------------------------------------------------------------- cumulative scores
def _prefix_sums_by_loop(scores: torch.Tensor) -> torch.Tensor:
    """Independent reference: running float64 sums with an explicit loop over positions."""
    B, T, C = scores.shape
    out = torch.zeros(B, T + 1, C, dtype=torch.float64)
    for t in range(T):
        out[:, t + 1] = out[:, t] + scores[:, t].double()
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize(("B", "T", "C"), [(1, 1, 1), (3, 7, 5), (2, 13, 3)])
def test_cumulative_scores_values_and_gradient(B: int, T: int, C: int, dtype) -> None:
    gen = torch.Generator().manual_seed(1000 * T + C)
    scores = torch.randn(B, T, C, generator=gen).to(dtype).requires_grad_()
    cum = cumulative_scores(scores)
    assert cum.shape == (B, T + 1, C) and cum.dtype == torch.float64
    # Eager results are bitwise those of the float64 torch.cumsum the head used before the op.
    expected = torch.nn.functional.pad(torch.cumsum(scores.detach().double(), 1), (0, 0, 1, 0))
    assert torch.equal(cum, expected)
    # A loop adds in the same order as a sequential scan but cumsum may pair differently.
    torch.testing.assert_close(cum, _prefix_sums_by_loop(scores.detach()), rtol=1e-14, atol=1e-14)
    grad_cum = torch.randn(B, T + 1, C, generator=gen, dtype=torch.float64)
    (grad,) = torch.autograd.grad(cum, scores, grad_cum)
    assert grad.dtype == dtype
    # d cum[t'] / d scores[t] = 1 for t' > t: the suffix sum of grad_cum over rows t+1..T.
    suffix = torch.stack([grad_cum[:, t + 1 :].sum(dim=1) for t in range(T)], dim=1)
    torch.testing.assert_close(grad, suffix.to(dtype), rtol=1e-12, atol=1e-12)


def test_cumulative_scores_gradcheck_and_gradgradcheck() -> None:
    gen = torch.Generator().manual_seed(7)
    scores = torch.randn(2, 6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(cumulative_scores, (scores,))
    assert torch.autograd.gradgradcheck(cumulative_scores, (scores,))


def test_cumulative_scores_non_contiguous_input() -> None:
    gen = torch.Generator().manual_seed(8)
    base = torch.randn(3, 5, 9, generator=gen)
    scores = base.transpose(0, 2)[:, :, ::2]  # (9, 5, 2), strided
    assert not scores.is_contiguous()
    assert torch.equal(cumulative_scores(scores), cumulative_scores(scores.contiguous()))


@pytest.mark.skipif(not hasattr(torch.library, "opcheck"), reason="torch.library.opcheck absent")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_opcheck_cumulative_scores(dtype) -> None:
    gen = torch.Generator().manual_seed(9)
    scores = torch.randn(2, 5, 3, generator=gen).to(dtype).requires_grad_()
    tests = ("test_schema", "test_autograd_registration", "test_faketensor")
    torch.library.opcheck(OPS.cumulative_scores.default, (scores,), test_utils=tests)
    grad_cum = torch.randn(2, 6, 3, generator=gen, dtype=torch.float64).requires_grad_()
    torch.library.opcheck(
        OPS.cumulative_scores_backward.default, (grad_cum, dtype), test_utils=tests
    )


def test_cumulative_scores_compiles_without_graph_break() -> None:
    def loss(scores: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return (cumulative_scores(scores) * weights).sum()

    compiled = _compiled(loss)
    gen = torch.Generator().manual_seed(10)
    for B, T, C in [(2, 7, 3), (3, 11, 5)]:  # the second shape runs the fake symbolically
        weights = torch.randn(B, T + 1, C, generator=gen, dtype=torch.float64)
        scores = torch.randn(B, T, C, generator=gen).requires_grad_()
        value = compiled(scores, weights)
        (grad,) = torch.autograd.grad(value, scores)
        ref_scores = scores.detach().clone().requires_grad_()
        ref = loss(ref_scores, weights)
        (ref_grad,) = torch.autograd.grad(ref, ref_scores)
        assert torch.equal(value, ref) and torch.equal(grad, ref_grad)


@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [
        ([[1.0]], TypeError, "scores: expected a torch.Tensor"),
        (torch.zeros(2, 3), ValueError, r"scores: expected shape \(batch, T, C\), got \(2, 3\)"),
        (torch.zeros(2, 3, 4, dtype=torch.int64), ValueError, "floating dtype, got torch.int64"),
    ],
)
def test_cumulative_scores_rejects_bad_input(bad, error, match: str) -> None:
    with pytest.raises(error, match=match):
        cumulative_scores(bad)


def test_eager_calls_do_not_import_dynamo() -> None:
    # The operators are registered with torch.library.define/impl (not custom_op, whose wrapper
    # imports torch._dynamo, seconds, on the first call): eager use must not pay for it.
    code = (
        "import sys, torch, semicrf_kernels as sk\n"
        "cum = sk.cumulative_scores(torch.randn(2, 9, 3, requires_grad=True))\n"
        "args = (torch.randn(3, 3), torch.randn(2, 3), torch.tensor([9, 4]), 2)\n"
        "sk.semi_crf_streaming_forward(cum, *args).sum().backward()\n"
        "sk.semi_crf_streaming_viterbi(cum.detach(), *args)\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert out.stdout.strip() == "False"
