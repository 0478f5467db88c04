"""The compiled CPU Viterbi (numba): the enumeration's argmax with its tie-break, and the very
same paths, scores and backpointer decisions as the PyTorch decoder."""

from __future__ import annotations

import math

import pytest
import torch

from semicrf_kernels import semi_crf_streaming_viterbi, set_cpu_path
from semicrf_kernels.testing.brute_force import brute_force_streaming
from semicrf_kernels.testing.reference import reference_viterbi
from semicrf_kernels.viterbi.pytorch import streaming_viterbi_pytorch

pytest.importorskip("semicrf_kernels.viterbi.numba")

CASES = [
    (1, 5, 3, 1, False, False, 0.0),
    (3, 6, 3, 2, False, True, 0.0),
    (2, 5, 1, 3, False, False, 0.0),
    (2, 4, 5, 6, False, True, 0.0),
    (3, 6, 3, 4, True, True, 0.0),
    (2, 5, 2, 2, True, False, 0.0),
    (3, 6, 3, 3, False, True, 0.3),
    (2, 5, 3, 7, True, False, 0.3),
]


@pytest.fixture(autouse=True)
def _numba_path():
    set_cpu_path("numba")
    yield
    set_cpu_path(None)


def decode(*args, **kwargs):
    return semi_crf_streaming_viterbi(*args, use_triton=False, **kwargs)


def segments_of(path, b: int) -> list[tuple[int, int, int]]:
    n = int(path.num_segments[b])
    return [
        (int(path.starts[b, i]), int(path.starts[b, i] + path.durations[b, i] - 1),
         int(path.labels[b, i]))
        for i in range(n)
    ]  # fmt: skip


def assert_same(path, expected) -> None:
    for name in expected._fields:
        assert torch.equal(getattr(path, name), getattr(expected, name)), name


@pytest.mark.parametrize(("B", "T", "C", "K", "per_duration", "proj", "forbid"), CASES)
def test_matches_brute_force(make_inputs, B, T, C, K, per_duration, proj, forbid) -> None:
    inp = make_inputs(B, T, C, K, per_duration=per_duration, proj=proj, forbid=forbid)
    bf = brute_force_streaming(*inp.args, **inp.kwargs)
    path = decode(*inp.args, **inp.kwargs)
    torch.testing.assert_close(path.scores, bf.viterbi_score, rtol=1e-10, atol=1e-10)
    for b in range(B):
        assert segments_of(path, b) == bf.viterbi_segments[b]


@pytest.mark.parametrize(
    ("per_duration", "proj", "K", "dtype"),
    [(False, True, 5, torch.float64), (True, True, 4, torch.float64),
     (False, False, 40, torch.float32), (True, False, 2, torch.float32)],
)  # fmt: skip
def test_equals_the_pytorch_decoder_and_the_reference(make_inputs, per_duration, proj, K, dtype):
    inp = make_inputs(3, 31, 5, K, per_duration=per_duration, proj=proj, forbid=0.15).to(dtype)
    path = decode(*inp.args, **inp.kwargs)
    assert_same(path, streaming_viterbi_pytorch(*inp.args, **inp.kwargs))
    if dtype == torch.float64:
        ref = reference_viterbi(*inp.args, **inp.kwargs)
        for name in ("starts", "durations", "labels", "num_segments"):
            assert torch.equal(getattr(path, name), getattr(ref, name)), name


@pytest.mark.parametrize("per_duration", [False, True])
def test_exact_ties_follow_the_convention(per_duration: bool) -> None:
    C, K, T = 3, 3, 6
    cum = torch.zeros(2, T + 1, C, dtype=torch.float64)
    trans = torch.zeros((K, C, C) if per_duration else (C, C), dtype=torch.float64)
    bias = torch.zeros(K, C, dtype=torch.float64)
    lengths = torch.tensor([6, 4])
    path = decode(cum, trans, bias, lengths, K)
    for b in range(2):
        assert segments_of(path, b) == [(t, t, 0) for t in range(int(lengths[b]))]


