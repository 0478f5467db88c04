"""Tests of the exponential-space window value of the log-semiring scans
(``ScanConfig.exp_trans``, an experiment that is off by default; ``_shared/triton_scan_tiled.py``):
log Z and every gradient are those of the float64 PyTorch path in the temporally blocked body,
the register ring and the paired scans; a scan where a column's sum underflows is redone in log
space (bitwise the log-space result); split scans never take it. Run under the Triton
interpreter on the CPU (``TRITON_INTERPRET=1``) or on CUDA."""

from __future__ import annotations

import math

import pytest
import torch
from _forward_grads import assert_matches_float64, forward_and_grads
from _triton_env import TRITON_MARKS

from semicrf_kernels._shared.triton_support import HAS_TRITON

pytestmark = TRITON_MARKS

if HAS_TRITON:
    from semicrf_kernels._shared import scan_launch, split_launch
    from semicrf_kernels._shared.scan_launch import ScanConfig, exp_trans_on


#: (B, T, C, K, lengths, proj, forbid, overrides): C not a power of two; K = 1 and 2; K > T;
#: a length of 1; forbidden transitions (whole columns of -inf among them); the blocked body,
#: the register ring, the two scans as two launches or as the fused pair.
CASES = [
    (2, 11, 3, 4, [11, 6], True, 0.0, {}),
    (3, 9, 5, 12, [9, 4, 1], False, 0.3, {}),
    (1, 7, 2, 1, None, True, 0.0, {"ring": True}),
    (2, 23, 3, 2, [23, 17], True, 0.2, {"ring": True}),
    (2, 10, 6, 3, [10, 7], True, 0.4, {"fused_pair": False}),
    (2, 13, 5, 6, [13, 2], True, 0.0, {"ring": True, "fused_pair": False}),
]


@pytest.mark.parametrize("case", CASES)
def test_exp_trans_matches_float64(make_inputs, case):
    B, T, C, K, lengths, proj, forbid, overrides = case
    scan_launch.CONFIG_OVERRIDE.update(overrides, exp_trans=True)
    assert exp_trans_on(scan_launch.scan_config(C, K))  # it really runs
    split_launch.SPLIT_OVERRIDE.update(enable=False)
    inp = make_inputs(B, T, C, K, proj=proj, lengths=lengths, forbid=forbid)
    trans = inp.transition.clone()
    trans[:, C - 1] = -math.inf  # a label no segment may follow another into
    db = inp.duration_bias.clone()
    db[0, 0] = -math.inf  # a forbidden duration: no NaN
    assert_matches_float64(inp._replace(transition=trans, duration_bias=db))


def _log_then_exp(inp, overrides: dict) -> list:
    """``forward_and_grads`` in float32 with ``overrides``, without then with ``exp_trans``."""
    outs = []
    for exp_trans in (False, True):
        scan_launch.CONFIG_OVERRIDE.clear()
        scan_launch.CONFIG_OVERRIDE.update(overrides, exp_trans=exp_trans)
        outs.append(forward_and_grads(inp, torch.float32, use_triton=True))
    return outs


@pytest.mark.parametrize(
    "overrides", [{}, {"ring": True}, {"fused_pair": False}, {"ring": True, "fused_pair": False}]
)
def test_exp_space_really_runs_on_benign_inputs(make_inputs, overrides):
    # CASES above hold structural -inf (forbidden transitions, durations), whose exact zeros
    # flag a redo, so they may end up testing the log-space pass only. Here nothing is -inf
    # and nothing underflows: the exponential-space result must stand (not be redone), which
    # shows as float32 gradients that differ from the log-space scan's by rounding (a redo
    # would reproduce them bitwise; log Z, rounded to float32, may agree), and it must still
    # match float64
    split_launch.SPLIT_OVERRIDE.update(enable=False)
    inp = make_inputs(2, 11, 5, 4, proj=True, lengths=[11, 7])
    assert all(torch.isfinite(x).all() for x in (inp.transition, inp.duration_bias))
    (_, g_log), (_, g_exp) = _log_then_exp(inp, overrides)
    assert any(not torch.equal(a, b) for a, b in zip(g_exp, g_log))
    assert_matches_float64(inp)


