"""Tests of the Triton forward scan (``logpartition/triton_scan.py``, ``_shared/scan_launch.py``).

Meant to run on the CPU under the Triton interpreter: ``TRITON_INTERPRET=1 pytest ...`` (the
variable must be set before ``semicrf_kernels`` is imported). On a CUDA machine the same tests
run on the GPU at larger sizes. Skipped when neither is available.
"""

from __future__ import annotations

import math

import pytest
import torch
from _triton_env import DEVICE, ON_CUDA, TRITON_MARKS

from semicrf_kernels._shared.triton_support import HAS_TRITON
from semicrf_kernels.logpartition.pytorch import streaming_forward_pytorch
from semicrf_kernels.testing.brute_force import brute_force_streaming
from semicrf_kernels.testing.reference import reference_forward

pytestmark = TRITON_MARKS

if HAS_TRITON:
    from semicrf_kernels._shared import scan_launch as triton_forward
    from semicrf_kernels._shared.scan_launch import scan_config
    from semicrf_kernels.logpartition.triton_scan import launch_streaming_triton_kernel

#: (B, T, C, K, lengths or None): odd sizes, K = 1, 2, 3 and K > T, batch 1.
SHAPES = [
    (3, 9, 3, 3, None),
    (1, 7, 1, 1, None),
    (2, 10, 5, 2, [10, 3]),
    (2, 6, 3, 9, [6, 1]),
    (3, 13, 4, 4, [13, 12, 5]),
    (2, 1, 2, 3, None),
]
if ON_CUDA:
    # Every tile configuration is a compilation on the GPU: the interpreter covers the small
    # shapes; CUDA keeps two of them and adds realistic sizes.
    SHAPES = [
        SHAPES[4],
        SHAPES[5],
        (4, 300, 24, 32, None),
        (2, 200, 130, 7, None),
        (2, 150, 24, 300, None),
    ]


@pytest.fixture(autouse=True)
def _debug_fill(monkeypatch: pytest.MonkeyPatch) -> None:
    # Outputs start as NaN so that any element the kernels forget to write shows up.
    monkeypatch.setenv("SEMICRF_KERNELS_DEBUG_FILL", "1")


def _on_device(inp):
    return inp._replace(
        cum_scores=inp.cum_scores.to(DEVICE),
        transition=inp.transition.to(DEVICE),
        duration_bias=inp.duration_bias.to(DEVICE),
        lengths=inp.lengths.to(DEVICE),
        proj_start=None if inp.proj_start is None else inp.proj_start.to(DEVICE),
        proj_end=None if inp.proj_end is None else inp.proj_end.to(DEVICE),
    )


def _triton(inp, semiring: str = "log", **kw) -> torch.Tensor:
    dev = _on_device(inp)
    out = launch_streaming_triton_kernel(*dev.args, semiring=semiring, **dev.kwargs, **kw)
    return out[0].cpu()


