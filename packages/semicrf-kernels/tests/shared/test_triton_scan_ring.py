"""Tests of the register-ring body of the ``(C, C)`` scans (``_shared/triton_scan_ring.py``,
``ScanConfig.ring``, an experiment that is off by default): the rows it stores are those of the
temporally blocked body, and log Z, every gradient and the Viterbi path are those of the float64
PyTorch path and of brute-force enumeration. Run under the Triton interpreter on the CPU
(``TRITON_INTERPRET=1``) or on CUDA."""

from __future__ import annotations

import math

import pytest
import torch
from _forward_grads import assert_matches_float64, forward_and_grads
from _triton_env import DEVICE, TRITON_MARKS

from semicrf_kernels._shared.triton_support import HAS_TRITON
from semicrf_kernels.testing.brute_force import brute_force_streaming

pytestmark = TRITON_MARKS

if HAS_TRITON:
    from semicrf_kernels._shared import scan_launch, split_launch
    from semicrf_kernels._shared.inputs import prepare_inputs
    from semicrf_kernels._shared.scan_launch import ScanConfig, ring_rows, scan_config
    from semicrf_kernels.logpartition import triton as triton_lp
    from semicrf_kernels.viterbi.triton import semi_crf_streaming_viterbi_triton


def _on_device(inp, dtype=None):
    out = []
    for x in inp:
        if torch.is_tensor(x):
            x = x.to(DEVICE, dtype) if dtype is not None and x.is_floating_point() else x.to(DEVICE)
        out.append(x)
    return out


#: (B, T, C, K, lengths, proj, forbid): C not a power of two; K > T (the ring holds min(K, T)
#: rows); K = 1 and 2; a length of 1; ring slots reused many times (T >> K); C = 70 (the
#: transition streamed in tiles); forbidden transitions.
CASES = [
    (2, 11, 3, 4, [11, 6], True, 0.0),
    (3, 9, 5, 12, [9, 4, 1], False, 0.3),
    (1, 7, 2, 1, None, True, 0.0),
    (2, 23, 3, 2, [23, 17], True, 0.2),
    (2, 6, 70, 3, [6, 4], True, 0.0),
]


@pytest.mark.parametrize("case", CASES)
def test_ring_matches_float64(make_inputs, case):
    B, T, C, K, lengths, proj, forbid = case
    scan_launch.CONFIG_OVERRIDE.update(ring=True)
    assert ring_rows(scan_config(C, K), K, T, torch.float32) > 0  # the ring really runs
    inp = make_inputs(B, T, C, K, proj=proj, lengths=lengths, forbid=forbid)
    db = inp.duration_bias.clone()
    db[0, 0] = -math.inf  # a forbidden duration: no NaN
    inp = inp._replace(duration_bias=db)
    assert_matches_float64(inp)


def test_ring_past_its_budget_with_the_transition_in_registers(make_inputs):
    # ring_elems lifts the budget rule (the C = 128 experiment): C = 70 (128 padded labels),
    # 32 rows on 4 warps (4096 elements, past the rule's 2048), the transition held in
    # registers, in both scans and the Viterbi scan
    scan_launch.CONFIG_OVERRIDE.update(ring=True, trans_regs=True, num_warps=4)
    assert ring_rows(scan_config(70, 20), 20, 20, torch.float32) == 0  # the rule says no
    scan_launch.CONFIG_OVERRIDE.update(ring_elems=4096)
    assert ring_rows(scan_config(70, 20), 20, 20, torch.float32) == 32
    assert_matches_float64(make_inputs(2, 20, 70, 20, proj=True, lengths=[20, 13], forbid=0.2))


def test_ring_matches_brute_force(make_inputs):
    scan_launch.CONFIG_OVERRIDE.update(ring=True)
    inp = make_inputs(3, 6, 3, 3, proj=True, lengths=[6, 4, 1])
    truth = brute_force_streaming(*inp.args, **inp.kwargs)
    z, _ = forward_and_grads(inp, torch.float64, use_triton=True)
    torch.testing.assert_close(z, truth.log_partition, rtol=1e-10, atol=1e-10)
    got = semi_crf_streaming_viterbi_triton(*_on_device(inp))
    torch.testing.assert_close(got.scores.cpu(), truth.viterbi_score, rtol=1e-10, atol=1e-10)
    for b, segs in enumerate(truth.viterbi_segments):
        n = int(got.num_segments[b])
        mine = [
            (int(got.starts[b, i]), int(got.starts[b, i] + got.durations[b, i] - 1),
             int(got.labels[b, i]))
            for i in range(n)
        ]  # fmt: skip
        assert mine == list(segs), b


