"""Tests of the Triton Viterbi (``viterbi/triton.py``): backpointers and device traceback.

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
from semicrf_kernels.constants import NEG_INF
from semicrf_kernels.testing.brute_force import brute_force_streaming
from semicrf_kernels.testing.reference import reference_viterbi
from semicrf_kernels.viterbi.path import ViterbiPath, score_path_segments
from semicrf_kernels.viterbi.pytorch import streaming_viterbi_pytorch

pytestmark = TRITON_MARKS

if HAS_TRITON:
    from semicrf_kernels.viterbi.triton import (
        launch_streaming_triton_kernel_max_bp,
        segment_scores_triton,
        semi_crf_streaming_viterbi_triton,
    )

#: (B, T, C, K, lengths, per_duration, proj, forbid)
CASES = [
    (3, 9, 3, 3, None, False, True, 0.0),
    (1, 7, 1, 1, None, False, False, 0.0),
    (2, 10, 5, 2, [10, 3], False, True, 0.3),
    (2, 6, 3, 9, [6, 1], False, False, 0.0),
    (2, 9, 3, 3, [9, 5], True, True, 0.2),
    (2, 1, 3, 2, None, False, True, 0.0),
]
if ON_CUDA:  # fewer small cases (each is a compilation), realistic sizes added
    CASES = [CASES[0], CASES[4]]
    CASES += [(4, 300, 24, 32, None, False, True, 0.1), (2, 100, 130, 7, None, False, False, 0.0)]


@pytest.fixture(autouse=True)
def _debug_fill(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMICRF_KERNELS_DEBUG_FILL", "1")


def _device_args(inp):
    return [x.to(DEVICE) if isinstance(x, torch.Tensor) else x for x in inp]


def _decode(inp, **kw) -> ViterbiPath:
    path = semi_crf_streaming_viterbi_triton(*_device_args(inp), **kw)
    return ViterbiPath(*(x.cpu() for x in path))


def _assert_same_path(got: ViterbiPath, expected: ViterbiPath, tol: float) -> None:
    torch.testing.assert_close(got.scores.double(), expected.scores.double(), rtol=tol, atol=tol)
    assert torch.equal(got.num_segments, expected.num_segments)
    assert torch.equal(got.starts, expected.starts)
    assert torch.equal(got.durations, expected.durations)
    assert torch.equal(got.labels, expected.labels)
    torch.testing.assert_close(
        got.segment_scores.double(), expected.segment_scores.double(), rtol=tol, atol=tol
    )


def _assert_valid(path: ViterbiPath, lengths: torch.Tensor, K: int, C: int) -> None:
    """Segments tile [0, L) in order with durations in [1, K]; padding is -1 / 0."""
    for b, L in enumerate(lengths.tolist()):
        n = int(path.num_segments[b])
        if n == 0:
            assert torch.isneginf(path.scores[b])
        else:
            s, d, c = path.starts[b, :n], path.durations[b, :n], path.labels[b, :n]
            assert s[0] == 0 and torch.equal(s[1:], (s + d)[:-1]) and int(s[-1] + d[-1]) == L
            assert ((d >= 1) & (d <= K)).all() and ((c >= 0) & (c < C)).all()
            sums = path.segment_scores[b, :n].double().sum()
            torch.testing.assert_close(sums, path.scores[b].double(), rtol=1e-5, atol=1e-5)
        assert (path.starts[b, n:] == -1).all() and (path.durations[b, n:] == -1).all()
        assert (path.labels[b, n:] == -1).all() and (path.segment_scores[b, n:] == 0).all()


@pytest.mark.parametrize("case", CASES)
def test_path_matches_reference_float64(make_inputs, case):
    B, T, C, K, lengths, per_duration, proj, forbid = case
    inp = make_inputs(
        B, T, C, K, per_duration=per_duration, proj=proj, lengths=lengths, forbid=forbid
    )
    got = _decode(inp)
    _assert_valid(got, inp.lengths, K, C)
    if T <= 20:
        _assert_same_path(got, reference_viterbi(*inp.args, **inp.kwargs), 1e-10)
    _assert_same_path(got, streaming_viterbi_pytorch(*inp), 1e-10)


@pytest.mark.parametrize("case", CASES[2:] if ON_CUDA else [CASES[0], CASES[2], CASES[4], CASES[5]])
def test_float32_path_matches_pytorch_path(make_inputs, case):
    B, T, C, K, lengths, per_duration, proj, forbid = case
    inp = make_inputs(
        B, T, C, K, per_duration=per_duration, proj=proj, lengths=lengths, forbid=forbid
    )
    got = _decode(inp.to(torch.float32))
    assert got.scores.dtype == torch.float32
    _assert_valid(got, inp.lengths, K, C)
    # Random float64 scores have no near-ties: the float32 decode finds the same path.
    _assert_same_path(got, streaming_viterbi_pytorch(*inp), 1e-4)


@pytest.mark.parametrize("per_duration", [False, True])
def test_path_matches_brute_force(make_inputs, per_duration):
    inp = make_inputs(3, 6, 3, 3, per_duration=per_duration, proj=True, lengths=[6, 5, 2])
    truth = brute_force_streaming(*inp.args, **inp.kwargs)
    got = _decode(inp)
    torch.testing.assert_close(got.scores, truth.viterbi_score, rtol=1e-10, atol=1e-10)
    for b, segments in enumerate(truth.viterbi_segments):
        n = int(got.num_segments[b])
        mine = [
            (int(s), int(s + d - 1), int(c))
            for s, d, c in zip(got.starts[b, :n], got.durations[b, :n], got.labels[b, :n])
        ]
        assert mine == segments


@pytest.mark.parametrize("per_duration", [False, True])
def test_ties_go_to_smaller_duration_then_label(rng, per_duration):
    # Scores built so every sum is exact in float32 and float64, with dozens of tied best
    # paths: integer emissions in {-1, 0, 1}, integer duration biases, transitions 0 on the
    # diagonal and -60 or -61 elsewhere (so the start score logsumexp is exactly 0 in floating
    # point). Ties can then only be broken by the rule, never by rounding.
    B, T, C, K = 2, 9, 3, 4
    emissions = torch.randint(-1, 2, (B, T, C), generator=rng).double()
    cum = torch.zeros(B, T + 1, C, dtype=torch.float64)
    cum[:, 1:] = emissions.cumsum(1)
    shape = (K, C, C) if per_duration else (C, C)
    off_diagonal = -60.0 - torch.randint(0, 2, shape, generator=rng).double()
    trans = torch.where(torch.eye(C, dtype=torch.bool).expand(shape), 0.0, off_diagonal)
    db = torch.randint(-1, 1, (K, C), generator=rng).double()
    lengths = torch.tensor([9, 6])
    expected = reference_viterbi(cum, trans, db, lengths, K)
    for dtype in (torch.float64, torch.float32):
        args = (cum.to(dtype), trans.to(dtype), db.to(dtype), lengths, K)
        got = _decode(args)
        _assert_same_path(got, expected, 1e-6)
        _assert_same_path(got, streaming_viterbi_pytorch(*args), 1e-6)


@pytest.mark.parametrize("per_duration", [False, True])
def test_no_allowed_segmentation_gives_empty_path(make_inputs, per_duration):
    inp = make_inputs(3, 7, 3, 3, per_duration=per_duration, lengths=[7, 6, 3])
    db = torch.full_like(inp.duration_bias, -math.inf)
    db[1] = 0.5  # only duration 2: odd lengths have no segmentation
    got = _decode(inp._replace(duration_bias=db))
    assert torch.isneginf(got.scores[0]) and torch.isneginf(got.scores[2])
    assert got.num_segments.tolist() == [0, 3, 0]
    _assert_valid(got, inp.lengths, 3, 3)
    _, _, _, final = launch_streaming_triton_kernel_max_bp(
        *_device_args(inp._replace(duration_bias=db))
    )
    assert final.cpu().tolist()[0] == -1 and final.cpu().tolist()[2] == -1


@pytest.mark.parametrize("per_duration", [False, True])
def test_backpointers(make_inputs, per_duration):
    inp = make_inputs(2, 8, 3, 3, per_duration=per_duration, proj=True, lengths=[8, 5])
    _scores, bpd, bpl, final = launch_streaming_triton_kernel_max_bp(*_device_args(inp))
    bpd, bpl, final = bpd.cpu(), bpl.cpu(), final.cpu()
    assert bpd.dtype == bpl.dtype == torch.int32 and final.dtype == torch.int64
    assert bpd.shape == bpl.shape == (2, 8, 3)
    assert (bpd[1, 5:] == -1).all() and (bpl[1, 5:] == -1).all()  # padding
    path = _decode(inp)
    for b, L in enumerate(inp.lengths.tolist()):
        t, c = L, int(final[b])
        for i in reversed(range(int(path.num_segments[b]))):
            assert int(path.labels[b, i]) == c and int(path.durations[b, i]) == int(
                bpd[b, t - 1, c]
            )
            t, c = t - int(bpd[b, t - 1, c]), int(bpl[b, t - 1, c])
        assert t == 0 and c == -1
    t_ok = torch.arange(1, 9)[None, :, None] - bpd.long()
    assert ((bpd[0] >= 1) & (bpd[0] <= 3) & (t_ok[0] >= 0)).all()


@pytest.mark.parametrize("per_duration", [False, True])
def test_padding_is_never_read(make_inputs, per_duration):
    inp = make_inputs(3, 10, 3, 4, per_duration=per_duration, proj=True, lengths=[10, 4, 7])
    cum, ps, pe = inp.cum_scores.clone(), inp.proj_start.clone(), inp.proj_end.clone()
    for b, L in enumerate(inp.lengths.tolist()):
        cum[b, L + 1 :] = math.nan
        ps[b, L:] = math.nan
        pe[b, L:] = math.nan
    got = _decode(inp._replace(cum_scores=cum, proj_start=ps, proj_end=pe))
    _assert_same_path(got, _decode(inp), 0.0)


def _random_segmentations(rng: torch.Generator, lengths: torch.Tensor, T: int, C: int, K: int):
    """Random tilings of ``[0, L)`` (durations in ``[1, K]``), padded with garbage after the
    count, as ``(starts, durations, labels, num)`` with ``N = T`` slots."""
    B = len(lengths)
    starts = torch.randint(-5, T + 5, (B, T), generator=rng)  # garbage after the count
    durations = torch.randint(-3, K + 3, (B, T), generator=rng)
    labels = torch.randint(-2, C + 2, (B, T), generator=rng)
    num = torch.zeros(B, dtype=torch.int64)
    for b, L in enumerate(lengths.tolist()):
        s, n = 0, 0
        while s < L:
            d = int(torch.randint(1, min(K, L - s) + 1, (1,), generator=rng))
            starts[b, n], durations[b, n] = s, d
            labels[b, n] = int(torch.randint(0, C, (1,), generator=rng))
            s, n = s + d, n + 1
        num[b] = n
    return starts, durations, labels, num


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(
    "B, T, C, K, per_duration, proj, forbid",
    [
        (3, 9, 3, 3, False, True, 0.3),
        (2, 7, 5, 9, True, False, 0.2),
        (2, 1, 1, 1, False, True, 0.0),
        (4, 40, 6, 5, True, True, 0.0),
    ]
    + ([(3, 700, 24, 32, False, True, 0.1)] if ON_CUDA else []),
)
def test_segment_scores_kernel_matches_reference(
    rng, make_inputs, dtype, B, T, C, K, per_duration, proj, forbid
):
    inp = make_inputs(B, T, C, K, per_duration=per_duration, proj=proj, forbid=forbid).to(dtype)
    # Forbidden duration biases too, both as NEG_INF and as -inf.
    bias = inp.duration_bias.clone()
    bias[0, 0], bias[-1, -1] = NEG_INF, -torch.inf
    inp = inp._replace(duration_bias=bias)
    segs = _random_segmentations(rng, inp.lengths, T, C, K)
    expected = score_path_segments(
        inp.cum_scores, inp.transition, inp.duration_bias, *segs, inp.proj_start, inp.proj_end
    )
    got = segment_scores_triton(
        *_device_args([inp.cum_scores, inp.transition, inp.duration_bias, *segs]),
        *_device_args([inp.proj_start, inp.proj_end]),
    ).cpu()
    assert got.dtype == expected.dtype == dtype
    # -inf exactly where the reference has it; elsewhere one rounding of each of the (at most
    # six) terms, each bounded by the largest finite magnitude involved.
    assert torch.equal(torch.isneginf(got), torch.isneginf(expected))
    assert not torch.isnan(got).any()
    finite = torch.isfinite(expected)
    terms = [inp.cum_scores, inp.transition, inp.duration_bias, inp.proj_start, inp.proj_end]
    finite_abs = [x[torch.isfinite(x)].abs() for x in terms if x is not None]
    scale = 2 * max(float(m.max()) if m.numel() else 0.0 for m in finite_abs)
    eps = torch.finfo(dtype).eps
    torch.testing.assert_close(got[finite], expected[finite], rtol=0, atol=8 * eps * scale)