@pytest.mark.parametrize("semiring", ["log", "max"])
@pytest.mark.parametrize("per_duration", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_float64_reference(make_inputs, shape, per_duration, semiring):
    B, T, C, K, lengths = shape
    if per_duration and C > 64:
        pytest.skip("(K, C, C) at C > 64 is covered by the float32 test")
    inp = make_inputs(B, T, C, K, per_duration=per_duration, proj=True, lengths=lengths)
    if T <= 20:
        expected = reference_forward(*inp.args, semiring=semiring, **inp.kwargs)
    else:  # the scalar reference is too slow at GPU sizes: the float64 PyTorch path
        expected = streaming_forward_pytorch(*inp.args, semiring, inp.proj_start, inp.proj_end)
    got = _triton(inp, semiring)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("semiring", ["log", "max"])
@pytest.mark.parametrize("proj", [False, True])
@pytest.mark.parametrize("shape", SHAPES[:3])
def test_float32_matches_pytorch_path_and_float64(make_inputs, shape, proj, semiring):
    B, T, C, K, lengths = shape
    inp64 = make_inputs(B, T, C, K, proj=proj, lengths=lengths)
    inp = inp64.to(torch.float32)
    got = _triton(inp, semiring)
    assert got.dtype == torch.float32
    expected = reference_forward(
        *inp.to(torch.float64).args, semiring=semiring, **inp.to(torch.float64).kwargs
    )
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-5)
    torch_path = streaming_forward_pytorch(*inp.args, semiring, inp.proj_start, inp.proj_end)
    torch.testing.assert_close(got, torch_path, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("per_duration", [False, True])
def test_matches_brute_force(make_inputs, per_duration):
    inp = make_inputs(3, 6, 3, 3, per_duration=per_duration, proj=True, lengths=[6, 4, 1])
    truth = brute_force_streaming(*inp.args, **inp.kwargs)
    torch.testing.assert_close(_triton(inp, "log"), truth.log_partition, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(_triton(inp, "max"), truth.viterbi_score, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("per_duration", [False, True])
@pytest.mark.parametrize("semiring", ["log", "max"])
def test_forbidden_choices(make_inputs, semiring, per_duration):
    inp = make_inputs(3, 11, 4, 3, per_duration=per_duration, proj=True, forbid=0.4)
    db = inp.duration_bias.clone()
    db[1, 2] = -math.inf
    db[0, 0] = -1e9  # NEG_INF counts as forbidden too
    inp = inp._replace(duration_bias=db)
    expected = reference_forward(*inp.args, semiring=semiring, **inp.kwargs)
    got = _triton(inp, semiring)
    assert not torch.isnan(got).any()
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("per_duration", [False, True])
@pytest.mark.parametrize("semiring", ["log", "max"])
def test_no_allowed_segmentation_is_minus_inf(make_inputs, semiring, per_duration):
    # Only duration 2 allowed: odd lengths have no segmentation; and a sequence whose labels
    # can never start (all transitions into them forbidden) neither.
    inp = make_inputs(3, 7, 3, 3, per_duration=per_duration, lengths=[7, 6, 3])
    db = torch.full_like(inp.duration_bias, -math.inf)
    db[1] = 0.5
    got = _triton(inp._replace(duration_bias=db), semiring)
    assert torch.isneginf(got[0]) and torch.isneginf(got[2]) and torch.isfinite(got[1])
    trans = torch.full_like(inp.transition, -math.inf)
    got = _triton(inp._replace(transition=trans), semiring)
    assert torch.isneginf(got).all()


@pytest.mark.parametrize("per_duration", [False, True])
def test_padding_is_never_read(make_inputs, per_duration):
    # Garbage (NaN) at padding must not change anything: results equal each sequence alone.
    inp = make_inputs(3, 12, 3, 4, per_duration=per_duration, proj=True, lengths=[12, 5, 9])
    cum, ps, pe = inp.cum_scores.clone(), inp.proj_start.clone(), inp.proj_end.clone()
    for b, L in enumerate(inp.lengths.tolist()):
        cum[b, L + 1 :] = math.nan
        ps[b, L:] = math.nan
        pe[b, L:] = math.nan
    padded = inp._replace(cum_scores=cum, proj_start=ps, proj_end=pe)
    for semiring in ("log", "max"):
        got = _triton(padded, semiring)
        for b, L in enumerate(inp.lengths.tolist()):
            alone = inp._replace(
                cum_scores=inp.cum_scores[b : b + 1, : L + 1],
                proj_start=inp.proj_start[b : b + 1, :L],
                proj_end=inp.proj_end[b : b + 1, :L],
                lengths=inp.lengths[b : b + 1],
            )
            assert torch.equal(got[b : b + 1], _triton(alone, semiring))


@pytest.mark.parametrize(
    "override",
    [
        {"block_p": 2, "block_s": 2},
        {"block_p": 4, "block_s": 4},
        {"block_p": 16, "block_s": 2},
        {"trans_regs": False, "block_tc": 2},
    ],
)
def test_tile_choices_agree(make_inputs, monkeypatch, override):
    # The temporal blocking, window tiling and tiled C x C reduction must not change results.
    monkeypatch.setattr(triton_forward, "CONFIG_OVERRIDE", override)
    inp = make_inputs(2, 19, 5, 6, proj=True, lengths=[19, 10])
    for semiring in ("log", "max"):
        expected = reference_forward(*inp.args, semiring=semiring, **inp.kwargs)
        torch.testing.assert_close(_triton(inp, semiring), expected, rtol=1e-10, atol=1e-10)


def test_half_inputs_compute_in_float32(make_inputs):
    inp = make_inputs(2, 8, 3, 3)
    half = inp._replace(cum_scores=inp.cum_scores.to(torch.bfloat16))
    got = _triton(half)
    assert got.dtype == torch.float32
    expected = reference_forward(*half.args)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-5)


def test_state_is_what_backward_needs(make_inputs):
    inp = make_inputs(2, 9, 3, 3, lengths=[9, 4])
    dev = _on_device(inp)
    state = launch_streaming_triton_kernel(*dev.args)
    partition, log_z, alpha, window, shift = state
    assert partition.shape == (2,) and log_z.dtype == torch.float64
    assert alpha.shape == window.shape == (2, 10, 3) and shift.shape == (2, 10)
    # max_c alpha_n[t] = 0 and log Z = logsumexp(alpha_n[L]) + shift[L]
    for b, L in enumerate(inp.lengths.tolist()):
        a = alpha[b, : L + 1].cpu()
        torch.testing.assert_close(a.amax(dim=1), torch.zeros(L + 1, dtype=a.dtype))
        z = torch.logsumexp(a[L], 0) + shift[b, L].cpu()
        torch.testing.assert_close(z, log_z[b].cpu())
    state3 = launch_streaming_triton_kernel(
        *_on_device(make_inputs(2, 9, 3, 3, per_duration=True)).args
    )
    assert state3.window is None


def test_bad_arguments_raise(make_inputs):
    inp = make_inputs(1, 4, 2, 2)
    with pytest.raises(ValueError, match="semiring"):
        launch_streaming_triton_kernel(*_on_device(inp).args, semiring="entropy")
    with pytest.raises(ValueError, match="num_warps"):
        scan_config(3, 4, num_warps=3)
    if not ON_CUDA:
        return
    with pytest.raises(ValueError, match="cum_scores"):
        launch_streaming_triton_kernel(*inp.args)  # CPU tensors without the interpreter


@pytest.mark.parametrize("C", [1, 3, 24, 64, 65, 256])
@pytest.mark.parametrize("K", [1, 2, 100, 3000])
def test_scan_config_is_valid(C, K):
    for dtype in (torch.float32, torch.float64):
        cfg = scan_config(C, K, None, dtype)
        for v in (cfg.block_c, cfg.block_p, cfg.block_s, cfg.block_tc, cfg.num_warps):
            assert v >= 1 and v & (v - 1) == 0
        assert cfg.block_c >= C and cfg.block_c < 2 * max(C, 2)
        assert cfg.block_p * cfg.block_s * cfg.block_c <= 1024 * cfg.num_warps
        assert cfg.trans_regs == (cfg.block_c <= 64)
