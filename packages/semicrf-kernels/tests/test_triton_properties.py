"""Property-based tests of the Triton path on hostile inputs, against enumeration.

Hypothesis draws the shape (``B``, ``T``, ``K``, ``C`` including 1, ``K > T``, ``C`` not a
power of two), the lengths (all 1, all ``T``, mixed), the dtype, the score scale (up to 1e4),
the emission kind (Gaussian, or one-hot-like, which makes exact ties) and the constraints
(``-inf`` and ``NEG_INF`` transitions and durations, or everything forbidden). Each example runs
the public API with ``use_triton=True`` (the custom operators dispatch to the Triton kernels)
and checks, against :func:`brute_force_streaming` on the same (rounded) inputs in float64:

* log Z and the Viterbi score, free of NaN, ``-inf`` exactly where nothing is allowed;
* gradients: finite, equal to the brute-force position marginals for the emissions, to the
  float64 PyTorch path for the parameters, zero for impossible sequences;
* the Viterbi path: tiles ``[0, L)`` with allowed segments, its rescored value is the optimum.

Tolerance: ``4 eps(dtype) T M`` with ``M`` the largest finite magnitude a segment score can
reach (two cumulative rows, a duration bias, a transition and two projections): float32
rounding of per-step sums of that size. Over 60 random draws the worst observed error was
0.45 of ``eps T M``.

Runs under ``TRITON_INTERPRET=1`` on the CPU (as every ``test_triton_*.py``, see the
noxfile), or on a CUDA machine; skipped otherwise.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import pytest
import torch
from _triton_env import DEVICE, TRITON_MARKS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semicrf_kernels import NEG_INF, semi_crf_streaming_forward, semi_crf_streaming_viterbi
from semicrf_kernels.testing.brute_force import brute_force_streaming, score_segmentation

pytestmark = [
    *TRITON_MARKS,
    pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning"),
]
PROPERTY = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
FLOATS = ("transition", "duration_bias", "proj_start", "proj_end")


class Problem(NamedTuple):
    """One drawn input set; float tensors already rounded to ``dtype``."""

    emissions: torch.Tensor  # (B, T, C)
    transition: torch.Tensor  # (C, C) or (K, C, C)
    duration_bias: torch.Tensor  # (K, C)
    lengths: torch.Tensor  # (B,) int64
    K: int
    proj_start: torch.Tensor | None  # (B, T, C)
    proj_end: torch.Tensor | None  # (B, T, C)
    dtype: torch.dtype

    def float_inputs(self) -> dict[str, torch.Tensor | None]:
        return {name: getattr(self, name) for name in ("emissions", *FLOATS)}


def cumulative(emissions: torch.Tensor) -> torch.Tensor:
    """``(B, T+1, C)`` prefix sums with a zero first row (differentiable)."""
    return torch.nn.functional.pad(emissions.cumsum(dim=1), (0, 0, 1, 0))


def _forbid(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    # Half of the forbidden entries are -inf, half the finite NEG_INF: both mean "forbidden".
    u = torch.rand(x.shape, generator=gen, dtype=torch.float64)
    x = torch.where(u < p / 2, torch.full_like(x, -torch.inf), x)
    return torch.where((u >= p / 2) & (u < p), torch.full_like(x, NEG_INF), x)


@st.composite
def problems(
    draw,
    dtypes: tuple[torch.dtype, ...] = (torch.float32, torch.float64),
    scales: tuple[float, ...] = (1.0, 50.0, 1e4),
) -> Problem:
    C = draw(st.sampled_from([1, 2, 3, 5]))
    T = draw(st.integers(1, 5 if C == 5 else 6))
    B = draw(st.integers(1, 3))
    K = draw(st.integers(1, T + 2))  # K > T included
    dtype = draw(st.sampled_from(dtypes))
    scale = draw(st.sampled_from(scales))
    one_hot = draw(st.booleans())
    per_duration = draw(st.booleans())
    proj = draw(st.booleans())
    constraints = draw(st.sampled_from(["none", "some", "some", "all"]))
    length_mode = draw(st.sampled_from(["ones", "full", "mixed"]))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    f64 = torch.float64

    if one_hot:  # exact ties between segmentations
        labels = torch.randint(0, C, (B, T), generator=gen)
        emissions = torch.nn.functional.one_hot(labels, C).to(f64) * scale
    else:
        emissions = torch.randn(B, T, C, generator=gen, dtype=f64) * scale
    param_scale = min(scale, 100.0)
    transition = torch.randn(*((K, C, C) if per_duration else (C, C)), generator=gen, dtype=f64)
    transition = transition * param_scale
    duration_bias = torch.randn(K, C, generator=gen, dtype=f64) * param_scale
    if constraints == "some":
        transition = _forbid(transition, 0.3, gen)
        duration_bias = _forbid(duration_bias, 0.2, gen)
    elif constraints == "all":
        transition = torch.full_like(transition, -torch.inf)
    ps = pe = None
    if proj:
        ps = torch.randn(B, T, C, generator=gen, dtype=f64) * scale
        pe = torch.randn(B, T, C, generator=gen, dtype=f64) * scale
    if length_mode == "ones":
        lengths = torch.ones(B, dtype=torch.int64)
    elif length_mode == "full":
        lengths = torch.full((B,), T, dtype=torch.int64)
    else:
        lengths = torch.randint(1, T + 1, (B,), generator=gen)
        lengths[0] = T

    def rounded(x: torch.Tensor | None) -> torch.Tensor | None:
        return None if x is None else x.to(dtype)

    return Problem(
        rounded(emissions), rounded(transition), rounded(duration_bias), lengths, K,
        rounded(ps), rounded(pe), dtype,
    )  # fmt: skip


def _finite_max(x: torch.Tensor | None) -> float:
    if x is None:
        return 0.0
    x = x.double()
    allowed = torch.isfinite(x) & (x > NEG_INF / 2)
    return float(x[allowed].abs().max()) if bool(allowed.any()) else 0.0


def tolerance(p: Problem, cum: torch.Tensor) -> float:
    """``4 eps T M`` (module docstring)."""
    M = 2 * _finite_max(cum) + _finite_max(p.transition) + _finite_max(p.duration_bias)
    M += 2 * _finite_max(p.proj_start) + 2 * _finite_max(p.proj_end) + 1.0
    T = p.emissions.shape[1]
    return 4 * torch.finfo(p.dtype).eps * T * M


def assert_close_scores(got: torch.Tensor, expected: torch.Tensor, tol: float) -> None:
    got = got.double().cpu()
    assert not bool(torch.isnan(got).any())
    impossible = expected == -math.inf
    assert torch.equal(got == -math.inf, impossible), (got, expected)
    error = (got - expected)[~impossible].abs()
    assert error.numel() == 0 or float(error.max()) <= tol, (got, expected, tol)


def _on_device(x: torch.Tensor | None) -> torch.Tensor | None:
    return None if x is None else x.to(DEVICE)


def run_api(p: Problem, dtype: torch.dtype, use_triton: bool):
    """log Z, the gradients of ``sum_b w_b log Z_b`` and the leaves, on ``DEVICE``."""
    leaves = {
        name: None if x is None else _on_device(x).to(dtype).requires_grad_()
        for name, x in p.float_inputs().items()
    }
    lengths = p.lengths.to(DEVICE)
    log_z = semi_crf_streaming_forward(
        cumulative(leaves["emissions"]), leaves["transition"], leaves["duration_bias"], lengths,
        p.K, use_triton=use_triton, proj_start=leaves["proj_start"], proj_end=leaves["proj_end"],
    )  # fmt: skip
    weights = torch.linspace(0.5, 1.5, log_z.shape[0], dtype=log_z.dtype, device=log_z.device)
    present = {k: v for k, v in leaves.items() if v is not None}
    grads = torch.autograd.grad((log_z * weights).sum(), list(present.values()))
    return log_z.detach(), dict(zip(present, grads))


def check_path(p: Problem, path, cum64: torch.Tensor, bf, tol: float) -> None:
    """The path tiles ``[0, L)`` with allowed segments and its rescored value is optimal."""
    path = [x.cpu() for x in path]
    scores, starts, durations, labels, segment_scores, count = path
    C = p.emissions.shape[2]
    for b in range(p.emissions.shape[0]):
        n = int(count[b])
        if bf.log_partition[b] == -math.inf:
            assert n == 0 and scores[b] == -math.inf
            continue
        segs = []
        position = 0
        for i in range(n):
            s, d, c = int(starts[b, i]), int(durations[b, i]), int(labels[b, i])
            assert s == position and 1 <= d <= p.K and 0 <= c < C
            segs.append((s, s + d - 1, c))
            position += d
        assert position == int(p.lengths[b])
        assert bool((starts[b, n:] == -1).all())
        rescored = score_segmentation(
            cum64[b], p.transition.double(), p.duration_bias.double(), segs,
            None if p.proj_start is None else p.proj_start[b].double(),
            None if p.proj_end is None else p.proj_end[b].double(),
        )  # fmt: skip
        best = float(bf.viterbi_score[b])
        assert abs(rescored - best) <= tol, (rescored, best)
        assert abs(float(segment_scores[b, :n].double().sum()) - float(scores[b])) <= tol


@PROPERTY
@given(problems())
def test_triton_path_matches_enumeration_on_hostile_inputs(p: Problem) -> None:
    # The kernels receive the cumulative sums taken in `dtype`; enumerate on exactly those.
    cum64 = cumulative(p.emissions).double()
    tol = tolerance(p, cum64)
    f64_kwargs = {
        "proj_start": None if p.proj_start is None else p.proj_start.double(),
        "proj_end": None if p.proj_end is None else p.proj_end.double(),
    }
    bf = brute_force_streaming(
        cum64, p.transition.double(), p.duration_bias.double(), p.lengths, p.K, **f64_kwargs
    )
    impossible = bf.log_partition == -math.inf

    log_z, grads = run_api(p, p.dtype, use_triton=True)
    assert log_z.dtype == p.dtype
    assert_close_scores(log_z, bf.log_partition, tol)
    for name, g in grads.items():
        assert bool(torch.isfinite(g).all()), name
    # d log Z / d emission[t, c] = P(position t has label c) (weighted per sequence).
    weights = torch.linspace(0.5, 1.5, p.emissions.shape[0], dtype=torch.float64)
    expected = bf.position_marginals * weights[:, None, None]
    assert float((grads["emissions"].double().cpu() - expected).abs().max()) <= tol
    for name in ("emissions", "proj_start", "proj_end"):
        if name in grads:
            assert bool((grads[name].cpu()[impossible] == 0).all()), name
    # The parameters' gradients against the float64 PyTorch path on the same values.
    _, reference = run_api(p, torch.float64, use_triton=False)
    for name in FLOATS:
        if name in grads:
            error = (grads[name].double().cpu() - reference[name].cpu()).abs().max()
            assert float(error) <= tol, (name, float(error), tol)

    args = [_on_device(x) for x in (cumulative(p.emissions), p.transition, p.duration_bias)]
    kwargs = {k: _on_device(v) for k, v in (("proj_start", p.proj_start), ("proj_end", p.proj_end))}
    lengths = p.lengths.to(DEVICE)
    path = semi_crf_streaming_viterbi(*args, lengths, p.K, use_triton=True, **kwargs)
    assert path.scores.dtype == p.dtype
    assert_close_scores(path.scores, bf.viterbi_score, tol)
    check_path(p, path, cum64, bf, tol)
    with torch.no_grad():
        best = semi_crf_streaming_forward(*args, lengths, p.K, "max", use_triton=True, **kwargs)
    assert_close_scores(best, bf.viterbi_score, tol)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(dtypes=(torch.float32,), scales=(1.0, 50.0)), st.sampled_from(["bf16", "fp16"]))
def test_half_precision_inputs_are_computed_in_float32(p: Problem, half_name: str) -> None:
    """bf16/fp16 inputs give exactly the float32 results of the same (rounded) values, and
    gradients in their own dtype (the float32 gradients, rounded)."""
    half = {"bf16": torch.bfloat16, "fp16": torch.float16}[half_name]
    inputs = {"cum_scores": cumulative(p.emissions), **{k: getattr(p, k) for k in FLOATS}}
    inputs = {k: None if v is None else _on_device(v).to(half) for k, v in inputs.items()}
    lengths = p.lengths.to(DEVICE)

    def run(cast):
        leaves = {k: None if v is None else cast(v).requires_grad_() for k, v in inputs.items()}
        log_z = semi_crf_streaming_forward(
            leaves["cum_scores"], leaves["transition"], leaves["duration_bias"], lengths, p.K,
            proj_start=leaves["proj_start"], proj_end=leaves["proj_end"],
        )  # fmt: skip
        present = {k: v for k, v in leaves.items() if v is not None}
        return log_z.detach(), torch.autograd.grad(log_z.sum(), list(present.values()))

    log_z_half, grads_half = run(lambda x: x.clone())
    log_z_float, grads_float = run(lambda x: x.float())
    assert log_z_half.dtype == torch.float32
    assert torch.equal(log_z_half, log_z_float)
    for g_half, g_float in zip(grads_half, grads_float):
        assert g_half.dtype == half
        assert torch.equal(g_half, g_float.to(half))


# ----------------------------------------------------------------------------- the operators
@pytest.mark.parametrize("per_duration", [False, True], ids=["CC", "KCC"])
def test_fake_implementations_match_the_triton_outputs(per_duration: bool) -> None:
    # The Triton state differs from the PyTorch one (compute-dtype alpha, a shift per row):
    # the fake implementations must describe whichever path the device runs.
    from semicrf_kernels._shared.inputs import prepare_inputs

    gen = torch.Generator().manual_seed(3)
    B, T, C, K = 2, 6, 3, 3
    cum = cumulative(torch.randn(B, T, C, generator=gen))
    trans = torch.randn(*((K, C, C) if per_duration else (C, C)), generator=gen)
    bias = torch.randn(K, C, generator=gen)
    ps = torch.randn(B, T, C, generator=gen)
    prepared = prepare_inputs(
        *(_on_device(x) for x in (cum, trans, bias)), torch.tensor([6, 4], device=DEVICE), K,
        _on_device(ps), None,
    )  # fmt: skip
    ops = torch.ops.semicrf_kernels
    state = ops.streaming_forward.default(*prepared, "log", True, 4)
    assert state[4].shape == (B, T + 1)  # Triton's per-row float64 shift
    tests = ("test_schema", "test_faketensor")
    torch.library.opcheck(
        ops.streaming_forward.default, (*prepared, "log", True, 4), test_utils=tests
    )
    torch.library.opcheck(
        ops.streaming_backward.default,
        (torch.ones(B, device=DEVICE), *prepared, *state[1:5], True, 4, *state[5:]),
        test_utils=tests,
    )
    torch.library.opcheck(ops.streaming_viterbi.default, (*prepared, True, 4), test_utils=tests)
    # With the backward scan run by the forward operator: the fake gives its rows' shapes too.
    with_rows = (*prepared, "log", True, 4, True)
    torch.library.opcheck(ops.streaming_forward.default, with_rows, test_utils=tests)
    rows = ops.streaming_forward.default(*with_rows)[5:]
    assert [tuple(x.shape) for x in rows] == (
        [(0,)] * 3 if per_duration else [(B, T + 1, C), (B, T + 1, C), (B, T + 1)]
    )


@pytest.mark.parametrize("per_duration", [False, True], ids=["CC", "KCC"])
@pytest.mark.parametrize("proj", [False, True])
def test_backward_scan_run_by_the_forward_gives_the_same_gradients(per_duration, proj) -> None:
    from semicrf_kernels._shared.inputs import prepare_inputs

    gen = torch.Generator().manual_seed(11)
    B, T, C, K = 3, 9, 5, 4
    cum = cumulative(torch.randn(B, T, C, generator=gen))
    trans = _forbid(torch.randn(*((K, C, C) if per_duration else (C, C)), generator=gen), 0.2, gen)
    bias = torch.randn(K, C, generator=gen)
    projs = [torch.randn(B, T, C, generator=gen) if proj else None for _ in range(2)]
    prepared = prepare_inputs(
        *(_on_device(x) for x in (cum, trans, bias)), torch.tensor([9, 4, 1], device=DEVICE), K,
        *(_on_device(x) for x in projs),
    )  # fmt: skip
    ops = torch.ops.semicrf_kernels
    g = torch.rand(B, generator=gen).to(DEVICE)
    grads = {}
    for with_backward in (False, True):
        state = ops.streaming_forward.default(*prepared, "log", True, 4, with_backward)
        ran = state[5].numel() > 0
        assert ran == (with_backward and not per_duration)
        grads[with_backward] = ops.streaming_backward.default(
            g, *prepared, *state[1:5], True, 4, *state[5:]
        )
    # The same kernels on the same inputs, only launched earlier: bitwise the same.
    for a, b in zip(grads[False], grads[True]):
        assert torch.equal(a, b)
    # And through the public API (which asks for the early scan when an input requires grad).
    leaves = [x.clone().requires_grad_() for x in (prepared.cum_scores, prepared.transition)]
    z = semi_crf_streaming_forward(
        leaves[0], leaves[1], *prepared[2:5], proj_start=prepared[5], proj_end=prepared[6]
    )
    api = torch.autograd.grad((z * g).sum(), leaves)
    assert torch.equal(api[0], grads[False][0]) and torch.equal(api[1], grads[False][1])


def test_compiled_triton_loss_equals_eager() -> None:
    torch._dynamo.reset()
    gen = torch.Generator().manual_seed(5)
    B, T, C, K = 3, 7, 3, 4
    emissions = torch.randn(B, T, C, generator=gen).to(DEVICE)
    trans = torch.randn(C, C, generator=gen).to(DEVICE)
    bias = torch.randn(K, C, generator=gen).to(DEVICE)
    lengths = torch.tensor([7, 3, 1], device=DEVICE)

    def loss(e, tr, db):
        return semi_crf_streaming_forward(cumulative(e), tr, db, lengths, K).sum()

    compiled = torch.compile(loss, fullgraph=True, backend="aot_eager")
    a = [x.clone().requires_grad_() for x in (emissions, trans, bias)]
    b = [x.clone().requires_grad_() for x in (emissions, trans, bias)]
    value, expected = compiled(*a), loss(*b)
    assert torch.equal(value, expected)
    for g, e in zip(torch.autograd.grad(value, a), torch.autograd.grad(expected, b)):
        assert torch.equal(g, e)
