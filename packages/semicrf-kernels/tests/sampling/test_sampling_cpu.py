"""Tests of the CPU samplers, ``sampling/pytorch.py`` (the reference) and ``sampling/numba.py``
(compiled, the default on the CPU): exact samples against the enumerated distribution. Every
test runs once per CPU path (``set_cpu_path``)."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
from _enumerate import ALPHA, chi_square_pvalue, log_partition, scored_segmentations

from semicrf_kernels import set_cpu_path
from semicrf_kernels.sampling import semi_crf_streaming_sample
from semicrf_kernels.sampling.pytorch import draw_categorical
from semicrf_kernels.testing.brute_force import brute_force_streaming

#: (B, T, C, K, lengths, per_duration, proj, forbid)
CASES = [
    (2, 5, 2, 3, [5, 3], False, False, 0.0),
    (2, 4, 3, 2, [4, 2], False, True, 0.0),
    (2, 4, 3, 3, [4, 3], True, True, 0.0),
    (2, 5, 2, 2, [5, 4], True, False, 0.3),
    (2, 5, 3, 3, [5, 2], False, True, 0.4),
    (1, 4, 3, 1, None, False, False, 0.0),
    (2, 3, 2, 6, [3, 2], False, False, 0.0),
]

#: Draws per sequence: enough that every bin but the pooled tail expects >= 5 counts.
DRAWS = 4000


@pytest.fixture(autouse=True, params=["pytorch", "numba"])
def cpu_path(request):
    set_cpu_path(request.param)  # "numba" raises rather than silently running PyTorch
    yield request.param
    set_cpu_path(None)


@pytest.mark.parametrize(("B", "T", "C", "K", "lengths", "per_duration", "proj", "forbid"), CASES)
def test_sample_frequencies_match_enumeration(
    make_inputs, B, T, C, K, lengths, per_duration, proj, forbid
) -> None:
    inp = make_inputs(
        B=B, T=T, C=C, K=K, lengths=lengths, per_duration=per_duration, proj=proj, forbid=forbid
    )
    gen = torch.Generator().manual_seed(1234)
    seg = semi_crf_streaming_sample(*inp.args, DRAWS, **inp.kwargs, generator=gen)
    assert seg.labels.shape == (DRAWS, B, T) and seg.starts.shape == (DRAWS, B, T)
    assert seg.scores.shape == (DRAWS, B)
    for b in range(B):
        paths = scored_segmentations(inp, b)
        log_z = log_partition(paths)
        probs = {p.key(T): math.exp(p.score - log_z) for p in paths}
        score_of = {p.key(T): p.score for p in paths}
        keys = [
            (tuple(seg.labels[i, b].tolist()), tuple(seg.starts[i, b].tolist()))
            for i in range(DRAWS)
        ]
        counts = Counter(keys)
        assert set(counts) <= set(probs), "a sample outside the model's support"
        for i in range(0, DRAWS, 97):
            assert float(seg.scores[i, b]) == pytest.approx(score_of[keys[i]], rel=1e-10, abs=1e-10)
        assert chi_square_pvalue(counts, probs, DRAWS) > ALPHA


def test_chi_square_detects_a_wrong_distribution(make_inputs) -> None:
    # The test statistic must reject samples drawn from a different model.
    inp = make_inputs(B=1, T=4, C=2, K=2, lengths=[4])
    other = inp._replace(duration_bias=inp.duration_bias + torch.tensor([[0.0], [1.0]]))
    gen = torch.Generator().manual_seed(5)
    seg = semi_crf_streaming_sample(*other.args, DRAWS, generator=gen)
    paths = scored_segmentations(inp, 0)
    log_z = log_partition(paths)
    probs = {p.key(4): math.exp(p.score - log_z) for p in paths}
    counts = Counter(
        (tuple(seg.labels[i, 0].tolist()), tuple(seg.starts[i, 0].tolist())) for i in range(DRAWS)
    )
    assert chi_square_pvalue(counts, probs, DRAWS) < ALPHA


def test_sampling_is_reproducible(make_inputs) -> None:
    inp = make_inputs(B=3, T=12, C=4, K=5, proj=True)
    one = semi_crf_streaming_sample(
        *inp.args, 7, **inp.kwargs, generator=torch.Generator().manual_seed(9)
    )
    two = semi_crf_streaming_sample(
        *inp.args, 7, **inp.kwargs, generator=torch.Generator().manual_seed(9)
    )
    three = semi_crf_streaming_sample(
        *inp.args, 7, **inp.kwargs, generator=torch.Generator().manual_seed(10)
    )
    assert torch.equal(one.labels, two.labels) and torch.equal(one.starts, two.starts)
    assert not torch.equal(one.labels, three.labels)


def test_padding_and_dtype(make_inputs) -> None:
    inp = make_inputs(B=3, T=9, C=3, K=4, lengths=[9, 4, 1], dtype=torch.float32)
    seg = semi_crf_streaming_sample(*inp.args, 5)
    assert seg.scores.dtype == torch.float32 and seg.labels.dtype == torch.int64
    for b, L in enumerate([9, 4, 1]):
        assert (seg.labels[:, b, L:] == -1).all() and not seg.starts[:, b, L:].any()
        assert (seg.labels[:, b, :L] >= 0).all() and seg.starts[:, b, 0].all()


def test_sequence_without_segmentation(make_inputs) -> None:
    inp = make_inputs(B=2, T=3, C=2, K=1, lengths=[3, 3])
    # Label 1 can never be entered, and label 0 has duration 1 forbidden: nothing is allowed.
    trans = inp.transition.clone()
    trans[:, 1] = -torch.inf
    bias = inp.duration_bias.clone()
    bias[0, 0] = -torch.inf
    seg = semi_crf_streaming_sample(inp.cum_scores, trans, bias, inp.lengths, 1, 3)
    assert (
        brute_force_streaming(inp.cum_scores, trans, bias, inp.lengths, 1).log_partition[0]
        == -math.inf
    )
    assert (seg.labels == -1).all() and not seg.starts.any()
    assert (seg.scores == -math.inf).all()


def test_draw_categorical_never_picks_forbidden() -> None:
    logits = torch.tensor([[-math.inf, 0.0, -math.inf, 0.0]] * 2000, dtype=torch.float64)
    picks = draw_categorical(logits, torch.Generator().manual_seed(0))
    assert set(picks.tolist()) == {1, 3}


def test_bad_arguments(make_inputs) -> None:
    inp = make_inputs(B=1, T=4, C=2, K=2)
    with pytest.raises(ValueError, match="num_samples"):
        semi_crf_streaming_sample(*inp.args, 0)
    with pytest.raises(TypeError, match="num_samples"):
        semi_crf_streaming_sample(*inp.args, 2.0)
    with pytest.raises(TypeError, match="generator"):
        semi_crf_streaming_sample(*inp.args, 2, generator=3)
    with pytest.raises(ValueError, match="lengths"):
        semi_crf_streaming_sample(*inp._replace(lengths=torch.tensor([5])).args, 2)
