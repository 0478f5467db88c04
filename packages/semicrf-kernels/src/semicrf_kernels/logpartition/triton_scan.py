"""Triton scan kernels of the log partition (forward and backward) and the forward launcher.

One program per sequence walks the positions ``t = 1..L`` (its own length: padding is never
read). The recurrence is the factorised one of ``docs/conventions.md`` section 1. For
``(C, C)`` transitions every position ``s`` keeps one *window value* per label,

    W[s, c] = A[s, c] + proj_start[s, c]          with A[s, c] = (+)_{c'} alpha[s, c'] + trans[c', c]

and a step is

    alpha[t, c] = proj_end[t-1, c] + (+)_{d=1..min(K, t)} (cum[t, c] - cum[t-d, c]) + W[t-d, c] + db[d-1, c]

so it costs O(K C) for the window plus O(C^2) for ``A``. The same loop body, mirrored in time,
is the backward scan (``gamma``/``beta``, :func:`_backward_scan_cc_kernel`, launched from
:mod:`.triton`); in the max semiring with backpointers it is the Viterbi scan
(:mod:`semicrf_kernels.viterbi.triton`). The bodies live in :mod:`semicrf_kernels._shared.triton_scan`.

**Temporal blocking.** Positions are processed in blocks of ``BLOCK_P``. For a block
``[t0, t0 + P)`` the contributions of the window rows written *before* the block are computed
for all ``P`` outputs at once, in one pass over the window (phase 1: a ``(P, BLOCK_S, C)`` tile
per slice of window rows, independent of each other); the ``P`` positions are then finished one
after the other using only in-register rows of the current block (phase 2). The window is read
from global memory once per block instead of once per position, and there is one barrier per
block.

**Precision.** Every stored row is relative to a per-row float64 shift (``alpha[t] =
alpha_n[t] + shift[t]``, ``max_c alpha_n[t, c] = 0``). Cumulative scores enter only through
differences ``cum[t] - cum[s]`` of two nearby rows, so no float32 value grows with ``T``.
Reductions are log-sum-exps guarded against all ``-inf`` slices (shift 0), so forbidden
(``-inf``) transitions and durations never produce NaN.

The ``(K, C, C)`` case (transition depending on the duration) cannot factorise the reduction
over the previous label; :func:`_forward_scan_kcc_kernel` does O(K C^2) per position, one
position at a time.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .._shared.inputs import prepare_inputs
from .._shared.scan_launch import (
    CONFIG_OVERRIDE,
    ScanConfig,
    _check_semiring,
    _check_triton,
    run_forward_scan,
    scan_config,
)
from .._shared.triton_support import HAS_TRITON

__all__ = [
    "CONFIG_OVERRIDE",
    "ScanConfig",
    "StreamingForwardState",
    "launch_streaming_triton_kernel",
    "scan_config",
]

if HAS_TRITON:
    import triton
    import triton.language as tl

    from .._shared.triton_scan import _scan_cc_body
    from .._shared.triton_scan_kcc import _scan_kcc_body
else:  # pragma: no cover - exercised only where triton is absent
    triton = None
    tl = None


class StreamingForwardState(NamedTuple):
    """What :func:`launch_streaming_triton_kernel` returns; element 0 is the partition.

    Attributes:
        partition: ``(batch,)`` log Z (``semiring="log"``) or Viterbi score (``"max"``) in the
            compute dtype; ``-inf`` when no segmentation is allowed.
        log_z: ``(batch,)`` float64, the same value before rounding to the compute dtype.
        alpha: ``(batch, T+1, C)`` ``alpha[t] - shift[t]`` for ``t <= L`` (rows ``> L``
            unspecified).
        window: ``(batch, T+1, C)`` ``A[s] + proj_start[s] - shift[s]`` for ``s < L`` (the
            ``(C, C)`` window value); ``None`` with ``(K, C, C)`` transitions.
        shift: ``(batch, T+1)`` float64 per-row shift of ``alpha`` and ``window``.
    """

    partition: torch.Tensor
    log_z: torch.Tensor
    alpha: torch.Tensor
    window: torch.Tensor | None
    shift: torch.Tensor


if HAS_TRITON:

    @triton.jit(do_not_specialize=["T", "K", "t_begin", "S", "NSPLIT", "GAP"])
    def _forward_scan_cc_kernel(
        cum_ptr,  # (B, T+1, C)
        trans_ptr,  # (C, C)
        db_ptr,  # (K, C)
        len_ptr,  # (B,) int64
        ps_ptr,  # (B, T, C) or dummy
        pe_ptr,  # (B, T, C) or dummy
        alpha_ptr,  # out (B, T+1, C) alpha_n
        win_ptr,  # out (B, T+1, C) window values
        shift_ptr,  # out (B, T+1) float64
        score_ptr,  # out (B,) float64 log Z
        final_ptr,  # unused (B,) int64 (the max semiring's best final label)
        T, K, C,
        farv_ptr, fard_ptr, t_begin, S, NSPLIT, GAP,  # the split scan's super-block (split_launch)
        HAS_PS: tl.constexpr, HAS_PE: tl.constexpr, TRANS_REGS: tl.constexpr,
        RENORM_BLOCK: tl.constexpr,
        BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_S: tl.constexpr,
        BLOCK_TC: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_R: tl.constexpr,
        EXP_TRANS: tl.constexpr = False,
    ):  # fmt: skip
        """Forward scan, log semiring, ``(C, C)`` transitions: ``alpha`` rows, window, log Z."""
        _scan_cc_body(
            cum_ptr, trans_ptr, db_ptr, len_ptr, ps_ptr, pe_ptr,
            alpha_ptr, win_ptr, shift_ptr, score_ptr, final_ptr, len_ptr, len_ptr,
            T, K, C, farv_ptr, fard_ptr, t_begin, S, NSPLIT, GAP,
            False, False, HAS_PS, HAS_PE, False, TRANS_REGS, RENORM_BLOCK,
            BLOCK_C, BLOCK_P, BLOCK_S, BLOCK_TC, BLOCK_K, BLOCK_R, 0, EXP_TRANS,
        )  # fmt: skip

    @triton.jit(do_not_specialize=["T", "K", "t_begin", "S", "NSPLIT", "GAP"])
    def _backward_scan_cc_kernel(
        cum_ptr,  # (B, T+1, C)
        trans_t_ptr,  # (C, C) the transition, transposed
        db_ptr,  # (K, C)
        len_ptr,  # (B,) int64
        ps_ptr,  # (B, T, C) or dummy
        pe_ptr,  # (B, T, C) or dummy
        gamma_ptr,  # out (B, T+1, C) gamma_n
        win_ptr,  # out (B, T+1, C) backward window values
        shift_ptr,  # out (B, T+1) float64
        T, K, C,
        farv_ptr, fard_ptr, t_begin, S, NSPLIT, GAP,  # the split scan's super-block (split_launch)
        HAS_PS: tl.constexpr, HAS_PE: tl.constexpr, TRANS_REGS: tl.constexpr,
        RENORM_BLOCK: tl.constexpr,
        BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_S: tl.constexpr,
        BLOCK_TC: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_R: tl.constexpr,
        EXP_TRANS: tl.constexpr = False,
    ):  # fmt: skip
        """Backward scan, log semiring, ``(C, C)``: the forward loop body mirrored in time."""
        # score / final / backpointer pointers are never written in reverse: stand-ins.
        _scan_cc_body(
            cum_ptr, trans_t_ptr, db_ptr, len_ptr, ps_ptr, pe_ptr,
            gamma_ptr, win_ptr, shift_ptr, shift_ptr, len_ptr, len_ptr, len_ptr,
            T, K, C, farv_ptr, fard_ptr, t_begin, S, NSPLIT, GAP,
            True, False, HAS_PS, HAS_PE, False, TRANS_REGS, RENORM_BLOCK,
            BLOCK_C, BLOCK_P, BLOCK_S, BLOCK_TC, BLOCK_K, BLOCK_R, 0, EXP_TRANS,
        )  # fmt: skip

    @triton.jit(do_not_specialize=["B", "T", "K"])
    def _paired_scan_cc_kernel(
        cum_ptr,  # (B, T+1, C)
        trans_ptr,  # (C, C)
        trans_t_ptr,  # (C, C) the transition, transposed
        db_ptr,  # (K, C)
        len_ptr,  # (B,) int64
        ps_ptr,  # (B, T, C) or dummy
        pe_ptr,  # (B, T, C) or dummy
        alpha_ptr, win_ptr, shift_ptr, score_ptr,  # out: the forward scan's rows and log Z
        gamma_ptr, bwin_ptr, bshift_ptr,  # out: the backward scan's rows
        B, T, K, C,
        HAS_PS: tl.constexpr, HAS_PE: tl.constexpr, TRANS_REGS: tl.constexpr,
        RENORM_BLOCK: tl.constexpr,
        BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_S: tl.constexpr,
        BLOCK_TC: tl.constexpr, BLOCK_R: tl.constexpr, EXP_TRANS: tl.constexpr = False,
    ):  # fmt: skip
        """Both unsplit scans in one launch of ``2 B`` programs (an experiment,
        ``CONFIG_OVERRIDE["fused_pair"]``): programs ``[0, B)`` scan forward, ``[B, 2 B)``
        backward, each exactly as :func:`_forward_scan_cc_kernel` / :func:`_backward_scan_cc_kernel`
        unsplit (one launch spreads the ``2 B`` programs over the SMs, where two launches on two
        streams may share them)."""
        if tl.program_id(0) < B:
            _scan_cc_body(
                cum_ptr, trans_ptr, db_ptr, len_ptr, ps_ptr, pe_ptr,
                alpha_ptr, win_ptr, shift_ptr, score_ptr, len_ptr, len_ptr, len_ptr,
                T, K, C, cum_ptr, len_ptr, 1, T + 1, 0, 0,
                False, False, HAS_PS, HAS_PE, False, TRANS_REGS, RENORM_BLOCK,
                BLOCK_C, BLOCK_P, BLOCK_S, BLOCK_TC, 2, BLOCK_R, 0, EXP_TRANS,
            )  # fmt: skip
        else:
            _scan_cc_body(
                cum_ptr, trans_t_ptr, db_ptr, len_ptr, ps_ptr, pe_ptr,
                gamma_ptr, bwin_ptr, bshift_ptr, bshift_ptr, len_ptr, len_ptr, len_ptr,
                T, K, C, cum_ptr, len_ptr, 1, T + 1, 0, 0,
                True, False, HAS_PS, HAS_PE, False, TRANS_REGS, RENORM_BLOCK,
                BLOCK_C, BLOCK_P, BLOCK_S, BLOCK_TC, 2, BLOCK_R, B, EXP_TRANS,
            )  # fmt: skip

    @triton.jit(do_not_specialize=["T", "K"])
    def _forward_scan_kcc_kernel(
        cum_ptr,  # (B, T+1, C)
        trans_ptr,  # (K, C, C)
        db_ptr,  # (K, C)
        start_ptr,  # (K, C) start scores (read by the max semiring only)
        len_ptr,  # (B,) int64
        ps_ptr,
        pe_ptr,
        alpha_ptr,  # out (B, T+1, C) alpha_n
        shift_ptr,  # out (B, T+1) float64
        score_ptr,  # out (B,) float64 log Z
        final_ptr,  # unused (B,) int64
        T, K, C,
        HAS_PS: tl.constexpr, HAS_PE: tl.constexpr,
        BLOCK_C: tl.constexpr, BLOCK_D: tl.constexpr,
    ):  # fmt: skip
        """Forward scan, log semiring, ``(K, C, C)`` transitions."""
        _scan_kcc_body(
            cum_ptr, trans_ptr, db_ptr, start_ptr, len_ptr, ps_ptr, pe_ptr,
            alpha_ptr, shift_ptr, score_ptr, final_ptr, len_ptr, len_ptr,
            T, K, C,
            False, HAS_PS, HAS_PE, False, BLOCK_C, BLOCK_D,
        )  # fmt: skip


def launch_streaming_triton_kernel(
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    lengths: torch.Tensor,
    K: int,
    semiring: str = "log",
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
    num_warps: int | None = 4,
) -> StreamingForwardState:
    """Streaming forward scan (Triton): log partition or Viterbi score, and the saved state.

    Inputs are converted with ``prepare_inputs`` (a no-op for inputs the dispatcher already
    prepared); they are not validated. Memory: O(batch T C); time O(T (K C + C^2)) per sequence
    with ``(C, C)`` transitions, O(T K C^2) with ``(K, C, C)``.

    Args:
        cum_scores: ``(batch, T+1, C)`` cumulative scores, ``cum[:, 0] = 0``; CUDA (or CPU under
            ``TRITON_INTERPRET=1``).
        transition: ``(C, C)`` or ``(K, C, C)``, ``transition[c_prev, c]``; ``-inf`` forbids.
        duration_bias: ``(K, C)``; row ``d - 1`` scores duration ``d``.
        lengths: ``(batch,)`` integer lengths in ``[1, T]``.
        K: longest segment.
        semiring: ``"log"`` (log Z) or ``"max"`` (Viterbi score).
        proj_start: optional ``(batch, T, C)`` score at each segment's first position.
        proj_end: optional ``(batch, T, C)`` score at each segment's last position.
        num_warps: warps per program; ``None`` lets :func:`scan_config` choose from ``(C, K)``.

    Returns:
        :class:`StreamingForwardState`; ``[0]`` is the ``(batch,)`` partition in the compute
        dtype (float32, float64 for float64 ``cum_scores``), ``-inf`` where no segmentation is
        allowed. Pass the whole tuple to ``launch_streaming_triton_backward``.
    """
    _check_semiring(semiring)
    inp = prepare_inputs(cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end)
    _check_triton(inp.cum_scores)
    score, _final, alpha, window, shift, _bpd, _bpa = run_forward_scan(
        inp.cum_scores, inp.transition, inp.duration_bias, inp.lengths, inp.K,
        inp.proj_start, inp.proj_end,
        maxsr=semiring == "max", backpointers=False, num_warps=num_warps,
    )  # fmt: skip
    return StreamingForwardState(score.to(inp.cum_scores.dtype), score, alpha, window, shift)
