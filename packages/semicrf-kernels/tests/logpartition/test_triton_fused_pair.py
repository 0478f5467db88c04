"""Tests of the fused launch of the forward and backward scans (``logpartition/triton_scan.py``
``_paired_scan_cc_kernel``, ``ScanConfig.fused_pair``, on by default):
log Z and every gradient bitwise those of the two separate launches, and within float32 of the
float64 PyTorch path. Run under the Triton interpreter on the CPU (``TRITON_INTERPRET=1``) or on
CUDA."""

from __future__ import annotations

import pytest
import torch
from _forward_grads import forward_and_grads
from _triton_env import DEVICE, TRITON_MARKS

from semicrf_kernels._shared.triton_support import HAS_TRITON

pytestmark = TRITON_MARKS

if HAS_TRITON:
    from semicrf_kernels._shared import scan_launch, split_launch
    from semicrf_kernels._shared.inputs import prepare_inputs
    from semicrf_kernels.logpartition import triton as triton_lp

#: (B, T, C, K, lengths, proj, forbid): C not a power of two, K > T, K = 1, a length of 1,
#: lengths ending inside a temporal block, forbidden transitions.
CASES = [
    (2, 11, 3, 4, [11, 6], True, 0.0),
    (3, 9, 5, 12, [9, 4, 1], False, 0.3),
    (1, 7, 2, 1, None, True, 0.0),
]


#: (B, T, C, K, lengths, proj, dtype, overrides): float64; the default tiles; C = 70 (the
#: transition streamed in tiles instead of held in registers); one shift per block.
STATE_CASES = [
    (2, 9, 3, 4, [9, 5], True, torch.float64, {}),
    (3, 10, 5, 12, [10, 1, 7], True, torch.float32, {}),
    (2, 6, 70, 3, [6, 4], False, torch.float32, {"block_p": 2}),
    (2, 9, 3, 4, [9, 6], True, torch.float32, {"renorm_block": True, "block_p": 2}),
]


@pytest.mark.parametrize("case", STATE_CASES)
def test_fused_pair_writes_the_same_rows(make_inputs, case, monkeypatch):
    # every output of both scans (forward state, backward rows), unwritten cells NaN-filled
    monkeypatch.setenv("SEMICRF_KERNELS_DEBUG_FILL", "1")
    split_launch.SPLIT_OVERRIDE.update(enable=False)
    B, T, C, K, lengths, proj, dtype, overrides = case
    inp = make_inputs(B, T, C, K, proj=proj, lengths=lengths)
    args = [x.to(DEVICE, dtype) if torch.is_tensor(x) and x.is_floating_point() else x for x in inp]
    args = [x.to(DEVICE) if torch.is_tensor(x) else x for x in args]
    prepared = prepare_inputs(*args)
    outs = []
    for fused in (False, True):
        scan_launch.CONFIG_OVERRIDE.clear()
        scan_launch.CONFIG_OVERRIDE.update(overrides, fused_pair=fused)
        state, rows = triton_lp.launch_scans(prepared, "log", None, True)
        outs.append([*state, *rows])
    for i, (a, b) in enumerate(zip(*outs)):
        assert a.dtype == b.dtype and a.shape == b.shape, i
        assert torch.equal(a.nan_to_num(7.0), b.nan_to_num(7.0)), i


@pytest.mark.parametrize("case", CASES)
def test_fused_pair_equals_two_launches(make_inputs, case, monkeypatch):
    B, T, C, K, lengths, proj, forbid = case
    inp = make_inputs(B, T, C, K, proj=proj, lengths=lengths, forbid=forbid)
    launched = []
    real = triton_lp._launch_fused_pair
    monkeypatch.setattr(triton_lp, "_launch_fused_pair", lambda *a: launched.append(1) or real(*a))
    scan_launch.CONFIG_OVERRIDE.update(block_p=2, fused_pair=False)
    z_two, g_two = forward_and_grads(inp, torch.float32, use_triton=True)
    assert not launched
    del scan_launch.CONFIG_OVERRIDE["fused_pair"]  # the default
    z_one, g_one = forward_and_grads(inp, torch.float32, use_triton=True)
    assert launched  # the fused launch ran
    assert torch.equal(z_one, z_two)
    for a, b in zip(g_one, g_two):
        assert torch.equal(a, b)
    z_ref, g_ref = forward_and_grads(inp, torch.float64, use_triton=False)
    torch.testing.assert_close(z_one, z_ref, rtol=2e-5, atol=2e-5)
    for got, want in zip(g_one, g_ref):
        torch.testing.assert_close(got, want, rtol=2e-5, atol=2e-4)
