"""Tests of the fused launch of the forward and backward scans (``logpartition/triton_scan.py``
``_paired_scan_cc_kernel``, ``ScanConfig.fused_pair``, an experiment that is off by default):
log Z and every gradient bitwise those of the two separate launches, and within float32 of the
float64 PyTorch path. Run under the Triton interpreter on the CPU (``TRITON_INTERPRET=1``) or on
CUDA."""

from __future__ import annotations

import pytest
import torch
from _forward_grads import forward_and_grads
from _triton_env import TRITON_MARKS

from semicrf_kernels._shared.triton_support import HAS_TRITON

pytestmark = TRITON_MARKS

if HAS_TRITON:
    from semicrf_kernels._shared import scan_launch
    from semicrf_kernels.logpartition import triton as triton_lp

#: (B, T, C, K, lengths, proj, forbid): C not a power of two, K > T, K = 1, a length of 1,
#: lengths ending inside a temporal block, forbidden transitions.
CASES = [
    (2, 11, 3, 4, [11, 6], True, 0.0),
    (3, 9, 5, 12, [9, 4, 1], False, 0.3),
    (1, 7, 2, 1, None, True, 0.0),
]


@pytest.fixture(autouse=True)
def _clear():
    yield
    scan_launch.CONFIG_OVERRIDE.clear()


@pytest.mark.parametrize("case", CASES)
def test_fused_pair_equals_two_launches(make_inputs, case, monkeypatch):
    B, T, C, K, lengths, proj, forbid = case
    inp = make_inputs(B, T, C, K, proj=proj, lengths=lengths, forbid=forbid)
    launched = []
    real = triton_lp._launch_fused_pair
    monkeypatch.setattr(triton_lp, "_launch_fused_pair", lambda *a: launched.append(1) or real(*a))
    scan_launch.CONFIG_OVERRIDE.update(block_p=2)
    z_two, g_two = forward_and_grads(inp, torch.float32, use_triton=True)
    assert not launched
    scan_launch.CONFIG_OVERRIDE.update(fused_pair=True)
    z_one, g_one = forward_and_grads(inp, torch.float32, use_triton=True)
    assert launched  # the fused launch ran
    assert torch.equal(z_one, z_two)
    for a, b in zip(g_one, g_two):
        assert torch.equal(a, b)
    z_ref, g_ref = forward_and_grads(inp, torch.float64, use_triton=False)
    torch.testing.assert_close(z_one, z_ref, rtol=2e-5, atol=2e-5)
    for got, want in zip(g_one, g_ref):
        torch.testing.assert_close(got, want, rtol=2e-5, atol=2e-4)
