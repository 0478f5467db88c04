"""Tests of the split scan (``_shared/split_launch.py``, ``_shared/triton_far.py``): super-block
boundaries.

The split is forced with small tiles (blocks of 2 positions, super-blocks of 4) so that a short
sequence crosses many block and super-block boundaries; every result is compared with the
float64 PyTorch path (log Z, every gradient, the Viterbi path). Both schedules are tested: far
rows one super-block back (``overlap=True``: the far kernel overlaps the previous super-block's
scan) on every case, and far rows right before the super-block (the default) on two, with the
far partials merged by their own kernel (``reduce``, the default) and by the serial kernel.
Run under the Triton interpreter on the CPU (``TRITON_INTERPRET=1``) or on CUDA.
"""

from __future__ import annotations

import pytest
import torch
from _forward_grads import forward_and_grads
from _triton_env import DEVICE, TRITON_MARKS

from semicrf_kernels._shared.triton_support import HAS_TRITON
from semicrf_kernels.viterbi.pytorch import streaming_viterbi_pytorch

pytestmark = TRITON_MARKS

if HAS_TRITON:
    from semicrf_kernels._shared import scan_launch, split_launch
    from semicrf_kernels.viterbi.triton import semi_crf_streaming_viterbi_triton

S = 4  # super-block (positions)
P = 2  # temporal block (positions)

#: (B, T, C, K, lengths, proj, forbid): T a multiple of S, one more, one less; K smaller than,
#: equal to and larger than S (and than T); lengths that end inside a block and a super-block;
#: a batch larger than the interpreter's stand-in SM count (4).
CASES = [
    (2, 12, 3, 3, [12, 7], False, 0.0),
    (2, 13, 5, 4, [13, 6], True, 0.0),
    (3, 11, 3, 9, [11, 10, 5], False, 0.3),
    (5, 9, 4, 20, [9, 1, 4, 8, 5], True, 0.0),
    (1, 16, 3, 12, None, True, 0.2),
]


@pytest.fixture(autouse=True)
def _forced_split(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SEMICRF_KERNELS_DEBUG_FILL", "1")
    split_launch.SPLIT_OVERRIDE.update(
        enable=True, superblock=S, block_pf=2, rows_per_split=2, block_sf=2, overlap=True
    )
    scan_launch.CONFIG_OVERRIDE.update(block_p=P)
    yield
    split_launch.SPLIT_OVERRIDE.clear()
    scan_launch.CONFIG_OVERRIDE.clear()


@pytest.mark.parametrize("case", CASES)
def test_split_forward_and_gradients_match_float64(make_inputs, case):
    B, T, C, K, lengths, proj, forbid = case
    inp = make_inputs(B, T, C, K, proj=proj, lengths=lengths, forbid=forbid)
    z_ref, g_ref = forward_and_grads(inp, torch.float64, use_triton=False)
    # float64 (to 1e-10) on the cases with constraints or a window longer than T, float32 on all
    dtypes = ((torch.float64, 1e-10),) if forbid > 0 or K > T else ()
    for dtype, tol in (*dtypes, (torch.float32, 2e-5)):
        z, g = forward_and_grads(inp, dtype, use_triton=True)
        assert not torch.isnan(z).any()
        torch.testing.assert_close(z, z_ref, rtol=tol, atol=tol)
        for got, want in zip(g, g_ref):
            assert not torch.isnan(got).any()
            torch.testing.assert_close(got, want, rtol=tol, atol=tol * 10)


@pytest.mark.parametrize("case", CASES)
def test_split_viterbi_matches_float64(make_inputs, case):
    B, T, C, K, lengths, proj, forbid = case
    inp = make_inputs(B, T, C, K, proj=proj, lengths=lengths, forbid=forbid)
    want = streaming_viterbi_pytorch(*inp)
    args = [x.to(DEVICE) if isinstance(x, torch.Tensor) else x for x in inp]
    got = semi_crf_streaming_viterbi_triton(*args)
    torch.testing.assert_close(got.scores.cpu(), want.scores, rtol=1e-10, atol=1e-10)
    for field in ("num_segments", "starts", "durations", "labels"):
        assert torch.equal(getattr(got, field).cpu(), getattr(want, field)), field


@pytest.mark.parametrize("reduce", [True, False])
def test_split_viterbi_ties(rng, reduce):
    # Integer scores: many exactly tied paths; the split must keep the tie rule (smaller
    # duration, then smaller label) exactly as the unsplit PyTorch path does, whether the far
    # partials are merged by their own kernel or by the serial one.
    split_launch.SPLIT_OVERRIDE["reduce"] = reduce
    B, T, C, K = 2, 14, 3, 9
    emissions = torch.randint(-1, 2, (B, T, C), generator=rng).double()
    cum = torch.zeros(B, T + 1, C, dtype=torch.float64)
    cum[:, 1:] = emissions.cumsum(1)
    trans = torch.where(torch.eye(C, dtype=torch.bool), 0.0, -60.0).double()
    db = torch.randint(-1, 1, (K, C), generator=rng).double()
    lengths = torch.tensor([14, 11])
    want = streaming_viterbi_pytorch(cum, trans, db, lengths, K, None, None)
    got = semi_crf_streaming_viterbi_triton(
        cum.to(DEVICE), trans.to(DEVICE), db.to(DEVICE), lengths.to(DEVICE), K
    )
    for field in ("scores", "num_segments", "starts", "durations", "labels"):
        assert torch.equal(getattr(got, field).cpu(), getattr(want, field)), field


@pytest.mark.parametrize("reduce", [True, False])
@pytest.mark.parametrize("case", [CASES[1], CASES[3]])
def test_split_alternating_schedule_matches_float64(make_inputs, case, reduce):
    # the default: far rows end right before each super-block, the near window is its own rows;
    # the far partials merged by their own kernel (the default) or by the serial kernel
    split_launch.SPLIT_OVERRIDE.update(overlap=False, reduce=reduce)
    B, T, C, K, lengths, proj, forbid = case
    inp = make_inputs(B, T, C, K, proj=proj, lengths=lengths, forbid=forbid)
    z_ref, g_ref = forward_and_grads(inp, torch.float64, use_triton=False)
    z, g = forward_and_grads(inp, torch.float32, use_triton=True)
    torch.testing.assert_close(z, z_ref, rtol=2e-5, atol=2e-5)
    for got, want in zip(g, g_ref):
        torch.testing.assert_close(got, want, rtol=2e-5, atol=2e-4)
    want = streaming_viterbi_pytorch(*inp)
    args = [x.to(DEVICE) if isinstance(x, torch.Tensor) else x for x in inp]
    got = semi_crf_streaming_viterbi_triton(*args)
    for field in ("num_segments", "starts", "durations", "labels"):
        assert torch.equal(getattr(got, field).cpu(), getattr(want, field)), field
