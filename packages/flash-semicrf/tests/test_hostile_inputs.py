"""Property-based tests on hostile inputs: every CPU path against enumeration.

Hypothesis draws shapes (``C`` including 1 and 5, ``K > T``, ``T = 1``), lengths (all 1, all
``T``, mixed), dtypes (float32/float64 kernel inputs; float32, float64, bfloat16 and float16
emissions into the head), score scales up to 1e4, one-hot-like emissions (exact ties) and
constraints (``-inf`` and ``NEG_INF`` transitions and durations, masked transitions, nothing
allowed at all). Paths checked:

* the streaming PyTorch path of ``semi_crf_streaming_forward`` / ``semi_crf_streaming_viterbi``;
* ``SemiMarkovCRFHead`` / ``UncertaintySemiMarkovCRFHead`` with the ``streaming`` and ``exact``
  backends: partition, NLL, gradients, decoding, marginals, entropy.

The truth is :func:`semicrf_kernels.testing.brute_force.brute_force_streaming` in float64 on the very
inputs the path used (after its rounding). Properties: same values, no NaN anywhere, ``-inf``
exactly where nothing is allowed, finite gradients, ``NLL >= 0`` (``+inf`` exactly when the gold
is forbidden).

Tolerances: the PyTorch path accumulates in float64 and rounds once, so it is held to the output
dtype's rounding plus float64 accumulation error; the head's exact backend sums edge potentials
in the compute dtype, and is held to ``4 eps T M`` (``M``: the largest finite magnitude of a
segment score), as the Triton kernels are (``test_triton_properties.py``, which runs the same
kind of draws through the Triton path).

(The Triton path runs in ``packages/semicrf-kernels/tests/test_triton_properties.py``, under
the Triton interpreter.)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semicrf_kernels import NEG_INF, semi_crf_streaming_forward, semi_crf_streaming_viterbi
from semicrf_kernels.testing.brute_force import brute_force_streaming, score_segmentation
from semicrf_nn import UncertaintySemiMarkovCRFHead

PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
F64 = torch.float64
EPS64 = torch.finfo(F64).eps
# The head's NegativeBinomialDuration warns about extreme shapes; irrelevant here.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def cumulative(emissions: torch.Tensor) -> torch.Tensor:
    """``(B, T+1, C)`` prefix sums with a zero first row (differentiable)."""
    return torch.nn.functional.pad(emissions.cumsum(dim=1), (0, 0, 1, 0))


def finite_max(x: torch.Tensor | None) -> float:
    """Largest magnitude among the allowed (finite, ``> NEG_INF / 2``) entries."""
    if x is None:
        return 0.0
    x = x.detach().double()
    allowed = torch.isfinite(x) & (x > NEG_INF / 2)
    return float(x[allowed].abs().max()) if bool(allowed.any()) else 0.0


def magnitude(cum, transition, bias, ps=None, pe=None) -> float:
    """``M``: a bound on the magnitude of any one segment score (plus 1)."""
    return (
        2 * finite_max(cum) + finite_max(transition) + finite_max(bias)
        + 2 * finite_max(ps) + 2 * finite_max(pe) + 1.0
    )  # fmt: skip


def assert_scores(got: torch.Tensor, expected: torch.Tensor, tol: float) -> None:
    """No NaN, ``-inf`` exactly where expected, else within ``tol``."""
    got = got.detach().double()
    assert not bool(torch.isnan(got).any()), got
    impossible = expected == -math.inf
    assert torch.equal(got == -math.inf, impossible), (got, expected)
    error = (got - expected)[~impossible].abs()
    assert error.numel() == 0 or float(error.max()) <= tol, (got, expected, tol)


def forbid(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Forbid each entry with probability ``p``: half as ``-inf``, half as ``NEG_INF``."""
    u = torch.rand(x.shape, generator=gen, dtype=F64)
    x = torch.where(u < p / 2, torch.full_like(x, -torch.inf), x)
    return torch.where((u >= p / 2) & (u < p), torch.full_like(x, NEG_INF), x)


def draw_sizes(draw) -> tuple[int, int, int, int]:
    C = draw(st.sampled_from([1, 2, 3, 5]))
    T = draw(st.integers(1, 5 if C == 5 else 6))
    B = draw(st.integers(1, 3))
    K = draw(st.integers(1, T + 2))
    return B, T, C, K


def draw_lengths(draw, B: int, T: int, gen: torch.Generator) -> torch.Tensor:
    mode = draw(st.sampled_from(["ones", "full", "mixed"]))
    if mode == "ones":
        return torch.ones(B, dtype=torch.int64)
    if mode == "full":
        return torch.full((B,), T, dtype=torch.int64)
    lengths = torch.randint(1, T + 1, (B,), generator=gen)
    lengths[0] = T
    return lengths


