"""The compiled CPU path (numba) of the log partition: against enumeration, the float64
reference and the PyTorch path (gradients included), padding, constraints, extreme scales,
determinism across threads (one sequence split over several included), torch.compile, the
fallback, and fork safety."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from _tiny_cases import TINY

from semicrf_kernels import semi_crf_streaming_forward, set_cpu_path, streaming_marginals
from semicrf_kernels._shared.inputs import prepare_inputs
from semicrf_kernels.constants import NEG_INF
from semicrf_kernels.logpartition.autograd import SemiCRFStreaming
from semicrf_kernels.logpartition.pytorch import _backward_scan, _forward_scan, _working_inputs
from semicrf_kernels.testing.brute_force import brute_force_streaming
from semicrf_kernels.testing.reference import reference_forward

numba_kernels = pytest.importorskip("semicrf_kernels.logpartition.numba")
from semicrf_kernels.logpartition.numba_backward import backward_numba  # noqa: E402

FLOATS = ("cum_scores", "transition", "duration_bias", "proj_start", "proj_end")


@pytest.fixture(autouse=True)
def _numba_path():
    set_cpu_path("numba")  # raises instead of silently running PyTorch
    yield
    set_cpu_path(None)


def working(inp):
    return _working_inputs(prepare_inputs(*inp.args, **inp.kwargs))


def value_and_grads(inp, weights=None, function=False):
    """log Z and the gradients of sum(weights * log Z): public API (compiled path) or
    ``SemiCRFStreaming`` on the PyTorch path."""
    leaves = {}
    for name in FLOATS:
        x = getattr(inp, name)
        leaves[name] = None if x is None else x.detach().clone().requires_grad_()
    args = (leaves["cum_scores"], leaves["transition"], leaves["duration_bias"], inp.lengths, inp.K)
    if function:  # SemiCRFStreaming on the PyTorch path (backward included)
        set_cpu_path("pytorch")
        try:
            value = SemiCRFStreaming.apply(*args, leaves["proj_start"], leaves["proj_end"])
            w = torch.ones_like(value) if weights is None else weights
            present = {k: v for k, v in leaves.items() if v is not None}
            grads = torch.autograd.grad((value * w).sum(), list(present.values()))
        finally:
            set_cpu_path("numba")
        return value.detach(), dict(zip(present, grads))
    else:
        value = semi_crf_streaming_forward(
            *args, use_triton=False, proj_start=leaves["proj_start"], proj_end=leaves["proj_end"]
        )
    w = torch.ones_like(value) if weights is None else weights
    present = {k: v for k, v in leaves.items() if v is not None}
    grads = torch.autograd.grad((value * w).sum(), list(present.values()))
    return value.detach(), dict(zip(present, grads))


@pytest.mark.parametrize(("B", "T", "C", "K", "per_duration", "proj", "forbid"), TINY)
def test_matches_brute_force(make_inputs, B, T, C, K, per_duration, proj, forbid) -> None:
    inp = make_inputs(B, T, C, K, per_duration=per_duration, proj=proj, forbid=forbid)
    bf = brute_force_streaming(*inp.args, **inp.kwargs)
    tol = {"rtol": 1e-10, "atol": 1e-10}
    log_z = semi_crf_streaming_forward(*inp.args, use_triton=False, **inp.kwargs)
    torch.testing.assert_close(log_z, bf.log_partition, **tol)
    with torch.no_grad():
        score = semi_crf_streaming_forward(*inp.args, "max", use_triton=False, **inp.kwargs)
    torch.testing.assert_close(score, bf.viterbi_score, **tol)
    marg = streaming_marginals(*inp.args, **inp.kwargs)
    torch.testing.assert_close(marg.log_partition, bf.log_partition, **tol)
    torch.testing.assert_close(marg.position, bf.position_marginals, **tol)
    torch.testing.assert_close(marg.boundary, bf.boundary_marginals, **tol)
    torch.testing.assert_close(marg.entropy, bf.entropy, **tol)


@pytest.mark.parametrize(
    ("B", "T", "C", "K", "per_duration", "proj"),
    [(3, 23, 5, 6, False, True), (2, 17, 3, 1, False, False), (3, 19, 3, 25, True, True),
     (1, 11, 7, 2, True, False)],
)  # fmt: skip
def test_matches_float64_reference(make_inputs, B, T, C, K, per_duration, proj) -> None:
    inp = make_inputs(B, T, C, K, per_duration=per_duration, proj=proj, forbid=0.1)
    for semiring in ("log", "max"):
        with torch.no_grad():
            got = semi_crf_streaming_forward(*inp.args, semiring, use_triton=False, **inp.kwargs)
        expected = reference_forward(*inp.args, semiring, **inp.kwargs)
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    ("B", "T", "C", "K", "per_duration", "proj", "forbid"),
    [(3, 31, 5, 6, False, True, 0.2), (2, 17, 3, 1, False, True, 0.0),
     (3, 9, 3, 2, True, True, 0.2), (2, 8, 4, 12, False, False, 0.3),
     (3, 13, 3, 5, True, False, 0.3), (4, 40, 7, 9, False, True, 0.5)],
)  # fmt: skip
def test_gradients_match_the_pytorch_path(make_inputs, B, T, C, K, per_duration, proj, forbid):
    inp = make_inputs(B, T, C, K, per_duration=per_duration, proj=proj, forbid=forbid)
    weights = torch.randn(B, dtype=torch.float64)
    value, grads = value_and_grads(inp, weights)
    ref_value, ref_grads = value_and_grads(inp, weights, function=True)
    torch.testing.assert_close(value, ref_value, rtol=1e-11, atol=1e-11)
    assert grads.keys() == ref_grads.keys()
    for name in grads:
        torch.testing.assert_close(grads[name], ref_grads[name], rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize(("per_duration", "K"), [(False, 3), (True, 4), (False, 9)])
def test_gradcheck(make_inputs, per_duration, K) -> None:
    inp = make_inputs(3, 7, 3, K, per_duration=per_duration, proj=True, lengths=[7, 4, 1],
                      forbid=0.15)  # fmt: skip
    leaves = [getattr(inp, n).detach().clone().requires_grad_() for n in FLOATS]

    def fn(cum, trans, bias, ps, pe):
        return semi_crf_streaming_forward(cum, trans, bias, inp.lengths, inp.K, use_triton=False,
                                          proj_start=ps, proj_end=pe)  # fmt: skip

    assert torch.autograd.gradcheck(fn, leaves, eps=1e-6, atol=1e-7, rtol=1e-6)


def test_padding_is_inert_and_gets_zero_gradients(make_inputs) -> None:
    inp = make_inputs(3, 9, 3, 4, proj=True, lengths=[9, 5, 2])
    noisy = inp._replace(cum_scores=inp.cum_scores.clone(), proj_start=inp.proj_start.clone(),
                         proj_end=inp.proj_end.clone())  # fmt: skip
    for b, L in enumerate([9, 5, 2]):
        noisy.cum_scores[b, L + 1 :] = 1e30
        noisy.proj_start[b, L:] = 1e30
        noisy.proj_end[b, L:] = -1e30
    value, grads = value_and_grads(noisy)
    clean_value, clean_grads = value_and_grads(inp)
    torch.testing.assert_close(value, clean_value, rtol=0, atol=0)
    for name in grads:
        torch.testing.assert_close(grads[name], clean_grads[name], rtol=0, atol=0)
    for b, L in enumerate([9, 5, 2]):
        assert torch.all(grads["cum_scores"][b, L + 1 :] == 0)
        assert torch.all(grads["proj_start"][b, L:] == 0)
        assert torch.all(grads["proj_end"][b, L:] == 0)


def test_no_allowed_segmentation_is_minus_inf_with_zero_gradients(make_inputs) -> None:
    inp = make_inputs(3, 6, 3, 3, proj=True, lengths=[6, 4, 2])
    bias = inp.duration_bias.clone()
    bias[:, 1:] = -torch.inf
    trans = inp.transition.clone()
    trans[:, 0] = NEG_INF  # label 0 cannot be entered: nothing is allowed at all
    value, grads = value_and_grads(inp._replace(transition=trans, duration_bias=bias))
    assert torch.all(value == -math.inf)
    for g in grads.values():
        assert torch.all(g == 0) and not torch.isnan(g).any()


@pytest.mark.parametrize("per_duration", [False, True])
def test_extreme_scales_match_the_pytorch_path(make_inputs, per_duration) -> None:
    # Large emissions, forbidden transitions and long windows move the per-label shifts, flush
    # entries and force exact rebuilds: the scaled sums must still equal the log-space scan.
    T = 300
    inp = make_inputs(3, T, 5, 40, per_duration=per_duration, proj=True, forbid=0.5, scale=60.0,
                      lengths=[T, T - 17, 45])  # fmt: skip
    w = working(inp)
    ref = _forward_scan(w, "log")
    log_z, alpha, start_part = numba_kernels.forward_numba(w)
    torch.testing.assert_close(log_z, ref.log_z, rtol=1e-12, atol=0)
    state = ref._replace(log_z=log_z, alpha=alpha, start_part=start_part)
    got, expected = backward_numba(w, state), _backward_scan(w, ref)
    for name in ("p_start", "p_end", "bias_marg", "trans_marg", "first_marg", "first_mu"):
        a, b = getattr(got, name), getattr(expected, name)
        if name in ("p_start", "p_end"):
            valid = torch.arange(T + 1)[None, :, None] <= w.lengths[:, None, None]
            b = torch.where(valid, b, 0.0)
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10, msg=name)


def test_a_label_reached_only_through_an_improbable_one(make_inputs) -> None:
    # Label 2 can only follow label 1, whose forward value is ~e^-900 below label 0's for a
    # while: its link underflows in scaled space and must be rebuilt exactly, since label 2's
    # huge later emissions make that path the dominant one.
    T, C = 60, 3
    inp = make_inputs(1, T, C, 4, lengths=[T])
    emissions = torch.zeros(1, T, C, dtype=torch.float64)
    emissions[0, :30, 0] = 40.0
    emissions[0, 30:, 2] = 80.0
    cum = torch.nn.functional.pad(emissions.cumsum(1), (0, 0, 1, 0))
    trans = torch.zeros(C, C, dtype=torch.float64)
    trans[0, 2] = trans[2, 0] = -torch.inf
    inp = inp._replace(cum_scores=cum, transition=trans)
    value, grads = value_and_grads(inp)
    ref_value, ref_grads = value_and_grads(inp, function=True)
    torch.testing.assert_close(value, ref_value, rtol=1e-13, atol=0)
    for name in grads:
        torch.testing.assert_close(grads[name], ref_grads[name], rtol=1e-9, atol=1e-12)


def test_wide_parameter_spread_runs_the_pytorch_path(make_inputs) -> None:
    inp = make_inputs(2, 12, 3, 3, proj=True)
    trans = inp.transition.clone()
    trans[0, 1] = -1e4  # allowed, but 1e4 below the rest: outside the scaled sums' range
    inp = inp._replace(transition=trans)
    assert not numba_kernels.scaled_ok(working(inp))
    from semicrf_kernels._shared import numba_support

    numba_support._warned_span = False
    with pytest.warns(RuntimeWarning, match="write forbidden entries as -inf"):
        value, grads = value_and_grads(inp)
    ref_value, ref_grads = value_and_grads(inp, function=True)
    assert torch.equal(value, ref_value)
    for name in grads:
        assert torch.equal(grads[name], ref_grads[name])


def test_float32_inputs_keep_their_dtype(make_inputs) -> None:
    inp = make_inputs(2, 30, 4, 5, proj=True).to(torch.float32)
    value, grads = value_and_grads(inp)
    ref_value, ref_grads = value_and_grads(inp, function=True)
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, ref_value, rtol=1e-6, atol=1e-6)
    for name in grads:
        assert grads[name].dtype == torch.float32
        torch.testing.assert_close(grads[name], ref_grads[name], rtol=1e-5, atol=1e-6)


def test_bitwise_deterministic_whatever_the_thread_count(make_inputs) -> None:
    inp = make_inputs(5, 50, 4, 6, per_duration=False, proj=True, forbid=0.2)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = value_and_grads(inp)
        torch.set_num_threads(2)
        two = value_and_grads(inp)
        again = value_and_grads(inp)
    finally:
        torch.set_num_threads(threads)
    for run in (two, again):
        assert torch.equal(run[0], one[0])
        for name in one[1]:
            assert torch.equal(run[1][name], one[1][name])


@pytest.fixture
def split_small(monkeypatch: pytest.MonkeyPatch):
    """Split even small sequences over the threads (the rule's work thresholds at their
    minimum; a split still needs a window of several blocks of 32 durations)."""
    from semicrf_kernels._shared import numba_support

    monkeypatch.setattr(numba_support, "MIN_STEP_WORK", 1)
    monkeypatch.setattr(numba_support, "MIN_SEQUENCE_WORK", 0)
    monkeypatch.setenv("SEMICRF_CPU_SPLIT", "1")  # opt-in
    threads = torch.get_num_threads()
    yield numba_support.split_parts
    torch.set_num_threads(threads)


# (B, T, C, K, per_duration, proj, forbid, lengths, threads, parts per sequence): one sequence
# over 2-3 threads, K > T, parts capped by the window's blocks, K = 1 and K = 2 (one block: not
# split), two sequences of different lengths over 2 threads each.
SPLIT = [
    (1, 75, 5, 70, False, True, 0.2, None, 2, 2),
    (1, 80, 3, 100, False, False, 0.0, None, 3, 3),
    (1, 70, 4, 40, True, True, 0.2, None, 2, 2),
    (1, 50, 3, 64, True, False, 0.3, None, 4, 2),
    (1, 9, 3, 1, False, True, 0.0, None, 2, 1),
    (1, 9, 5, 2, True, True, 0.0, None, 2, 1),
    (2, 77, 7, 66, False, True, 0.2, [77, 40], 4, 2),
    (2, 70, 5, 50, True, True, 0.0, [70, 33], 4, 2),
]


@pytest.mark.parametrize(("B", "T", "C", "K", "per_duration", "proj", "forbid", "lengths",
                          "threads", "parts"), SPLIT)  # fmt: skip
def test_split_sequences_equal_one_thread_bitwise(
    make_inputs, split_small, B, T, C, K, per_duration, proj, forbid, lengths, threads, parts
) -> None:
    inp = make_inputs(B, T, C, K, per_duration=per_duration, proj=proj, forbid=forbid,
                      lengths=lengths)  # fmt: skip
    weights = torch.randn(B, dtype=torch.float64)
    torch.set_num_threads(1)
    one = value_and_grads(inp, weights)
    one_max = semi_crf_streaming_forward(*inp.args, "max", use_triton=False, **inp.kwargs)
    torch.set_num_threads(threads)
    assert split_small(B, T, K, C, per_duration) == parts
    for _ in range(2):  # and the same run to run
        value, grads = value_and_grads(inp, weights)
        assert torch.equal(value, one[0])
        for name in one[1]:
            assert torch.equal(grads[name], one[1][name]), name
        score = semi_crf_streaming_forward(*inp.args, "max", use_triton=False, **inp.kwargs)
        assert torch.equal(score, one_max)
    expected = reference_forward(*inp.args, **inp.kwargs)
    torch.testing.assert_close(value, expected, rtol=1e-10, atol=1e-10)
    _, ref_grads = value_and_grads(inp, weights, function=True)
    for name in grads:
        torch.testing.assert_close(grads[name], ref_grads[name], rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("per_duration", [False, True])
def test_a_stalled_split_gives_the_one_thread_bits(
    make_inputs, split_small, stall_splits, monkeypatch, per_duration
) -> None:
    from semicrf_kernels._shared import numba_support
    from semicrf_kernels.logpartition import numba_backward
    from semicrf_kernels.viterbi import numba as viterbi_numba

    inp = make_inputs(1, 70, 4, 66, per_duration=per_duration, proj=True, forbid=0.2)
    weights = torch.randn(1, dtype=torch.float64)
    torch.set_num_threads(1)
    one = value_and_grads(inp, weights)
    one_max = semi_crf_streaming_forward(*inp.args, "max", use_triton=False, **inp.kwargs)
    torch.set_num_threads(2)
    assert split_small(1, 70, 66, 4, per_duration) == 2
    stall_splits(numba_kernels, numba_backward, viterbi_numba)
    # every scan of the call splits (and stalls), the backward's too: no hold after a stall
    monkeypatch.setattr(numba_support, "STALL_HOLD_S", -1.0)
    value, grads = value_and_grads(inp, weights)
    score = semi_crf_streaming_forward(*inp.args, "max", use_triton=False, **inp.kwargs)
    assert numba_support._last_stall > float("-inf")  # the stalls happened and were noted
    assert torch.equal(value, one[0])
    for name in one[1]:
        assert torch.equal(grads[name], one[1][name]), name
    assert torch.equal(score, one_max)


def test_torch_compile_fullgraph(make_inputs) -> None:
    inp = make_inputs(2, 10, 3, 3, proj=True)

    def loss(cum, trans, bias, ps, pe):
        return semi_crf_streaming_forward(cum, trans, bias, inp.lengths, inp.K, use_triton=False,
                                          proj_start=ps, proj_end=pe).sum()  # fmt: skip

    compiled = torch.compile(loss, backend="aot_eager", fullgraph=True)
    eager_leaves = [getattr(inp, n).detach().clone().requires_grad_() for n in FLOATS]
    leaves = [getattr(inp, n).detach().clone().requires_grad_() for n in FLOATS]
    expected = loss(*eager_leaves)
    expected.backward()
    got = compiled(*leaves)
    got.backward()
    assert torch.equal(got, expected)
    for a, b in zip(leaves, eager_leaves):
        assert torch.equal(a.grad, b.grad)


def _python(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
        timeout=300, env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_without_numba_the_pytorch_path_runs_with_one_warning() -> None:
    result = _python(
        """
        import sys, warnings
        sys.modules["numba"] = None  # import numba now raises ImportError
        import torch
        from semicrf_kernels import SemiCRFStreaming, cpu_path, semi_crf_streaming_forward
        cum = torch.randn(2, 9, 3, dtype=torch.float64).cumsum(1)
        args = (cum, torch.randn(3, 3, dtype=torch.float64),
                torch.randn(4, 3, dtype=torch.float64), torch.tensor([8, 5]), 4)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            a = semi_crf_streaming_forward(*args, use_triton=False)
            b = semi_crf_streaming_forward(*args, use_triton=False)
        assert sum("compiled CPU path is unavailable" in str(w.message) for w in caught) == 1
        assert cpu_path() == "pytorch"
        assert torch.equal(a, SemiCRFStreaming.apply(*args)) and torch.equal(a, b)
        print("ok")
        """,
        env={"SEMICRF_CPU_PATH": "auto"},
    )
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


def test_forked_workers_run_the_compiled_path() -> None:
    result = _python(
        """
        import multiprocessing as mp
        import torch
        from semicrf_kernels import semi_crf_streaming_forward
        torch.manual_seed(0)
        cum = torch.randn(4, 41, 5, dtype=torch.float64).cumsum(1)
        args = (cum, torch.randn(5, 5, dtype=torch.float64),
                torch.randn(6, 5, dtype=torch.float64), torch.tensor([40, 31, 9, 40]), 6)
        torch.set_num_threads(2)
        parent = semi_crf_streaming_forward(*args, use_triton=False)  # threads started here

        def child(_):
            return semi_crf_streaming_forward(*args, use_triton=False)

        with mp.get_context("fork").Pool(2) as pool:
            results = pool.map(child, range(4), chunksize=1)
        assert all(torch.equal(r, parent) for r in results)
        print("ok")
        """,
        env={"SEMICRF_CPU_PATH": "numba"},
    )
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


def test_the_path_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="path: expected one of"):
        set_cpu_path("fast")
    set_cpu_path(None)
    monkeypatch.setenv("SEMICRF_CPU_PATH", "gpu")
    with pytest.raises(ValueError, match="SEMICRF_CPU_PATH: expected one of"):
        semi_crf_streaming_forward(torch.zeros(1, 3, 2), torch.zeros(2, 2), torch.zeros(2, 2),
                                   torch.tensor([2]), 2, use_triton=False)  # fmt: skip


@pytest.mark.parametrize("seed", range(6))
def test_hostile_scales_with_forbidden_durations_match_brute_force(seed) -> None:
    # Emissions of 1e4 (one-hot: exact ties) with forbidden durations and transitions: the
    # largest ring entries can sit at forbidden durations, so the windows fall back to exact
    # log-space sums; values, marginals and gradients must stay those of the enumeration.
    gen = torch.Generator().manual_seed(seed)
    B, T, C, K = 3, 5, 3, 4
    labels = torch.randint(0, C, (B, T), generator=gen)
    emissions = torch.nn.functional.one_hot(labels, C).double() * 1e4
    if seed % 2:
        emissions = torch.randn(B, T, C, generator=gen, dtype=torch.float64) * 1e4
    cum = torch.nn.functional.pad(emissions.cumsum(1), (0, 0, 1, 0))
    trans = torch.randn(C, C, generator=gen, dtype=torch.float64)
    trans[torch.rand(C, C, generator=gen) < 0.3] = -torch.inf
    bias = torch.randn(K, C, generator=gen, dtype=torch.float64)
    bias[torch.rand(K, C, generator=gen) < 0.4] = NEG_INF
    lengths = torch.tensor([T, 3, 4])
    bf = brute_force_streaming(cum, trans, bias, lengths, K)
    leaf = cum.clone().requires_grad_()
    log_z = semi_crf_streaming_forward(leaf, trans, bias, lengths, K, use_triton=False)
    assert not torch.isnan(log_z).any()
    assert torch.equal(log_z == -math.inf, bf.log_partition == -math.inf)
    alive = bf.log_partition > -math.inf
    torch.testing.assert_close(log_z[alive], bf.log_partition[alive], rtol=1e-12, atol=1e-9)
    (grad,) = torch.autograd.grad(log_z[alive].sum(), leaf)
    position = grad.flip(1).cumsum(1).flip(1)[:, 1:]  # d log Z / d emission
    torch.testing.assert_close(position[alive], bf.position_marginals[alive], rtol=0, atol=1e-9)
    marg = streaming_marginals(cum, trans, bias, lengths, K)
    torch.testing.assert_close(
        marg.position[alive], bf.position_marginals[alive], rtol=0, atol=1e-9
    )
