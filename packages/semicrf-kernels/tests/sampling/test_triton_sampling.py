"""Tests of the Triton sampler (``sampling/triton.py``) against the enumerated distribution.

The same chi-square test as ``test_sampling_cpu.py``: the Triton and CPU samplers agree
in distribution (not draw by draw). Runs on the CPU under ``TRITON_INTERPRET=1`` (fewer draws:
the interpreter is slow) and natively on a CUDA machine.
"""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
from _enumerate import ALPHA, chi_square_pvalue, log_partition, scored_segmentations
from _triton_env import DEVICE, ON_CUDA, TRITON_MARKS

from semicrf_kernels._shared.triton_support import HAS_TRITON
from semicrf_kernels.sampling import semi_crf_streaming_sample

pytestmark = TRITON_MARKS

if HAS_TRITON:
    from semicrf_kernels.sampling.triton import streaming_sample_triton

DRAWS = 4000 if ON_CUDA else 1000

#: (B, T, C, K, lengths, per_duration, proj, forbid)
CASES = [
    (2, 5, 2, 3, [5, 3], False, True, 0.0),
    (2, 4, 3, 3, [4, 3], True, True, 0.2),
    (2, 4, 3, 2, [4, 2], False, False, 0.4),
    (1, 3, 2, 5, None, True, False, 0.0),
]


@pytest.mark.parametrize(("B", "T", "C", "K", "lengths", "per_duration", "proj", "forbid"), CASES)
def test_triton_samples_match_enumeration(
    make_inputs, B, T, C, K, lengths, per_duration, proj, forbid
) -> None:
    inp = make_inputs(
        B=B, T=T, C=C, K=K, lengths=lengths, per_duration=per_duration, proj=proj, forbid=forbid,
        dtype=torch.float32,
    )  # fmt: skip
    cum, trans, bias, lens, _, ps, pe = (
        x.to(DEVICE) if isinstance(x, torch.Tensor) else x for x in inp
    )
    gen = torch.Generator(device=DEVICE).manual_seed(4321)
    seg = streaming_sample_triton(cum, trans, bias, lens, K, DRAWS, ps, pe, generator=gen)
    assert seg.labels.shape == (DRAWS, B, T) and seg.scores.dtype == torch.float32
    for b in range(B):
        paths = scored_segmentations(inp, b)
        log_z = log_partition(paths)
        probs = {p.key(T): math.exp(p.score - log_z) for p in paths}
        keys = [
            (tuple(seg.labels[i, b].tolist()), tuple(seg.starts[i, b].tolist()))
            for i in range(DRAWS)
        ]
        counts = Counter(keys)
        assert set(counts) <= set(probs), "a sample outside the model's support"
        assert chi_square_pvalue(counts, probs, DRAWS) > ALPHA


def test_triton_sampler_is_reproducible_and_dispatched(make_inputs) -> None:
    inp = make_inputs(B=2, T=7, C=3, K=3, dtype=torch.float32)
    args = [x.to(DEVICE) for x in inp.args[:4]]
    one = semi_crf_streaming_sample(*args, 3, 5, generator=torch.Generator(DEVICE).manual_seed(1))
    two = semi_crf_streaming_sample(*args, 3, 5, generator=torch.Generator(DEVICE).manual_seed(1))
    assert torch.equal(one.labels, two.labels) and torch.equal(one.starts, two.starts)
    for b in range(2):
        L = int(inp.lengths[b])
        assert (one.labels[:, b, L:] == -1).all() and one.starts[:, b, 0].all()


@pytest.mark.parametrize("per_duration", [False, True])
def test_triton_draws_do_not_depend_on_rows_per_program(make_inputs, monkeypatch, per_duration):
    """The rows a program draws together follow the multiprocessor count; the draws do not."""
    from semicrf_kernels.sampling import triton as sampling_triton

    inp = make_inputs(B=2, T=9, C=3, K=4, lengths=[9, 6], per_duration=per_duration, proj=True)
    args = [x.to(DEVICE) for x in inp.args[:4]]
    ps, pe = inp.proj_start.to(DEVICE), inp.proj_end.to(DEVICE)
    runs = []
    for sms in (1, 3, 64):  # 16 rows: 16, 4 and 1 rows a program
        monkeypatch.setattr(sampling_triton, "num_sms", lambda device, sms=sms: sms)
        gen = torch.Generator(DEVICE).manual_seed(7)
        runs.append(streaming_sample_triton(*args, 4, 8, ps, pe, generator=gen))
    for run in runs[1:]:
        assert torch.equal(run.labels, runs[0].labels)
        assert torch.equal(run.starts, runs[0].starts)
        assert torch.equal(run.scores, runs[0].scores)


def test_triton_sampler_no_segmentation(make_inputs) -> None:
    inp = make_inputs(B=2, T=3, C=2, K=1, lengths=[3, 3], dtype=torch.float32)
    trans = inp.transition.clone()
    trans[:, 1] = -torch.inf
    bias = inp.duration_bias.clone()
    bias[0, 0] = -torch.inf
    seg = streaming_sample_triton(
        inp.cum_scores.to(DEVICE), trans.to(DEVICE), bias.to(DEVICE), inp.lengths.to(DEVICE), 1, 2
    )
    assert (seg.labels == -1).all() and not seg.starts.any() and (seg.scores == -math.inf).all()


@pytest.mark.parametrize("per_duration", [False, True])
@pytest.mark.parametrize("proj", [False, True])
def test_triton_labels_and_scores_match_the_reference_scorer(make_inputs, per_duration, proj):
    """The kernel writes each segment's labels and float64 score itself: both must equal what
    the per-position reference (labels filled from the starts, ``score_segmentation_tensors``
    in float64) gives for the same draws, K > T and lengths ending early included."""
    from semicrf_kernels.sampling.pytorch import _fill_labels
    from semicrf_kernels.segmentation import Segmentation
    from semicrf_kernels.segmentation_score import score_segmentation_tensors

    inp = make_inputs(
        B=3, T=11, C=5, K=13, lengths=[11, 7, 1], per_duration=per_duration, proj=proj,
        forbid=0.2, dtype=torch.float32,
    )  # fmt: skip
    cum, trans, bias, lens, _, ps, pe = (
        x.to(DEVICE) if isinstance(x, torch.Tensor) else x for x in inp
    )
    gen = torch.Generator(device=DEVICE).manual_seed(11)
    seg = streaming_sample_triton(cum, trans, bias, lens, 13, 40, ps, pe, generator=gen)
    alive = torch.isfinite(seg.scores)
    assert alive.any()
    label_at = torch.where(seg.starts, seg.labels, 0)
    filled = _fill_labels(seg.starts, label_at)
    valid = (torch.arange(11, device=DEVICE) < lens[:, None]) & alive[..., None]
    assert torch.equal(seg.labels, torch.where(valid, filled, -1))
    f64 = [x.double() if x is not None else None for x in (cum, trans, bias, ps, pe)]
    expected = score_segmentation_tensors(
        f64[0], f64[1], f64[2], lens, Segmentation(seg.labels, seg.starts, None),
        proj_start=f64[3], proj_end=f64[4],
    )  # fmt: skip
    expected = torch.where(alive, expected, -math.inf)
    torch.testing.assert_close(seg.scores.double(), expected, rtol=1e-6, atol=1e-6)