def draw_emissions(draw, B: int, T: int, C: int, gen: torch.Generator) -> torch.Tensor:
    scale = draw(st.sampled_from([1.0, 50.0, 1e4]))
    if draw(st.booleans()):  # one-hot-like: exact ties between segmentations
        labels = torch.randint(0, C, (B, T), generator=gen)
        return torch.nn.functional.one_hot(labels, C).to(F64) * scale
    return torch.randn(B, T, C, generator=gen, dtype=F64) * scale


def gold_segments(labels: list[int], K: int) -> list[tuple[int, int, int]]:
    """Maximal runs of equal labels, runs longer than K cut into K-sized pieces (written
    independently of the head's vectorised version)."""
    segments = []
    start = 0
    for t in range(1, len(labels) + 1):
        if t == len(labels) or labels[t] != labels[start]:
            for s in range(start, t, K):
                segments.append((s, min(s + K, t) - 1, labels[start]))
            start = t
    return segments


# ============================================================================ kernels (PyTorch)
class KernelProblem(NamedTuple):
    emissions: torch.Tensor
    transition: torch.Tensor
    duration_bias: torch.Tensor
    lengths: torch.Tensor
    K: int
    proj_start: torch.Tensor | None
    proj_end: torch.Tensor | None


@st.composite
def kernel_problems(draw) -> tuple[KernelProblem, torch.dtype]:
    B, T, C, K = draw_sizes(draw)
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    emissions = draw_emissions(draw, B, T, C, gen)
    param_scale = min(finite_max(emissions), 100.0) + 1.0
    shape = (K, C, C) if draw(st.booleans()) else (C, C)
    transition = torch.randn(*shape, generator=gen, dtype=F64) * param_scale
    bias = torch.randn(K, C, generator=gen, dtype=F64) * param_scale
    constraints = draw(st.sampled_from(["none", "some", "some", "all"]))
    if constraints == "some":
        transition, bias = forbid(transition, 0.3, gen), forbid(bias, 0.2, gen)
    elif constraints == "all":
        transition = torch.full_like(transition, -torch.inf)
    ps = pe = None
    if draw(st.booleans()):
        ps = torch.randn(B, T, C, generator=gen, dtype=F64) * param_scale
        pe = torch.randn(B, T, C, generator=gen, dtype=F64) * param_scale
    lengths = draw_lengths(draw, B, T, gen)

    def cast(x):
        return None if x is None else x.to(dtype)

    problem = KernelProblem(
        cast(emissions), cast(transition), cast(bias), lengths, K, cast(ps), cast(pe)
    )
    return problem, dtype


@PROPERTY
@given(kernel_problems())
def test_streaming_pytorch_path_on_hostile_inputs(drawn) -> None:
    p, dtype = drawn
    # The path receives the cumulative sums taken in `dtype`; enumerate on exactly those.
    cum64 = cumulative(p.emissions).double()
    params64 = [None if x is None else x.double() for x in (p.proj_start, p.proj_end)]
    bf = brute_force_streaming(
        cum64, p.transition.double(), p.duration_bias.double(), p.lengths, p.K, *params64
    )
    T = p.emissions.shape[1]
    M = magnitude(cum64, p.transition, p.duration_bias, p.proj_start, p.proj_end)
    # One rounding of the output plus float64 accumulation over T steps.
    scores = bf.log_partition[torch.isfinite(bf.log_partition)]
    top = float(scores.abs().max()) if scores.numel() else 0.0
    tol = torch.finfo(dtype).eps * top + 64 * EPS64 * T * M

    leaves = {
        name: None if x is None else x.clone().requires_grad_()
        for name, x in p._asdict().items()
        if name not in ("lengths", "K")
    }
    log_z = semi_crf_streaming_forward(
        cumulative(leaves["emissions"]), leaves["transition"], leaves["duration_bias"],
        p.lengths, p.K, use_triton=False, proj_start=leaves["proj_start"],
        proj_end=leaves["proj_end"],
    )  # fmt: skip
    assert log_z.dtype == dtype
    assert_scores(log_z, bf.log_partition, tol)
    present = {k: v for k, v in leaves.items() if v is not None}
    grads = dict(zip(present, torch.autograd.grad(log_z.sum(), list(present.values()))))
    for name, g in grads.items():
        assert g.dtype == dtype and bool(torch.isfinite(g).all()), name
    # d log Z / d emission = the position marginals (0 for impossible sequences and padding).
    # (The cumulative sum of the emissions is differentiated in `dtype`: T roundings.)
    grad_tol = 2 * T * torch.finfo(dtype).eps + 64 * EPS64 * T * M
    assert float((grads["emissions"].double() - bf.position_marginals).abs().max()) <= grad_tol

    with torch.no_grad():
        args = (cumulative(p.emissions), p.transition, p.duration_bias, p.lengths, p.K)
        kwargs = {"proj_start": p.proj_start, "proj_end": p.proj_end, "use_triton": False}
        path = semi_crf_streaming_viterbi(*args, **kwargs)
        best = semi_crf_streaming_forward(*args, "max", **kwargs)
    assert_scores(path.scores, bf.viterbi_score, tol)
    assert_scores(best, bf.viterbi_score, tol)
    for b in range(p.emissions.shape[0]):
        n = int(path.num_segments[b])
        if bf.log_partition[b] == -math.inf:
            assert n == 0
            continue
        segs = [
            (int(s), int(s) + int(d) - 1, int(c))
            for s, d, c in zip(path.starts[b, :n], path.durations[b, :n], path.labels[b, :n])
        ]
        rescored = score_segmentation(
            cum64[b], p.transition.double(), p.duration_bias.double(), segs,
            *(None if x is None else x[b] for x in params64),
        )  # fmt: skip
        assert segs[-1][1] == int(p.lengths[b]) - 1
        assert abs(rescored - float(bf.viterbi_score[b])) <= tol


