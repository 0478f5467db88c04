"""The vectorised PyTorch scan: against enumeration, the float64 reference, gradcheck, padding,
determinism, constraints and float32 precision at long T."""

from __future__ import annotations

import math

import pytest
import torch
from _tiny_cases import TINY

from semicrf_kernels import set_cpu_path
from semicrf_kernels.constants import NEG_INF
from semicrf_kernels.logpartition.autograd import SemiCRFStreaming
from semicrf_kernels.logpartition.pytorch import streaming_forward_pytorch
from semicrf_kernels.testing.brute_force import brute_force_streaming
from semicrf_kernels.testing.reference import reference_forward


@pytest.fixture(autouse=True)
def _pytorch_cpu_path():
    # SemiCRFStreaming runs the CPU path's choice; this file tests the PyTorch scans.
    set_cpu_path("pytorch")
    yield
    set_cpu_path(None)


TINY_IDS = [
    f"B{c[0]}T{c[1]}C{c[2]}K{c[3]}{'kcc' if c[4] else ''}{'proj' if c[5] else ''}" for c in TINY
]


def differentiable(inp):
    """Leaf copies of the five float inputs (None stays None)."""
    return [
        None if x is None else x.detach().clone().requires_grad_()
        for x in (inp.cum_scores, inp.transition, inp.duration_bias, inp.proj_start, inp.proj_end)
    ]


def log_z_and_grads(inp):
    cum, trans, bias, ps, pe = leaves = differentiable(inp)
    log_z = SemiCRFStreaming.apply(cum, trans, bias, inp.lengths, inp.K, ps, pe)
    log_z.sum().backward()
    return log_z.detach(), [None if x is None else x.grad for x in leaves]


@pytest.mark.parametrize(("B", "T", "C", "K", "per_duration", "proj", "forbid"), TINY, ids=TINY_IDS)
def test_matches_brute_force(make_inputs, B, T, C, K, per_duration, proj, forbid) -> None:
    inp = make_inputs(B, T, C, K, per_duration=per_duration, proj=proj, forbid=forbid)
    bf = brute_force_streaming(*inp.args, **inp.kwargs)
    tol = {"rtol": 1e-10, "atol": 1e-10}
    torch.testing.assert_close(
        streaming_forward_pytorch(*inp.args, "log", **inp.kwargs), bf.log_partition, **tol
    )
    torch.testing.assert_close(
        streaming_forward_pytorch(*inp.args, "max", **inp.kwargs), bf.viterbi_score, **tol
    )
    # (the marginals' part of the brute-force check: tests/marginals/test_marginals.py)


@pytest.mark.parametrize(
    ("B", "T", "C", "K", "per_duration", "proj"),
    [
        (3, 23, 5, 6, False, True),
        (2, 17, 3, 1, False, False),
        (3, 19, 3, 25, True, True),
        (1, 11, 7, 2, True, False),
    ],
)
def test_matches_float64_reference(make_inputs, B, T, C, K, per_duration, proj) -> None:
    inp = make_inputs(B, T, C, K, per_duration=per_duration, proj=proj, forbid=0.1)
    for semiring in ("log", "max"):
        torch.testing.assert_close(
            streaming_forward_pytorch(*inp.args, semiring, **inp.kwargs),
            reference_forward(*inp.args, semiring, **inp.kwargs),
            rtol=1e-10,
            atol=1e-10,
        )


@pytest.mark.parametrize(
    ("per_duration", "proj", "K", "lengths"),
    [
        (False, True, 3, [7, 4, 1]),
        (True, True, 4, [7, 5, 2]),
        (False, False, 9, [7, 6, 3]),
        (True, False, 1, [7, 3, 2]),
    ],
)
def test_gradcheck(make_inputs, per_duration, proj, K, lengths) -> None:
    inp = make_inputs(
        3, 7, 3, K, per_duration=per_duration, proj=proj, lengths=lengths, forbid=0.15
    )
    leaves = differentiable(inp)

    def fn(cum, trans, bias, ps, pe):
        return SemiCRFStreaming.apply(cum, trans, bias, inp.lengths, inp.K, ps, pe)

    assert torch.autograd.gradcheck(fn, leaves, eps=1e-6, atol=1e-7, rtol=1e-6)


def test_gradients_are_the_marginals(make_inputs) -> None:
    inp = make_inputs(2, 6, 3, 3, proj=True)
    _, grads = log_z_and_grads(inp)
    bf = brute_force_streaming(*inp.args, **inp.kwargs)
    # d logZ / d proj_start[t] summed over labels is P(segment starts at t).
    torch.testing.assert_close(grads[3].sum(-1), bf.boundary_marginals, rtol=1e-10, atol=1e-10)
    # d logZ / d emission[t, c] = sum_{t' > t} d logZ / d cum[t', c] is the position marginal.
    emission_grad = grads[0].flip(1).cumsum(1).flip(1)[:, 1:]
    torch.testing.assert_close(emission_grad, bf.position_marginals, rtol=1e-10, atol=1e-10)


