"""Tests of the per-block renormalisation option of the ``(C, C)`` scans (``_shared/triton_scan.py``,
``ScanConfig.renorm_block``, an experiment that is off by default): forward, gradients and the
Viterbi path stay those of the float64 PyTorch path, unsplit and split, forward and reverse.
Run under the Triton interpreter on the CPU (``TRITON_INTERPRET=1``) or on CUDA."""

from __future__ import annotations

import pytest
import torch
from _forward_grads import assert_matches_float64
from _triton_env import DEVICE, TRITON_MARKS

from semicrf_kernels._shared.triton_support import HAS_TRITON

pytestmark = TRITON_MARKS

if HAS_TRITON:
    from semicrf_kernels._shared import scan_launch, split_launch

#: (B, T, C, K, lengths, proj, forbid, split): blocks of 2 positions, so that a row's values
#: drift from its block's shift over more than one step; C not a power of two; K > T.
CASES = [
    (2, 11, 3, 4, [11, 6], True, 0.0, False),
    (3, 9, 5, 12, [9, 4, 1], False, 0.3, False),
    (2, 13, 3, 9, [13, 8], True, 0.2, True),
]


@pytest.fixture(autouse=True)
def _renorm_per_block():
    scan_launch.CONFIG_OVERRIDE.update(renorm_block=True, block_p=2)
    yield
    scan_launch.CONFIG_OVERRIDE.clear()
    split_launch.SPLIT_OVERRIDE.clear()


@pytest.mark.parametrize("case", CASES)
def test_renorm_per_block_matches_float64(make_inputs, case):
    B, T, C, K, lengths, proj, forbid, split = case
    if split:
        split_launch.SPLIT_OVERRIDE.update(
            enable=True, superblock=4, block_pf=2, rows_per_split=2, block_sf=2
        )
    assert_matches_float64(make_inputs(B, T, C, K, proj=proj, lengths=lengths, forbid=forbid))


def test_rows_stay_near_their_block_shift(make_inputs):
    # The stored rows are relative to their block's shift: they must not grow with T (the
    # shift moves once per block), or float32 would lose precision on long sequences.
    from semicrf_kernels._shared.scan_launch import run_forward_scan

    inp = make_inputs(1, 60, 3, 3, dtype=torch.float32)
    cum = (inp.cum_scores * 20).to(DEVICE)  # steps of tens of nats: log Z in the thousands
    args = [cum, inp.transition.to(DEVICE), inp.duration_bias.to(DEVICE), inp.lengths.to(DEVICE)]
    _, _, alpha, _, shift, _, _ = run_forward_scan(
        *args, 3, None, None, maxsr=False, backpointers=False, num_warps=4
    )
    rows = alpha[0, 1:].double()
    assert float((rows + shift[0, 1:, None]).abs().max()) > 500  # the true values are large
    assert float(rows.abs().max()) < 200  # the stored ones stay within a block's growth