@pytest.mark.parametrize("per_duration", [False, True])
def test_twin_labels_tie_to_the_smaller_label(make_inputs, per_duration: bool) -> None:
    inp = make_inputs(3, 6, 3, 3, per_duration=per_duration, proj=True)
    cum, trans, bias, ps, pe = (
        x.clone()
        for x in (inp.cum_scores, inp.transition, inp.duration_bias, inp.proj_start, inp.proj_end)
    )
    for x in (cum, bias, ps, pe):
        x[..., 2] = x[..., 1]
    trans[..., 2] = trans[..., 1]
    trans[..., 2, :] = trans[..., 1, :]
    path = decode(cum, trans, bias, inp.lengths, 3, proj_start=ps, proj_end=pe)
    bf = brute_force_streaming(cum, trans, bias, inp.lengths, 3, ps, pe)
    for b in range(3):
        assert segments_of(path, b) == bf.viterbi_segments[b]
    assert not (path.labels == 2).any()


@pytest.mark.parametrize(
    ("B", "T", "C", "K", "per_duration", "lengths", "threads"),
    [(1, 75, 5, 70, False, None, 2), (1, 80, 3, 100, False, None, 3),
     (1, 70, 4, 40, True, None, 2), (1, 50, 3, 64, True, None, 4),
     (2, 77, 7, 66, False, [77, 40], 4), (2, 70, 5, 50, True, [70, 33], 4)],
)  # fmt: skip
def test_split_sequences_equal_the_pytorch_decoder(
    make_inputs, monkeypatch, B, T, C, K, per_duration, lengths, threads
) -> None:
    """One sequence's window split over several threads (the rule's work thresholds at their
    minimum): paths, scores and tie-breaks as the PyTorch decoder's, run after run."""
    from semicrf_kernels._shared import numba_support

    for name, value in (("MIN_STEP_WORK", 1), ("MIN_SEQUENCE_WORK", 0)):
        monkeypatch.setattr(numba_support, name, value)
    monkeypatch.setenv("SEMICRF_CPU_SPLIT", "1")  # opt-in
    inp = make_inputs(B, T, C, K, per_duration=per_duration, proj=True, forbid=0.2,
                      lengths=lengths)  # fmt: skip
    expected = streaming_viterbi_pytorch(*inp.args, **inp.kwargs)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        assert numba_support.split_parts(B, T, K, C, per_duration) > 1
        for _ in range(2):
            assert_same(decode(*inp.args, **inp.kwargs), expected)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("per_duration", [False, True])
def test_a_stalled_split_gives_the_pytorch_path(
    make_inputs, monkeypatch, stall_splits, per_duration
) -> None:
    """A split scan that stalls (its parts marked stalled from the start) runs again on one
    thread: the same paths."""
    from semicrf_kernels._shared import numba_support
    from semicrf_kernels.viterbi import numba as viterbi_numba

    for name, value in (("MIN_STEP_WORK", 1), ("MIN_SEQUENCE_WORK", 0)):
        monkeypatch.setattr(numba_support, name, value)
    monkeypatch.setenv("SEMICRF_CPU_SPLIT", "1")

    stall_splits(viterbi_numba)
    inp = make_inputs(1, 80, 5, 70, per_duration=per_duration, proj=True, forbid=0.2)
    expected = streaming_viterbi_pytorch(*inp.args, **inp.kwargs)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert_same(decode(*inp.args, **inp.kwargs), expected)
        assert numba_support._last_stall > float("-inf")
    finally:
        torch.set_num_threads(before)


def test_no_allowed_segmentation_gives_an_empty_path(make_inputs) -> None:
    inp = make_inputs(2, 5, 3, 2, lengths=[5, 2])
    trans = torch.full_like(inp.transition, -torch.inf)
    path = decode(inp.cum_scores, trans, inp.duration_bias, inp.lengths, 2)
    assert torch.all(path.scores == -math.inf) and torch.all(path.num_segments == 0)
    assert torch.all(path.starts == -1) and torch.all(path.segment_scores == 0)


def test_long_float32_path_equals_the_pytorch_decoder(make_inputs) -> None:
    T = 5000
    inp = make_inputs(2, T, 3, 6, proj=True, lengths=[T, T - 101]).to(torch.float32)
    assert_same(decode(*inp.args, **inp.kwargs), streaming_viterbi_pytorch(*inp.args, **inp.kwargs))