# ============================================================================ the head
@st.composite
def head_problems(draw):
    B, T, C, K = draw_sizes(draw)
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    dtype = draw(st.sampled_from([torch.float32, torch.float64, torch.bfloat16, torch.float16]))
    hidden = draw_emissions(draw, B, T, C, gen)
    mask_mode = draw(st.sampled_from(["none", "random", "none_allowed"]))
    mask = None
    if mask_mode == "random":
        mask = torch.rand(C, C, generator=gen) > 0.3
    elif mask_mode == "none_allowed":
        mask = torch.zeros(C, C, dtype=torch.bool)
    head = UncertaintySemiMarkovCRFHead(
        C, K,
        duration_distribution=draw(
            st.sampled_from([None, "geometric", "poisson", "negative_binomial", "uniform"])
        ),
        center_emissions=draw(st.booleans()),
        duration_dependent_transitions=draw(st.booleans()),
        transition_mask=mask,
        use_sequence_boundaries=draw(st.booleans()),
        validate=False,  # a forbidden gold then costs +inf instead of raising
    )  # fmt: skip
    param_scale = draw(st.sampled_from([0.1, 3.0, 30.0]))
    with torch.no_grad():
        for param in head.parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * param_scale)
    lengths = draw_lengths(draw, B, T, gen)
    labels = torch.randint(0, C, (B, T), generator=gen)
    return head, hidden.to(dtype), lengths, labels


def model_inputs(out: dict) -> list:
    """The head's model inputs, float64, in ``brute_force_streaming``'s argument order."""
    return [
        None if out[k] is None else out[k].detach().double()
        for k in ("cum_scores", "transition", "duration_bias")
    ] + [None if out[k] is None else out[k].detach().double() for k in ("proj_start", "proj_end")]


def expected_nll(labels, lengths, K, inputs, bf) -> torch.Tensor:
    """``log Z - score(gold)`` by enumeration, ``+inf`` where the gold is forbidden."""
    cum, trans, bias, ps, pe = inputs
    out = []
    for b in range(labels.shape[0]):
        L = int(lengths[b])
        segs = gold_segments(labels[b, :L].tolist(), K)
        gold = score_segmentation(
            cum[b], trans, bias, segs, None if ps is None else ps[b], None if pe is None else pe[b]
        )
        out.append(math.inf if gold == -math.inf else float(bf.log_partition[b]) - gold)
    return torch.tensor(out, dtype=F64)