def test_padding_invariance(make_inputs) -> None:
    inp = make_inputs(3, 9, 3, 4, per_duration=True, proj=True, lengths=[9, 5, 2])
    # Garbage at padding (allowed with validate=False) must not change anything.
    noisy = inp._replace(
        cum_scores=inp.cum_scores.clone(),
        proj_start=inp.proj_start.clone(),
        proj_end=inp.proj_end.clone(),
    )
    for b, L in enumerate([9, 5, 2]):
        noisy.cum_scores[b, L + 1 :] = torch.nan
        noisy.proj_start[b, L:] = 1e30
        noisy.proj_end[b, L:] = -torch.inf
    log_z, grads = log_z_and_grads(noisy)
    for b, L in enumerate([9, 5, 2]):
        alone = inp._replace(
            cum_scores=inp.cum_scores[b : b + 1, : L + 1],
            proj_start=inp.proj_start[b : b + 1, :L],
            proj_end=inp.proj_end[b : b + 1, :L],
            lengths=inp.lengths[b : b + 1],
        )
        z_alone, g_alone = log_z_and_grads(alone)
        torch.testing.assert_close(log_z[b : b + 1], z_alone, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(grads[0][b, : L + 1], g_alone[0][0], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(grads[3][b, :L], g_alone[3][0], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(grads[4][b, :L], g_alone[4][0], rtol=1e-10, atol=1e-12)
        assert torch.all(grads[0][b, L + 1 :] == 0)
        assert torch.all(grads[3][b, L:] == 0) and torch.all(grads[4][b, L:] == 0)
    # Shared parameters: the batch gradient is the sum of the sequences' gradients.
    total_t = sum(
        log_z_and_grads(
            inp._replace(
                cum_scores=inp.cum_scores[b : b + 1],
                proj_start=inp.proj_start[b : b + 1],
                proj_end=inp.proj_end[b : b + 1],
                lengths=inp.lengths[b : b + 1],
            )
        )[1][1]
        for b in range(3)
    )
    torch.testing.assert_close(grads[1], total_t, rtol=1e-10, atol=1e-12)


def test_grad_output_scales_each_sequence(make_inputs) -> None:
    inp = make_inputs(3, 6, 3, 3, proj=True)
    cum, trans, bias, ps, pe = differentiable(inp)
    weights = torch.tensor([2.0, -0.5, 0.0], dtype=torch.float64)
    (
        SemiCRFStreaming.apply(cum, trans, bias, inp.lengths, inp.K, ps, pe) * weights
    ).sum().backward()
    _, grads = log_z_and_grads(
        inp._replace(
            cum_scores=inp.cum_scores[:1],
            proj_start=inp.proj_start[:1],
            proj_end=inp.proj_end[:1],
            lengths=inp.lengths[:1],
        )
    )
    torch.testing.assert_close(cum.grad[0], 2.0 * grads[0][0])
    assert torch.all(cum.grad[2] == 0)


def test_backward_is_deterministic(make_inputs) -> None:
    inp = make_inputs(4, 40, 5, 6, per_duration=True, proj=True, forbid=0.1).to(torch.float32)
    _, first = log_z_and_grads(inp)
    _, second = log_z_and_grads(inp)
    for a, b in zip(first, second):
        assert torch.equal(a, b)


def test_everything_forbidden_is_minus_inf_without_nan(make_inputs) -> None:
    inp = make_inputs(3, 6, 3, 3, proj=True, lengths=[6, 4, 2])
    trans = inp.transition.clone()
    trans[:, :] = -torch.inf
    dead = inp._replace(transition=trans)
    log_z, grads = log_z_and_grads(dead)
    assert torch.all(log_z == -math.inf)
    for g in grads:
        assert torch.all(g == 0)
    assert torch.all(streaming_forward_pytorch(*dead.args, "max", **dead.kwargs) == -math.inf)


def test_dead_sequence_does_not_disturb_the_others(make_inputs) -> None:
    # Forbidding duration 1 kills only the sequence of length 1.
    inp = make_inputs(2, 6, 3, 3, lengths=[6, 1])
    bias = inp.duration_bias.clone()
    bias[0] = NEG_INF
    inp = inp._replace(duration_bias=bias)
    log_z, grads = log_z_and_grads(inp)
    assert log_z[1] == -math.inf and torch.isfinite(log_z[0])
    z0, g0 = log_z_and_grads(inp._replace(cum_scores=inp.cum_scores[:1], lengths=inp.lengths[:1]))
    torch.testing.assert_close(log_z[:1], z0)
    for g in grads[:3]:
        assert not torch.isnan(g).any()
    torch.testing.assert_close(grads[1], g0[1])
    torch.testing.assert_close(grads[2], g0[2])
    assert torch.all(grads[0][1] == 0)
    assert torch.all(grads[2][0] == 0)  # the forbidden duration gets no gradient


def test_half_precision_inputs_accumulate_in_float32(make_inputs) -> None:
    inp = make_inputs(2, 8, 3, 3)
    half = inp.to(torch.bfloat16)
    out = streaming_forward_pytorch(*half.args)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, streaming_forward_pytorch(*half.to(torch.float32).args))
    cum = half.cum_scores.clone().requires_grad_()
    SemiCRFStreaming.apply(
        cum, half.transition, half.duration_bias, half.lengths, 3, None, None
    ).sum().backward()
    assert cum.grad.dtype == torch.bfloat16


def test_float32_precision_at_long_sequences(make_inputs) -> None:
    # Zero-centred emissions at T = 20,000: float32 within 1e-5 (log Z) and 1e-4 (gradients,
    # max-norm relative) of float64 on the same input values.
    T = 20_000
    inp64 = (
        make_inputs(2, T, 3, 4, proj=True, lengths=[T, T - 13]).to(torch.float32).to(torch.float64)
    )
    z64, g64 = log_z_and_grads(inp64)
    z32, g32 = log_z_and_grads(inp64.to(torch.float32))
    assert z32.dtype == torch.float32
    assert ((z32.double() - z64).abs() / z64.abs()).max() < 1e-5
    for a, b in zip(g32, g64):
        assert a.dtype == torch.float32
        assert (a.double() - b).abs().max() / b.abs().max() < 1e-4