#: (B, T, C, K, lengths, proj, dtype, overrides): the default tiles; K > T; C = 70; 8 warps.
ROW_CASES = [
    (2, 9, 3, 4, [9, 5], True, torch.float64, {}),
    (3, 10, 5, 12, [10, 1, 7], True, torch.float64, {}),
    (2, 6, 70, 3, [6, 4], False, torch.float64, {"block_p": 2}),
    (2, 13, 3, 4, [13, 8], True, torch.float32, {"num_warps": 8}),
]


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("case", ROW_CASES)
def test_ring_writes_the_blocked_rows(make_inputs, case, fused, monkeypatch):
    # Every stored output of both scans (forward state, backward rows) against the blocked body,
    # unwritten cells NaN-filled: the ring must write exactly the same cells, with the same
    # meaning (each row relative to its own shift), so that the gradients and the traceback
    # read them unchanged. Alone and in the fused pair of scans.
    monkeypatch.setenv("SEMICRF_KERNELS_DEBUG_FILL", "1")
    split_launch.SPLIT_OVERRIDE.update(enable=False)
    B, T, C, K, lengths, proj, dtype, overrides = case
    inp = make_inputs(B, T, C, K, proj=proj, lengths=lengths)
    prepared = prepare_inputs(*_on_device(inp, dtype))
    outs = []
    for ring in (False, True):
        scan_launch.CONFIG_OVERRIDE.clear()
        scan_launch.CONFIG_OVERRIDE.update(overrides, ring=ring, fused_pair=fused)
        state, rows = triton_lp.launch_scans(prepared, "log", None, True)
        outs.append([*state, *rows])
    # float32: the two bodies sum a window in different orders; rows reach about -20, where
    # a few ulps are 1e-5 (float64 pins the algebra)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    for i, (a, b) in enumerate(zip(*outs)):
        assert a.dtype == b.dtype and a.shape == b.shape, i
        assert torch.equal(a.isnan(), b.isnan()), i  # the same cells written
        torch.testing.assert_close(a.nan_to_num(7.0), b.nan_to_num(7.0), rtol=tol, atol=tol)


def test_ring_with_backpointers_writes_the_blocked_ones(make_inputs, monkeypatch):
    # the Viterbi scan's stored rows, and its backpointers exactly: integer-valued scores leave
    # many ties, which both bodies must break the same way (the start score, a log-sum-exp,
    # is not an integer, so the values agree to rounding)
    from semicrf_kernels._shared.scan_launch import run_forward_scan

    monkeypatch.setenv("SEMICRF_KERNELS_DEBUG_FILL", "1")
    inp = make_inputs(2, 14, 3, 5, proj=True, lengths=[14, 9])
    inp = inp._replace(
        cum_scores=inp.cum_scores.round(), transition=inp.transition.round(),
        duration_bias=inp.duration_bias.round(), proj_start=inp.proj_start.round(),
        proj_end=inp.proj_end.round(),
    )  # fmt: skip
    args = _on_device(inp)
    outs = []
    for ring in (False, True):
        scan_launch.CONFIG_OVERRIDE.update(ring=ring)
        outs.append(
            run_forward_scan(*args[:5], args[5], args[6], maxsr=True, backpointers=True,
                             num_warps=None)
        )  # fmt: skip
    for i, (a, b) in enumerate(zip(*outs)):
        if a.is_floating_point():
            torch.testing.assert_close(a.nan_to_num(7.0), b.nan_to_num(7.0), rtol=1e-12, atol=1e-12)
        else:
            assert torch.equal(a, b), i


