"""Tests of the Triton backward (``logpartition/triton.py``, ``triton_grad.py``, ``autograd.py``).

Meant to run on the CPU under the Triton interpreter: ``TRITON_INTERPRET=1 pytest ...`` (the
variable must be set before ``semicrf_kernels`` is imported). On a CUDA machine the same tests
run on the GPU at larger sizes. Skipped when neither is available.
"""

from __future__ import annotations

import math

import pytest
import torch
from _triton_env import DEVICE, ON_CUDA, TRITON_MARKS

from semicrf_kernels._shared.inputs import prepare_inputs
from semicrf_kernels._shared.triton_support import HAS_TRITON
from semicrf_kernels.logpartition.autograd import SemiCRFStreaming
from semicrf_kernels.testing.brute_force import brute_force_streaming

pytestmark = TRITON_MARKS

if HAS_TRITON:
    from semicrf_kernels.logpartition.autograd import SemiCRFStreamingTriton
    from semicrf_kernels.logpartition.triton import (
        interpolate_drift,
        launch_streaming_triton_backward,
        measure_drift,
        run_backward_scan,
    )
    from semicrf_kernels.logpartition.triton_grad import _batch_sum_kernel, _drift_lz_kernel
    from semicrf_kernels.logpartition.triton_scan import launch_streaming_triton_kernel

NAMES = ("cum_scores", "transition", "duration_bias", "proj_start", "proj_end")

#: (B, T, C, K, lengths, per_duration, proj, forbid)
CASES = [
    (3, 9, 3, 3, None, False, True, 0.0),
    (1, 7, 1, 1, None, False, False, 0.0),
    (2, 10, 5, 2, [10, 3], False, True, 0.3),
    (2, 6, 3, 9, [6, 1], False, True, 0.0),
    (2, 9, 3, 3, [9, 5], True, True, 0.2),
    (1, 6, 2, 8, None, True, False, 0.0),
    (2, 1, 3, 2, None, False, True, 0.0),
]
if ON_CUDA:  # fewer small cases (each is a compilation), realistic sizes added
    CASES = [CASES[0], CASES[4], CASES[6]]
    CASES += [
        (4, 300, 24, 32, None, False, True, 0.1),
        (2, 200, 130, 7, None, False, True, 0.0),
        (2, 150, 24, 300, None, False, False, 0.0),
        (2, 120, 7, 20, None, True, True, 0.1),
    ]