def _underflowing(make_inputs, B: int, T: int, K: int):
    """Inputs on which the exponential-space sum of one column underflows in float32: label 2
    may only follow label 0, whose segments score -150 a position (so ``exp(alpha[0] - max)``
    is 0 in float32), and every sequence should end in label 2 (``proj_end`` -1e4 for the
    others, projections must be finite); with ``K`` short of the lengths a label-0 segment
    comes before the last one. Without the redo in log space label 2 would be unreachable and
    log Z near -1e4 instead of a few hundred below 0."""
    inp = make_inputs(B, T, 3, K, proj=True, lengths=[T, T - 3])
    emissions = torch.randn(B, T, 3, dtype=torch.float64) * 0.3
    emissions[:, :, 0] = -150.0
    cum = torch.zeros(B, T + 1, 3, dtype=torch.float64)
    cum[:, 1:] = emissions.cumsum(1)
    trans = inp.transition.clone()
    trans[1:, 2] = -math.inf
    pe = inp.proj_end.clone()
    for b, n in enumerate(inp.lengths.tolist()):
        pe[b, n - 1, :2] = -1e4
    return inp._replace(cum_scores=cum.to(inp.cum_scores.dtype), transition=trans, proj_end=pe)


@pytest.mark.parametrize("overrides", [{}, {"ring": True}, {"fused_pair": False}])
def test_underflow_redoes_the_scan_in_log_space(make_inputs, overrides):
    split_launch.SPLIT_OVERRIDE.update(enable=False)
    inp = _underflowing(make_inputs, 2, 12, 4)
    (z_log, g_log), (z_exp, g_exp) = _log_then_exp(inp, overrides)
    assert torch.isfinite(z_exp).all()
    assert torch.equal(z_exp, z_log)  # the redo is the log-space scan itself
    for a, b in zip(g_exp, g_log):
        assert torch.equal(a, b)
    z_ref, _ = forward_and_grads(inp, torch.float64, use_triton=False)
    torch.testing.assert_close(z_exp, z_ref, rtol=1e-5, atol=1e-5)


class _Spy:
    """A kernel stand-in that records the ``EXP_TRANS`` of each launch, then launches."""

    def __init__(self, kernel, seen: list):
        self.kernel, self.seen = kernel, seen

    def __getitem__(self, grid):
        launch = self.kernel[grid]

        def call(*args, **kwargs):
            self.seen.append(kwargs.get("EXP_TRANS"))
            return launch(*args, **kwargs)

        return call

    def __getattr__(self, attr):
        return getattr(self.kernel, attr)


def test_split_scans_stay_in_log_space(make_inputs, monkeypatch):
    # a split scan's serial kernel runs one super-block per launch and cannot redo the whole
    # scan: every launch of it goes without the exponential space, and results stay right
    from semicrf_kernels._shared import fast_launch
    from semicrf_kernels.logpartition import triton_scan

    seen: list = []
    # every launch through the kernel object (the direct path would bypass the spy on CUDA)
    monkeypatch.setitem(fast_launch.FAST_LAUNCH, "enable", False)
    monkeypatch.setattr(
        triton_scan, "_forward_scan_cc_kernel", _Spy(triton_scan._forward_scan_cc_kernel, seen)
    )
    scan_launch.CONFIG_OVERRIDE.update(exp_trans=True, fused_pair=False)
    split_launch.SPLIT_OVERRIDE.update(
        enable=True, superblock=4, block_pf=2, rows_per_split=2, block_sf=2
    )
    inp = make_inputs(2, 13, 3, 9, proj=True, lengths=[13, 8])
    z_ref, g_ref = forward_and_grads(inp, torch.float64, use_triton=False)
    z, g = forward_and_grads(inp, torch.float64, use_triton=True)
    torch.testing.assert_close(z, z_ref, rtol=1e-10, atol=1e-10)
    for got, want in zip(g, g_ref):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-9)
    assert seen and all(flag is False for flag in seen), seen


def test_exp_trans_on_rule():
    base = ScanConfig(32, 8, 16, 32, True, 4)
    assert not exp_trans_on(base)  # off unless asked for
    assert exp_trans_on(ScanConfig(32, 8, 16, 32, True, 4, exp_trans=True))
    # the transition streamed in tiles (C > 64): not in exponential space
    assert not exp_trans_on(ScanConfig(128, 4, 16, 32, False, 4, exp_trans=True))
    # rows not normalised every position could overflow exp()
    assert not exp_trans_on(ScanConfig(32, 8, 16, 32, True, 4, renorm_block=True, exp_trans=True))
