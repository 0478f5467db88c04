"""Tests of the Triton top-k (``topk/triton.py``): bit for bit the PyTorch path's result.

The PyTorch path is tested against enumeration (``test_topk_pytorch.py``); here the Triton
kernels must return exactly the same segmentations and scores, ties included. Runs on the CPU
under ``TRITON_INTERPRET=1`` and natively on a CUDA machine.
"""

from __future__ import annotations

import pytest
import torch
from _triton_env import DEVICE, TRITON_MARKS

from semicrf_kernels._shared.triton_support import HAS_TRITON
from semicrf_kernels.topk import semi_crf_streaming_topk
from semicrf_kernels.topk.pytorch import streaming_topk_pytorch
from semicrf_kernels.viterbi.pytorch import streaming_viterbi_pytorch

pytestmark = TRITON_MARKS

if HAS_TRITON:
    from semicrf_kernels.topk.triton import streaming_topk_triton

#: (B, T, C, K, lengths, per_duration, proj, forbid)
CASES = [
    (2, 7, 3, 3, [7, 4], False, True, 0.0),
    (2, 6, 3, 3, [6, 3], True, True, 0.2),
    (2, 6, 5, 2, [6, 1], False, False, 0.4),
    (1, 5, 1, 1, None, False, False, 0.0),
    (2, 4, 2, 6, [4, 2], True, False, 0.0),
]


def _on(inp):
    return [x.to(DEVICE) if isinstance(x, torch.Tensor) else x for x in inp]


@pytest.mark.parametrize(("B", "T", "C", "K", "lengths", "per_duration", "proj", "forbid"), CASES)
@pytest.mark.parametrize("k", [1, 3, 9])
def test_triton_topk_equals_pytorch(
    make_inputs, B, T, C, K, lengths, per_duration, proj, forbid, k
) -> None:
    inp = make_inputs(
        B=B, T=T, C=C, K=K, lengths=lengths, per_duration=per_duration, proj=proj, forbid=forbid
    )
    cum, trans, bias, lens, _, ps, pe = _on(inp)
    got = streaming_topk_triton(cum, trans, bias, lens, K, k, ps, pe)
    want = streaming_topk_pytorch(*inp.args, k, inp.proj_start, inp.proj_end)
    assert torch.equal(got.labels.cpu(), want.labels)
    assert torch.equal(got.starts.cpu(), want.starts)
    assert torch.equal(got.scores.cpu(), want.scores)


@pytest.mark.parametrize("per_duration", [False, True])
def test_triton_topk_ties_and_viterbi(make_inputs, per_duration) -> None:
    inp = make_inputs(B=3, T=6, C=3, K=3, lengths=[6, 5, 2], per_duration=per_duration, proj=True)
    g = torch.Generator().manual_seed(11)
    inp = inp._replace(
        cum_scores=torch.cat(
            [torch.zeros(3, 1, 3), torch.randint(-1, 2, (3, 6, 3), generator=g).cumsum(1)], 1
        ).double(),
        transition=inp.transition.round(),
        duration_bias=inp.duration_bias.round(),
        proj_start=inp.proj_start.round(),
        proj_end=inp.proj_end.round(),
    )
    cum, trans, bias, lens, _, ps, pe = _on(inp)
    got = semi_crf_streaming_topk(cum, trans, bias, lens, 3, 8, proj_start=ps, proj_end=pe)
    want = streaming_topk_pytorch(*inp.args, 8, inp.proj_start, inp.proj_end)
    assert (want.scores[:-1] == want.scores[1:]).any(), "the inputs must contain exact ties"
    assert torch.equal(got.labels.cpu(), want.labels) and torch.equal(got.scores.cpu(), want.scores)
    path = streaming_viterbi_pytorch(*inp.args, **inp.kwargs).to_segmentation()
    assert torch.equal(got.labels[0].cpu(), path.labels)


def test_triton_topk_float32(make_inputs) -> None:
    inp = make_inputs(B=2, T=9, C=4, K=4, proj=True, dtype=torch.float32)
    cum, trans, bias, lens, _, ps, pe = _on(inp)
    got = streaming_topk_triton(cum, trans, bias, lens, 4, 5, ps, pe)
    want = streaming_topk_pytorch(*inp.args, 5, inp.proj_start, inp.proj_end)
    assert got.scores.dtype == torch.float32
    assert torch.equal(got.labels.cpu(), want.labels) and torch.equal(got.scores.cpu(), want.scores)


@pytest.mark.parametrize(("C", "K", "tile"), [(5, 3, 16), (7, 6, 16), (9, 2, 32), (3, 9, 16)])
def test_triton_topk_label_groups(make_inputs, monkeypatch, C, K, tile) -> None:
    """(C, C) transitions merge the lists of a group of labels at once; groups smaller than the
    labels (of two labels with a partly empty last group, or of one label), with exact ties
    (integer scores), give the same bits."""
    from semicrf_kernels.topk import triton as topk_triton

    # groups of tile // max(next_pow2(K), next_pow2(C)) labels: 2, 2, 2 and 1 here
    monkeypatch.setattr(topk_triton, "_GROUP_TILE", tile)
    inp = make_inputs(B=2, T=8, C=C, K=K, lengths=[8, 5], proj=True, forbid=0.2)
    inp = inp._replace(
        cum_scores=inp.cum_scores.round(),
        transition=inp.transition.round(),
        duration_bias=inp.duration_bias.round(),
        proj_start=inp.proj_start.round(),
        proj_end=inp.proj_end.round(),
    )
    cum, trans, bias, lens, _, ps, pe = _on(inp)
    got = streaming_topk_triton(cum, trans, bias, lens, K, 6, ps, pe)
    want = streaming_topk_pytorch(*inp.args, 6, inp.proj_start, inp.proj_end)
    assert torch.equal(got.labels.cpu(), want.labels)
    assert torch.equal(got.starts.cpu(), want.starts)
    assert torch.equal(got.scores.cpu(), want.scores)


def test_triton_topk_warps_do_not_change_the_result(make_inputs) -> None:
    """The launcher picks the scan's warps from the tile size (``num_warps=None``); any count
    gives the same bits (on CUDA; the interpreter has no warps)."""
    inp = make_inputs(B=2, T=9, C=5, K=6, lengths=[9, 4], proj=True, forbid=0.2)
    cum, trans, bias, lens, _, ps, pe = _on(inp)
    base = streaming_topk_triton(cum, trans, bias, lens, 6, 4, ps, pe)
    for warps in (2, 8):
        got = streaming_topk_triton(cum, trans, bias, lens, 6, 4, ps, pe, num_warps=warps)
        assert all(torch.equal(a, b) for a, b in zip(got, base))