@pytest.fixture(autouse=True)
def _debug_fill(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMICRF_KERNELS_DEBUG_FILL", "1")


def _leaves(inp, device: str = DEVICE) -> list[torch.Tensor | None]:
    floats = (inp.cum_scores, inp.transition, inp.duration_bias, inp.proj_start, inp.proj_end)
    return [
        None if x is None else x.detach().to(device).clone().requires_grad_(True) for x in floats
    ]


def _grads(fn, inp, weights: torch.Tensor, device: str = DEVICE):
    """log Z and the gradients of sum(weights * log Z) wrt the five float inputs."""
    x = _leaves(inp, device)
    z = fn(x[0], x[1], x[2], inp.lengths.to(device), inp.K, x[3], x[4])
    (z * weights.to(device, z.dtype)).sum().backward()
    return z.detach().cpu(), [None if t is None else t.grad.cpu() for t in x]


def _triton_fn(*args):
    return SemiCRFStreamingTriton.apply(*args, 4)


def _torch_fn(*args):
    return SemiCRFStreaming.apply(*args)


def _max_rel(a: torch.Tensor, b: torch.Tensor) -> float:
    scale = b.abs().max().clamp(min=1e-30)
    return float((a.double() - b.double()).abs().max() / scale)


@pytest.mark.parametrize("case", CASES)
def test_gradients_match_pytorch_path_float64(make_inputs, rng, case):
    B, T, C, K, lengths, per_duration, proj, forbid = case
    if per_duration and ON_CUDA and C > 64:
        pytest.skip("slow path")
    inp = make_inputs(
        B, T, C, K, per_duration=per_duration, proj=proj, lengths=lengths, forbid=forbid
    )
    w = torch.randn(B, generator=rng, dtype=torch.float64)
    z, grads = _grads(_triton_fn, inp, w)
    z_ref, grads_ref = _grads(_torch_fn, inp, w, "cpu")
    torch.testing.assert_close(z, z_ref, rtol=1e-10, atol=1e-10)
    for name, g, g_ref in zip(NAMES, grads, grads_ref):
        if g_ref is None:
            assert g is None, name
            continue
        assert g.dtype == torch.float64 and not torch.isnan(g).any(), name
        torch.testing.assert_close(g, g_ref, rtol=1e-9, atol=1e-10, msg=name)


@pytest.mark.parametrize("case", CASES[3:] if ON_CUDA else [CASES[0], CASES[2], CASES[4], CASES[6]])
def test_float32_gradients_within_1e4_of_float64(make_inputs, rng, case):
    B, T, C, K, lengths, per_duration, proj, forbid = case
    inp32 = make_inputs(
        B, T, C, K, per_duration=per_duration, proj=proj, lengths=lengths, forbid=forbid
    ).to(torch.float32)
    w = torch.rand(B, generator=rng, dtype=torch.float64) + 0.5
    z, grads = _grads(_triton_fn, inp32, w)
    z_ref, grads_ref = _grads(_torch_fn, inp32.to(torch.float64), w, "cpu")
    assert z.dtype == torch.float32
    torch.testing.assert_close(z.double(), z_ref, rtol=1e-5, atol=1e-5)
    for name, g, g_ref in zip(NAMES, grads, grads_ref):
        if g_ref is not None:
            assert g.dtype == torch.float32, name
            assert _max_rel(g, g_ref) < 1e-4, name


@pytest.mark.parametrize("per_duration", [False, True])
def test_gradcheck(make_inputs, per_duration):
    inp = make_inputs(2, 4, 2, 2, per_duration=per_duration, proj=True, lengths=[4, 3])
    x = _leaves(inp)
    lengths = inp.lengths.to(DEVICE)

    def f(cum, trans, db, ps, pe):
        return SemiCRFStreamingTriton.apply(cum, trans, db, lengths, inp.K, ps, pe, 4)

    assert torch.autograd.gradcheck(f, tuple(x), eps=1e-6, atol=1e-6, fast_mode=True)


@pytest.mark.parametrize("per_duration", [False, True])
def test_marginals_match_brute_force(make_inputs, per_duration):
    # dlogZ/dproj_start summed over labels = P(a segment starts at t); the reverse cumulative
    # sum of dlogZ/dcum gives P(position t has label c).
    inp = make_inputs(2, 6, 2, 3, per_duration=per_duration, proj=True, lengths=[6, 4])
    truth = brute_force_streaming(*inp.args, **inp.kwargs)
    _, grads = _grads(_triton_fn, inp, torch.ones(2, dtype=torch.float64))
    gcum, _, _, gps, _ = grads
    torch.testing.assert_close(gps.sum(-1), truth.boundary_marginals, rtol=1e-10, atol=1e-10)
    position = gcum[:, 1:].flip(1).cumsum(1).flip(1)
    torch.testing.assert_close(position, truth.position_marginals, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("per_duration", [False, True])
def test_bitwise_deterministic(make_inputs, rng, per_duration):
    inp = make_inputs(3, 11, 4, 3, per_duration=per_duration, proj=True).to(torch.float32)
    w = torch.randn(3, generator=rng, dtype=torch.float64)
    _, first = _grads(_triton_fn, inp, w)
    _, second = _grads(_triton_fn, inp, w)
    for name, a, b in zip(NAMES, first, second):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("per_duration", [False, True])
def test_padding_gets_zero_gradient_and_is_never_read(make_inputs, rng, per_duration):
    inp = make_inputs(3, 10, 3, 4, per_duration=per_duration, proj=True, lengths=[10, 4, 7])
    cum, ps, pe = inp.cum_scores.clone(), inp.proj_start.clone(), inp.proj_end.clone()
    for b, L in enumerate(inp.lengths.tolist()):
        cum[b, L + 1 :] = math.nan
        ps[b, L:] = math.nan
        pe[b, L:] = math.nan
    w = torch.randn(3, generator=rng, dtype=torch.float64)
    _, grads = _grads(_triton_fn, inp._replace(cum_scores=cum, proj_start=ps, proj_end=pe), w)
    gcum, gtrans, gdb, gps, gpe = grads
    totals = [torch.zeros_like(gtrans), torch.zeros_like(gdb)]
    for b, L in enumerate(inp.lengths.tolist()):
        assert (gcum[b, L + 1 :] == 0).all() and (gps[b, L:] == 0).all() and (gpe[b, L:] == 0).all()
        alone = inp._replace(
            cum_scores=inp.cum_scores[b : b + 1, : L + 1],
            proj_start=inp.proj_start[b : b + 1, :L],
            proj_end=inp.proj_end[b : b + 1, :L],
            lengths=inp.lengths[b : b + 1],
        )
        _, g1 = _grads(_triton_fn, alone, w[b : b + 1])
        torch.testing.assert_close(gcum[b, : L + 1], g1[0][0], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(gps[b, :L], g1[3][0], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(gpe[b, :L], g1[4][0], rtol=1e-10, atol=1e-12)
        totals[0] += g1[1]
        totals[1] += g1[2]
    torch.testing.assert_close(gtrans, totals[0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gdb, totals[1], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("per_duration", [False, True])
def test_sequence_without_segmentation_gets_zero_gradient(make_inputs, rng, per_duration):
    # Only even durations: the odd-length sequence has no segmentation (log Z = -inf).
    inp = make_inputs(2, 8, 3, 4, per_duration=per_duration, proj=True, lengths=[8, 5])
    db = inp.duration_bias.clone()
    db[0::2] = -math.inf
    inp = inp._replace(duration_bias=db)
    z, grads = _grads(_triton_fn, inp, torch.ones(2, dtype=torch.float64))
    assert torch.isfinite(z[0]) and torch.isneginf(z[1])
    for name, g in zip(NAMES, grads):
        assert not torch.isnan(g).any(), name
    assert (grads[0][1] == 0).all() and (grads[3][1] == 0).all() and (grads[4][1] == 0).all()
    alone = inp._replace(
        cum_scores=inp.cum_scores[:1],
        proj_start=inp.proj_start[:1],
        proj_end=inp.proj_end[:1],
        lengths=inp.lengths[:1],
    )
    _, g1 = _grads(_triton_fn, alone, torch.ones(1, dtype=torch.float64))
    torch.testing.assert_close(grads[1], g1[1], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grads[2], g1[2], rtol=1e-10, atol=1e-12)
    # whatever the upstream gradient of the impossible sequence (here inf), it contributes zeros
    _, grads_inf = _grads(_triton_fn, inp, torch.tensor([1.0, math.inf], dtype=torch.float64))
    for name, g, want in zip(NAMES, grads_inf, grads):
        assert torch.equal(g, want), name


@pytest.mark.parametrize("per_duration", [False, True])
def test_drift_measurement_is_exact_in_float64(make_inputs, per_duration, monkeypatch):
    # The mass through every checkpoint equals Z exactly, so in float64 the measured drift is
    # rounding only. Spacing 1 makes every position a checkpoint.
    from semicrf_kernels.logpartition import triton as triton_backward

    monkeypatch.setattr(triton_backward, "checkpoint_spacing", lambda K: 1)
    inp = make_inputs(
        3, 9, 3, 4, per_duration=per_duration, proj=True, lengths=[9, 4, 1], forbid=0.2
    )
    dev = [x.to(DEVICE) if isinstance(x, torch.Tensor) else x for x in inp]
    prepared = prepare_inputs(*dev)
    state = launch_streaming_triton_kernel(*prepared[:5], "log", *prepared[5:])
    rows = run_backward_scan(prepared, state, 4)
    corr = measure_drift(prepared, state, rows, 4).cpu()
    assert corr.shape == (3, 9)
    assert corr.abs().max() < 1e-12


def test_interpolate_drift_is_linear_between_checkpoints():
    corr = torch.tensor([[0.0, 1.0, 3.0, -1.0], [2.0, 4.0, 0.0, 0.0]], dtype=torch.float64)
    lengths = torch.tensor([10, 5])
    out = interpolate_drift(corr, lengths, T=10, spacing=4)
    # sequence 0: checkpoints at 0, 4, 8, 9 (= L - 1)
    expected0 = [0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, -1.0, -1.0]
    # sequence 1: checkpoints at 0, 4 (= L - 1); positions past L - 1 take the last value
    expected1 = [2.0, 2.5, 3.0, 3.5, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    torch.testing.assert_close(out, torch.tensor([expected0, expected1], dtype=torch.float64))


@pytest.mark.parametrize("T, spacing", [(10, 4), (37, 8), (5, 128)])
def test_drift_kernel_equals_interpolate_drift(rng, T, spacing):
    # the one-launch drift correction against its PyTorch reference, with a dead sequence
    import triton

    lengths = torch.tensor([T, max(1, T // 3), 1, T])
    J = (T - 1 + spacing - 1) // spacing + 1
    corr = torch.randn(4, J, generator=rng, dtype=torch.float64)
    log_z = torch.randn(4, generator=rng, dtype=torch.float64)
    log_z[3] = -torch.inf
    want = log_z[:, None] + interpolate_drift(corr, lengths, T, spacing)
    want[3] = torch.inf
    got = torch.full((4, T + 1), torch.nan, dtype=torch.float64, device=DEVICE)
    _drift_lz_kernel[(4, triton.cdiv(T + 1, 16))](
        lengths.to(DEVICE), log_z.to(DEVICE), corr.to(DEVICE), got, T, spacing, J, BLOCK_T=16
    )
    torch.testing.assert_close(got.cpu(), want, rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("block_r, block_n", [(32, 128), (2, 16)])
def test_batch_sum_kernel(rng, block_r, block_n):
    # out[n] = sum_b g[b] sum_ch part[b, ch, n], a sequence with log Z = -inf contributing
    # nothing even with an infinite upstream value; more partial rows than a tile (45 > 32),
    # outputs not a multiple of a tile, an upstream gradient with stride 2, NaN-filled output
    B, NCH, N = 5, 9, 300
    part = torch.randn(B, NCH, N, generator=rng, dtype=torch.float64)
    g = torch.randn(2 * B, generator=rng, dtype=torch.float64)[::2].clone()
    log_z = torch.randn(B, generator=rng, dtype=torch.float64)
    log_z[2] = -torch.inf
    g[2] = torch.inf
    w = torch.where(torch.isinf(log_z), 0.0, g)
    want = (w[:, None] * part.sum(1)).sum(0)
    g_dev = torch.zeros(2 * B, dtype=torch.float64, device=DEVICE)
    g_dev[::2] = g.to(DEVICE)
    out = torch.full((N,), torch.nan, dtype=torch.float32, device=DEVICE)
    _batch_sum_kernel[(-(-N // block_n),)](
        part.to(DEVICE), g_dev[::2], 2, log_z.to(DEVICE), out, B, NCH, N,
        BLOCK_R=block_r, BLOCK_N=block_n,
    )  # fmt: skip
    torch.testing.assert_close(out.cpu().double(), want, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("per_duration", [False, True])
def test_shared_gradients_when_their_tilings_differ(make_inputs, rng, per_duration):
    # C = 3 and K = 70: the transition's partial sums come in more time chunks than the
    # duration bias's (5 against 4 with the interpreter's 4 stand-in SMs; 6 against 5 at
    # 32x1000x32x24 on 132), and each buffer must be summed with its own count; weights differ
    # per sequence so that a mix-up of sequences shows too
    inp = make_inputs(2, 80, 3, 70, per_duration=per_duration, lengths=[80, 77])
    weights = torch.tensor([1.0, 2.0], dtype=torch.float64)
    _, got = _grads(_triton_fn, inp, weights)
    _, want = _grads(_torch_fn, inp, weights, "cpu")
    for name, g, w in zip(NAMES, got, want):
        if w is not None:
            torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("int64_offsets", [False, True])
def test_duration_bias_gradient_with_either_offset_width(make_inputs, int64_offsets, monkeypatch):
    # the duration-bias kernel indexes a sequence's rows in int32 unless (T+1) max(C, K) needs
    # int64; both variants give the float64 PyTorch path's gradients
    from semicrf_kernels.logpartition import triton as triton_lp

    real = triton_lp.needs_int64
    assert not real(100_001, 24, 3000) and real(100_000_001, 24, 3000)
    monkeypatch.setattr(triton_lp, "needs_int64", lambda *_: int64_offsets)
    inp = make_inputs(3, 20, 3, 6, proj=True, lengths=[20, 13, 1])
    weights = torch.tensor([1.0, -0.5, 2.0], dtype=torch.float64)
    _, got = _grads(_triton_fn, inp, weights)
    _, want = _grads(_torch_fn, inp, weights, "cpu")
    for name, g, w in zip(NAMES, got, want):
        if w is not None:
            torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6, msg=name)


def test_launcher_outputs(make_inputs, rng):
    inp = make_inputs(2, 7, 3, 3, lengths=[7, 2])
    dev = [x.to(DEVICE) if isinstance(x, torch.Tensor) else x for x in inp.args]
    state = launch_streaming_triton_kernel(*dev)
    g = torch.randn(2, generator=rng, dtype=torch.float64).to(DEVICE)
    out = launch_streaming_triton_backward(*dev, state, g)
    gcum, gtrans, gdb, gps, gpe = out
    assert gcum.shape == (2, 8, 3) and gtrans.shape == (3, 3) and gdb.shape == (3, 3)
    assert gps is None and gpe is None
    _, ref = _grads(_torch_fn, inp, g.cpu(), "cpu")
    torch.testing.assert_close(gcum.cpu(), ref[0], rtol=1e-9, atol=1e-10)
    for bad in (g[:1], g[0], g[:, None]):
        with pytest.raises(ValueError, match="grad_output"):
            launch_streaming_triton_backward(*dev, state, bad)
    with pytest.raises(ValueError, match="forward_state"):
        trans3 = inp.transition.expand(3, 3, 3).to(DEVICE)
        launch_streaming_triton_backward(dev[0], trans3, *dev[2:], state, g)


def test_gradients_come_back_in_input_dtypes(make_inputs):
    inp = make_inputs(2, 6, 3, 3, proj=True)
    x = _leaves(inp)
    x[0] = x[0].detach().to(torch.bfloat16).requires_grad_(True)
    x[1] = x[1].detach().float().requires_grad_(True)
    z = SemiCRFStreamingTriton.apply(x[0], x[1], x[2], inp.lengths.to(DEVICE), 3, x[3], x[4], 4)
    assert z.dtype == torch.float32
    z.sum().backward()
    assert x[0].grad.dtype == torch.bfloat16 and x[1].grad.dtype == torch.float32
    assert x[2].grad.dtype == torch.float64