def test_split_scans_keep_the_blocked_body(make_inputs):
    # a split scan cannot use the ring (its window comes partly from the far kernel): with
    # ring on and the split forced, results stay those of the float64 path
    scan_launch.CONFIG_OVERRIDE.update(ring=True)
    split_launch.SPLIT_OVERRIDE.update(
        enable=True, superblock=4, block_pf=2, rows_per_split=2, block_sf=2
    )
    inp = make_inputs(2, 13, 3, 9, proj=True, lengths=[13, 8])
    z_ref, g_ref = forward_and_grads(inp, torch.float64, use_triton=False)
    z, g = forward_and_grads(inp, torch.float64, use_triton=True)
    torch.testing.assert_close(z, z_ref, rtol=1e-10, atol=1e-10)
    for got, want in zip(g, g_ref):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-9)


def test_ring_rows_rule():
    base = ScanConfig(32, 8, 16, 32, True, 4)
    ring = ScanConfig(32, 8, 16, 32, True, 4, ring=True)
    assert ring_rows(base, 32, 1000, torch.float32) == 0  # off unless asked for
    assert ring_rows(ring, 32, 1000, torch.float32) == 32
    assert ring_rows(ring, 64, 1000, torch.float32) == 64  # 64 x 32 = 2048: fits 4 warps
    assert ring_rows(ring, 100, 1000, torch.float32) == 0  # 128 x 32 does not
    assert ring_rows(ring, 64, 1000, torch.float64) == 0  # half the budget in float64
    assert ring_rows(ring, 3000, 20, torch.float32) == 32  # only min(K, T) rows are reachable
    assert ring_rows(ring, 1, 20, torch.float32) == 2
    c128 = ScanConfig(128, 4, 16, 32, True, 4, ring=True)
    assert ring_rows(c128, 64, 2048, torch.float32) == 0  # 64 x 128 past the rule's budget
    lifted = ScanConfig(128, 4, 16, 32, True, 4, ring=True, ring_elems=8192)
    assert ring_rows(lifted, 64, 2048, torch.float32) == 64
    assert ring_rows(lifted, 100, 2048, torch.float32) == 0  # 128 x 128 past 8192
    wide = ScanConfig(32, 8, 16, 32, True, 8, ring=True)
    assert ring_rows(wide, 100, 1000, torch.float32) == 128
    assert ring_rows(wide, 200, 1000, torch.float32) == 0  # 256 x 32 > 4096


class _Spy:
    """A kernel stand-in that records the ``BLOCK_R`` of each launch, then launches."""

    def __init__(self, kernel, name: str, seen: list):
        self.kernel, self.name, self.seen = kernel, name, seen

    def __getitem__(self, grid):
        launch = self.kernel[grid]

        def call(*args, **kwargs):
            self.seen.append((self.name, kwargs["BLOCK_R"]))
            return launch(*args, **kwargs)

        return call

    def __getattr__(self, attr):
        return getattr(self.kernel, attr)


@pytest.mark.parametrize("split", [False, True])
@pytest.mark.parametrize("fused", [False, True])
def test_every_scan_launch_takes_the_ring_unless_split(make_inputs, monkeypatch, split, fused):
    # what each kernel is really launched with: the unsplit forward, backward, fused pair and
    # Viterbi scans run the ring (BLOCK_R = ring_rows > 0), every split launch the blocked body
    from semicrf_kernels.logpartition import triton_scan as lp_scan
    from semicrf_kernels.viterbi import triton as vt

    seen: list = []
    for module, name in (
        (lp_scan, "_forward_scan_cc_kernel"),
        (triton_lp, "_backward_scan_cc_kernel"),
        (triton_lp, "_paired_scan_cc_kernel"),
        (vt, "_viterbi_scan_cc_kernel"),
    ):
        monkeypatch.setattr(module, name, _Spy(getattr(module, name), name, seen))
    scan_launch.CONFIG_OVERRIDE.update(ring=True, fused_pair=fused)
    if split:
        split_launch.SPLIT_OVERRIDE.update(
            enable=True, superblock=4, block_pf=2, rows_per_split=2, block_sf=2
        )
    else:
        split_launch.SPLIT_OVERRIDE.update(enable=False)
    B, T, C, K = 2, 11, 3, 6
    inp = make_inputs(B, T, C, K, proj=True, lengths=[11, 7])
    z_ref, g_ref = forward_and_grads(inp, torch.float64, use_triton=False)
    z, g = forward_and_grads(inp, torch.float64, use_triton=True)
    torch.testing.assert_close(z, z_ref, rtol=1e-10, atol=1e-10)
    for got, want in zip(g, g_ref):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-9)
    semi_crf_streaming_viterbi_triton(*_on_device(inp))
    names = {name for name, _ in seen}
    if fused and not split:
        assert names == {"_paired_scan_cc_kernel", "_viterbi_scan_cc_kernel"}
    else:
        assert names == {"_forward_scan_cc_kernel", "_backward_scan_cc_kernel",
                         "_viterbi_scan_cc_kernel"}  # fmt: skip
    want_r = 0 if split else ring_rows(scan_config(C, K), K, T, torch.float64)
    assert want_r in (0, 8)
    assert all(r == want_r for _, r in seen), seen