@PROPERTY
@given(head_problems())
def test_head_backends_on_hostile_inputs(drawn) -> None:
    head, hidden, lengths, labels = drawn
    T = hidden.shape[1]
    K = head.max_duration
    out = head(hidden, lengths)
    cum, trans, bias, ps, pe = inputs = model_inputs(out)
    compute = out["cum_scores"].dtype
    assert compute == (F64 if hidden.dtype == F64 else torch.float32)
    bf = brute_force_streaming(cum, trans, bias, lengths, K, ps, pe)
    M = magnitude(*inputs)
    eps = torch.finfo(compute).eps
    expected = expected_nll(labels, lengths, K, inputs, bf)
    top = max(finite_max(bf.log_partition), finite_max(bf.viterbi_score), finite_max(expected))
    # Streaming: float64 inside, results (log Z, Viterbi score, NLL) rounded to the compute
    # dtype. Exact: edge sums in the compute dtype. Marginals: probabilities (<= 1) from the
    # float64 scan, each off by ~ eps64 T M relatively. Entropy: log Z - sum_i theta_i mu_i,
    # terms of size up to T M each off by that, hence ~ eps64 (T M)^2.
    tol = {
        "streaming": 2 * eps * (top + 1) + 64 * EPS64 * T * M,
        "exact": 4 * eps * T * M,
    }
    marg_tol = eps + 64 * EPS64 * T * M
    entropy_tol = eps * (float(bf.entropy.max()) + 1) + 4 * EPS64 * (T * M) ** 2

    # Partition: streaming and exact backends against enumeration.
    assert_scores(out["partition"], bf.log_partition, tol["streaming"])
    exact = head(hidden, lengths, backend="exact")["partition"]
    assert_scores(exact, bf.log_partition, tol["exact"])
    if hidden.dtype in (torch.bfloat16, torch.float16):
        # Half emissions are computed in float32: identical to float32 emissions of the
        # same values.
        assert torch.equal(out["partition"], head(hidden.float(), lengths)["partition"])

    # NLL: >= 0, +inf exactly for a forbidden gold, equal to log Z - gold score.
    for backend in ("streaming", "exact"):
        leaf = hidden.detach().clone().requires_grad_()
        head.zero_grad()
        nll = head.compute_loss(leaf, lengths, labels, backend=backend, reduction="none")
        assert not bool(torch.isnan(nll).any()), (backend, nll)
        assert torch.equal(torch.isinf(nll), torch.isinf(expected)), (backend, nll, expected)
        finite = torch.isfinite(expected)
        assert bool((nll[finite].double() >= -tol[backend]).all()), (backend, nll)
        error = (nll[finite].double() - expected[finite]).abs()
        assert error.numel() == 0 or float(error.max()) <= tol[backend], (backend, nll, expected)
        if bool(finite.any()):
            nll[finite].sum().backward()
            assert bool(torch.isfinite(leaf.grad.float()).all()), backend
            for name, param in head.named_parameters():
                assert param.grad is None or bool(torch.isfinite(param.grad).all()), name

    # Decoding: the Viterbi score, and a path that scores it.
    assert_scores(head.decode(hidden, lengths), bf.viterbi_score, tol["streaming"])
    result = head.decode_with_traceback(hidden, lengths)
    assert_scores(result.scores, bf.viterbi_score, tol["streaming"])
    for b, segments in enumerate(result.segments):
        if bf.log_partition[b] == -math.inf:
            assert segments == []
            continue
        segs = [(s.start, s.end, s.label) for s in segments]
        value = score_segmentation(
            cum[b], trans, bias, segs, None if ps is None else ps[b], None if pe is None else pe[b]
        )
        assert abs(value - float(bf.viterbi_score[b])) <= tol["streaming"]

    # Exact posteriors.
    position = head.compute_position_marginals(hidden, lengths)
    assert not bool(torch.isnan(position).any())
    assert float((position.double() - bf.position_marginals).abs().max()) <= marg_tol
    boundary = head.compute_boundary_marginals(hidden, lengths)
    assert float((boundary.double() - bf.boundary_marginals).abs().max()) <= marg_tol
    entropy = head.compute_entropy_streaming(hidden, lengths)
    assert not bool(torch.isnan(entropy).any())
    assert float((entropy.double() - bf.entropy).abs().max()) <= entropy_tol


# ============================================================================ parameters
@pytest.mark.parametrize("log_r", [10.0, 25.0, 100.0])
def test_negative_binomial_duration_is_accurate_for_large_r(log_r: float) -> None:
    from semicrf_nn import NegativeBinomialDuration

    K, logit = 6, 0.3
    bias = NegativeBinomialDuration(K, 1, init_logit=logit, init_log_r=log_r)()
    r = math.exp(log_r)
    log_q = -math.log1p(math.exp(logit))  # log(1 - p), p = sigmoid(logit)
    logits = [
        sum(math.log(r + j) for j in range(d - 1)) - math.lgamma(d) + (d - 1) * log_q
        for d in range(1, K + 1)
    ]
    top = max(logits)
    log_norm = top + math.log(sum(math.exp(v - top) for v in logits))
    expected = torch.tensor([v - log_norm for v in logits], dtype=F64)
    assert float((bias.detach().double()[:, 0] - expected).abs().max()) <= 1e-4