def test_ring_unreachable_positions_and_dead_labels(make_inputs):
    # K = 2 with duration 1 forbidden: odd lengths have no segmentation and every other
    # position is unreachable (all -inf rows); label 1 can never be entered (its transition
    # column is -inf). Log Z, gradients and Viterbi stay those of float64, without NaN.
    scan_launch.CONFIG_OVERRIDE.update(ring=True)
    inp = make_inputs(3, 8, 3, 2, proj=True, lengths=[8, 5, 6])
    db = inp.duration_bias.clone()
    db[0, :] = -math.inf
    trans = inp.transition.clone()
    trans[:, 1] = -math.inf
    inp = inp._replace(duration_bias=db, transition=trans)
    z_ref = assert_matches_float64(inp)
    assert torch.isinf(z_ref[1]) and torch.isfinite(z_ref[0])


def test_paired_config_rule():
    from semicrf_kernels._shared.scan_launch import paired_config

    # the measured wins: a reach of 32+ rows, C <= 64, the ring fitting 8 warps
    for C, K, T in ((24, 32, 1000), (24, 100, 10_000), (64, 32, 500), (5, 40, 40)):
        cfg = paired_config(C, K, T)
        assert (cfg.ring, cfg.num_warps, cfg.fused_pair) == (True, 8, True), (C, K, T)
        assert ring_rows(cfg, K, T, torch.float32) > 0
    # blocked: 16 rows (64x512x16x8), a short sequence, C = 128, a window too long for 8 warps
    # (C = 70 with K = 32: the ring would fit 8 warps, but the transition is streamed in tiles)
    for C, K, T in ((8, 16, 512), (24, 100, 20), (128, 64, 2048), (24, 200, 10_000), (70, 32, 500)):
        assert not paired_config(C, K, T).ring, (C, K, T)
    assert not paired_config(64, 64, 1000, dtype=torch.float64).ring  # half the budget
    # the ring takes 8 warps whatever the caller's (the public default is 4); an override
    # leaves the choice to it
    assert paired_config(24, 32, 1000, num_warps=4).num_warps == 8
    assert paired_config(8, 16, 512, num_warps=2).num_warps == 2  # blocked: the caller's
    scan_launch.CONFIG_OVERRIDE.update(num_warps=4)
    assert not paired_config(24, 32, 1000).ring
    scan_launch.CONFIG_OVERRIDE.clear()
    scan_launch.CONFIG_OVERRIDE.update(ring=False)
    assert not paired_config(24, 32, 1000).ring


def test_paired_scans_take_the_ring_by_default(make_inputs, monkeypatch):
    # no override: a forward with gradients ahead at K = 32 launches the fused pair of scans
    # with the ring (BLOCK_R = 32), and log Z and gradients are those of float64
    seen: list = []
    name = "_paired_scan_cc_kernel"
    monkeypatch.setattr(triton_lp, name, _Spy(getattr(triton_lp, name), name, seen))
    inp = make_inputs(2, 36, 3, 32, proj=True, lengths=[36, 33])
    z_ref, g_ref = forward_and_grads(inp, torch.float64, use_triton=False)
    z, g = forward_and_grads(inp, torch.float32, use_triton=True)
    assert seen == [(name, 32)]
    torch.testing.assert_close(z, z_ref, rtol=2e-5, atol=2e-5)
    for got, want in zip(g, g_ref):
        torch.testing.assert_close(got, want, rtol=2e-5, atol=2e-4)
