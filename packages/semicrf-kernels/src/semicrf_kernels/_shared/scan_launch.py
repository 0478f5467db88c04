"""Tile choices of the scan kernels and the launcher of the forward-direction scans.

:func:`run_forward_scan` launches the forward scan (log semiring,
:mod:`semicrf_kernels.logpartition.triton_scan`) or the Viterbi scan (max semiring,
:mod:`semicrf_kernels.viterbi.triton`) on prepared inputs; both kinds share their outputs'
layout. Tiles come from a fixed heuristic, :func:`scan_config` (no autotuning, so the kernels
run under the Triton interpreter too).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch

from .split_launch import _pow2_floor, run_launches, scan_cc_launches
from .triton_support import HAS_TRITON

__all__ = [
    "CONFIG_OVERRIDE",
    "ScanConfig",
    "exp_trans_on",
    "new_float",
    "paired_config",
    "ring_rows",
    "run_forward_scan",
    "scan_config",
    "scan_flags",
]


def _debug_fill() -> bool:
    """``SEMICRF_KERNELS_DEBUG_FILL=1``: outputs start as NaN / sentinel so unwritten cells show."""
    return os.environ.get("SEMICRF_KERNELS_DEBUG_FILL", "0") not in ("", "0")


def new_float(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """An uninitialised float buffer, NaN-filled in debug-fill mode."""
    if _debug_fill():
        return torch.full(shape, math.nan, dtype=dtype, device=device)
    return torch.empty(shape, dtype=dtype, device=device)


def _cdiv(a: int, b: int) -> int:
    # host arithmetic: triton.cdiv is a constexpr function in recent Triton, several
    # microseconds a call on the launch path
    return -(-a // b)


def _next_pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


@dataclass(frozen=True)
class ScanConfig:
    """Tile sizes and warps of the scan kernels (all powers of two).

    Attributes:
        block_c: labels padded to a power of two (``>= 2``).
        block_p: positions per temporal block.
        block_s: window rows per phase-1 tile (``(K, C, C)`` kernels: durations per tile).
        block_tc: previous labels per tile of the ``C x C`` reduction when the transition matrix
            does not fit in registers.
        trans_regs: keep the ``(C, C)`` transition matrix in registers for the whole scan.
        num_warps: warps per program.
        renorm_block: (experiment, off) rebase the stored rows on a new shift once per temporal
            block instead of once per position: one reduction a step fewer; rows are then
            relative to their block's shift, no longer to their own maximum.
        fused_pair: the unsplit forward and backward scans that run together for gradients
            (``logpartition.triton.launch_scans``) as one launch of ``2 B`` programs instead of
            two launches on two streams (on by default: measured on an H100, forward + backward
            at 64x512x16x8 2.40 -> 1.90 ms, the other short rows unchanged; bitwise the same as
            the two launches with the same loop body).
        ring: an unsplit scan whose window fits keeps it in a register ring instead of reading
            it back once per temporal block (:func:`ring_rows`). Off in :func:`scan_config`;
            :func:`paired_config` turns it on for the paired scans where it was measured to pay.
        exp_trans: (experiment, off) the log semiring's reduction over the previous label in
            exponential space, for unsplit scans with the transition in registers
            (:func:`exp_trans_on`; :mod:`.triton_scan_tiled`): ``C`` exponentials a step
            instead of ``C^2``, and a maximum pass fewer. A scan where a column's sum falls below
            ``2^-60`` is redone in log space by the same program. Mixed on an H100 (off).
        ring_elems: (experiment) the register ring's budget in elements (``rows * block_c``);
            0 keeps :func:`ring_rows`' rule. Lets the ring run at ``C = 128`` (``64 x 128``),
            where a register window measured 1.8x the blocked body in an experiment; the
            library's ring spills there (sm_90: 4 KB a thread on 4 or 8 warps). Not timed yet.
    """

    block_c: int
    block_p: int
    block_s: int
    block_tc: int
    trans_regs: bool
    num_warps: int
    renorm_block: bool = False
    fused_pair: bool = True
    ring: bool = False
    exp_trans: bool = False
    ring_elems: int = 0


def scan_flags(cfg: ScanConfig, ps, pe, log: bool) -> dict:
    """The compile-time arguments and warps every ``(C, C)`` scan kernel takes from ``cfg`` and
    the projections present (``EXP_TRANS`` for the log-semiring kernels, ``log``)."""
    flags = dict(
        HAS_PS=ps is not None, HAS_PE=pe is not None, TRANS_REGS=cfg.trans_regs,
        RENORM_BLOCK=cfg.renorm_block,
        BLOCK_C=cfg.block_c, BLOCK_P=cfg.block_p, BLOCK_S=cfg.block_s, BLOCK_TC=cfg.block_tc,
        num_warps=cfg.num_warps,
    )  # fmt: skip
    if log:
        flags["EXP_TRANS"] = exp_trans_on(cfg)
    return flags


def exp_trans_on(cfg: ScanConfig) -> bool:
    """Whether a log-semiring scan launched with ``cfg`` takes the exponential-space window
    value: requested, the transition in registers, rows normalised every position. Split
    scans never do (``split_launch`` turns it off: redoing one super-block is not
    implemented)."""
    return cfg.exp_trans and cfg.trans_regs and not cfg.renorm_block


#: Optional overrides of :func:`scan_config`'s choices, for tuning (``benchmarks/``); keys are
#: ``ScanConfig`` field names.
CONFIG_OVERRIDE: dict[str, int | bool] = {}


def scan_config(
    C: int, K: int, num_warps: int | None = None, dtype: torch.dtype = torch.float32
) -> ScanConfig:
    """Choose tiles from ``(C, K)``: a fixed heuristic (no autotuning, so it runs interpreted).

    Phase-1 tiles hold about ``1024 * num_warps`` elements (half in float64); the transition
    matrix stays in registers up to ``C = 64``.

    Args:
        C: number of labels.
        K: longest segment.
        num_warps: warps per program; ``None`` picks 4, or 8 when a window (``K * C``) is large.
        dtype: compute dtype (float32 or float64).
    """
    block_c = max(2, _next_pow2(C))
    if num_warps is None:
        num_warps = 8 if K * block_c >= 8192 or block_c >= 128 else 4
    if num_warps < 1 or num_warps & (num_warps - 1):
        raise ValueError(f"num_warps: expected a power of two in [1, 32], got {num_warps}")
    budget = 1024 * num_warps // (2 if dtype == torch.float64 else 1)
    block_p = 8 if block_c <= 32 else (4 if block_c <= 128 else 2)
    block_s = max(2, min(_pow2_floor(budget // (block_p * block_c)), max(2, _next_pow2(K))))
    trans_regs = block_c <= 64
    block_tc = max(2, min(block_c, _pow2_floor(budget // block_c)))
    cfg = ScanConfig(block_c, block_p, block_s, block_tc, trans_regs, num_warps)
    if CONFIG_OVERRIDE:
        cfg = ScanConfig(**{**cfg.__dict__, **CONFIG_OVERRIDE})
    return cfg


def paired_config(
    C: int, K: int, T: int, num_warps: int | None = None, dtype: torch.dtype = torch.float32
) -> ScanConfig:
    """Tiles of the unsplit forward and backward scans run together for gradients.

    Rule: the register ring on 8 warps where a position reaches at least 32 rows (``min(K, T)
    >= 32``), the transition stays in registers (``C <= 64``) and the ring fits 8 warps
    (:func:`ring_rows`); else :func:`scan_config`'s blocked body. Measured on an H100 (2026-12-07,
    ``benchmarks/results/split_NVIDIA-H100_2026-12-07_f3a4e31.md``), forward + backward with the
    fused pair: 32x1000x32x24 2.80 -> 2.30 ms and 8x10000x100x24 35.5 -> 24.6 ms with the ring;
    64x512x16x8 (16 rows) 1.90 ms blocked against 2.06 with it; at ``C = 128`` the ring (16
    warps) measured 2.2x slower. Scans run alone (the forward without gradients, Viterbi) keep
    the blocked body: there the ring was mixed (32x1000 forward 1.89 -> 2.09 ms on 8 warps, 1.76
    on 16; Viterbi at 64x512 0.56 -> 0.87 ms, forward 0.45 -> 0.35 on 4 warps). The ring takes
    8 warps whatever ``num_warps`` asks (it sets the blocked body's warps; the public default is
    4, on which the ring measured slower than the blocked body: 32x1000 3.02 against 2.84 ms);
    ``ring`` or ``num_warps`` in :data:`CONFIG_OVERRIDE` leave the choice to the override.
    """
    cfg = scan_config(C, K, num_warps, dtype)
    if "ring" in CONFIG_OVERRIDE or "num_warps" in CONFIG_OVERRIDE:
        return cfg
    if min(K, T) >= 32 and cfg.trans_regs:
        ring = ScanConfig(**{**scan_config(C, K, 8, dtype).__dict__, "ring": True})
        if ring_rows(ring, K, T, dtype):
            return ring
    return cfg


def ring_rows(cfg: ScanConfig, K: int, T: int, dtype: torch.dtype) -> int:
    """``BLOCK_R``, the rows of an unsplit ``(C, C)`` scan's register ring, or 0 for the
    temporally blocked body.

    Rule: with ``cfg.ring``, the ring holds the ``min(K, T)`` rows a position can reach, rounded
    up to a power of two, when ``rows * block_c`` is at most ``512 * num_warps`` elements (half
    in float64), 16 per thread for each of the step's ``(rows, C)`` tensors. ptxas (Triton 3.6,
    sm_90, ``tools/compile_check.py``) gives the forward ring 160 registers at ``32 x 32`` on 4
    warps and 189 at ``128 x 32`` on 8, without spills; ``128 x 32`` spills on 4. The warps are
    ``cfg``'s: :func:`paired_config` gives the paired scans 8 (at ``C = 24`` a ring of up to
    ``K = 128``); with ``CONFIG_OVERRIDE["ring"]`` they stay :func:`scan_config`'s or the
    caller's (at ``C = 24`` up to ``K = 64`` on 4 warps).
    """
    if not cfg.ring:
        return 0
    rows = max(2, _next_pow2(min(K, T)))
    budget = cfg.ring_elems or _ring_budget(cfg.num_warps, dtype)
    return rows if rows * cfg.block_c <= budget else 0


def _ring_budget(num_warps: int, dtype: torch.dtype) -> int:
    return 512 * num_warps // (2 if dtype == torch.float64 else 1)


def _kcc_config(C: int, K: int, num_warps: int | None, dtype: torch.dtype) -> tuple[int, int, int]:
    """``(block_c, block_d, num_warps)`` of the ``(K, C, C)`` kernels: ``(D, C, C)`` tiles."""
    cfg = scan_config(C, K, num_warps, dtype)
    budget = 1024 * cfg.num_warps // (2 if dtype == torch.float64 else 1)
    block_d = max(2, min(_pow2_floor(budget // (cfg.block_c * cfg.block_c)), max(2, _next_pow2(K))))
    return cfg.block_c, block_d, cfg.num_warps


def start_scores(transition: torch.Tensor) -> torch.Tensor:
    """``(K, C)`` start score ``logsumexp_{c'} transition[d, c', c]`` (``-inf`` if all forbidden)."""
    m = transition.amax(dim=-2, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    return (m + torch.log(torch.exp(transition - m).sum(dim=-2, keepdim=True))).squeeze(-2)


def _check_semiring(semiring: str) -> None:
    if semiring not in ("log", "max"):
        raise ValueError(f"semiring: expected 'log' or 'max', got {semiring!r}")


def _check_triton(cum_scores: torch.Tensor) -> None:
    from .triton_support import triton_available_for

    if not triton_available_for(cum_scores):
        raise ValueError(
            "cum_scores: the Triton kernels need a CUDA tensor (or TRITON_INTERPRET=1 set before "
            f"import, for CPU tensors) and triton installed; got a tensor on {cum_scores.device}"
            f" with HAS_TRITON={HAS_TRITON}"
        )


def run_forward_scan(
    cum: torch.Tensor,
    trans: torch.Tensor,
    db: torch.Tensor,
    lengths: torch.Tensor,
    K: int,
    ps: torch.Tensor | None,
    pe: torch.Tensor | None,
    *,
    maxsr: bool,
    backpointers: bool,
    num_warps: int | None,
    defer: bool = False,
) -> tuple:
    """Launch the forward scan on prepared inputs.

    Returns:
        ``(score64 (B,), final (B,) int64, alpha (B, T+1, C), window (B, T+1, C) | None,
        shift (B, T+1) float64, bp_duration (B, T, C) int32 | None, bp_aux (B, T, C) int32 |
        None)``; ``bp_aux`` is the best previous label per *start* with ``(C, C)`` transitions
        and per *end* with ``(K, C, C)`` transitions. With ``defer`` (``(C, C)`` transitions
        only) nothing is launched yet: an 8th element, a generator, issues the launches one
        super-block per step (:func:`.split_launch.interleave`), and the split is chosen for a
        scan paired with another (``split_config(paired=True)``).
    """
    B, T1, C = cum.shape
    T = T1 - 1
    dev = cum.device
    dt = cum.dtype
    alpha = new_float((B, T1, C), dt, dev)
    shift = new_float((B, T1), torch.float64, dev)
    score = new_float((B,), torch.float64, dev)
    final = torch.full((B,), -1, dtype=torch.int64, device=dev)
    if backpointers:
        bpd = torch.full((B, T, C), -1, dtype=torch.int32, device=dev)
        bpa = torch.full((B, T, C), -1, dtype=torch.int32, device=dev)
    else:
        bpd = bpa = torch.empty(1, dtype=torch.int32, device=dev)
    ps_arg = ps if ps is not None else cum
    pe_arg = pe if pe is not None else cum
    if trans.dim() == 2:
        cfg = scan_config(C, K, num_warps, dt)
        window = new_float((B, T1, C), dt, dev)
        flags = scan_flags(cfg, ps, pe, log=not maxsr)
        if maxsr:
            from ..viterbi.triton import _viterbi_scan_cc_kernel as kernel

            args = (cum, trans, db, lengths, ps_arg, pe_arg, alpha, window, shift, score, final)
            args += (bpd, bpa, T, K, C)
            flags["STORE_BP"] = backpointers
        else:
            from ..logpartition.triton_scan import _forward_scan_cc_kernel as kernel

            args = (cum, trans, db, lengths, ps_arg, pe_arg, alpha, window, shift, score, final)
            args += (T, K, C)
        steps = scan_cc_launches(
            kernel, args, flags, cum=cum, db=db, lengths=lengths, window=window, shift=shift,
            K=K, block_c=cfg.block_c, block_p=cfg.block_p, reverse=False, maxsr=maxsr,
            paired=defer, block_r=ring_rows(cfg, K, T, dt),
        )  # fmt: skip
        if defer:
            return score, final, alpha, window, shift, None, None, steps
        run_launches(steps)
    else:
        block_c, block_d, warps = _kcc_config(C, K, num_warps, dt)
        window = None
        start = start_scores(trans).contiguous()
        flags = dict(
            HAS_PS=ps is not None, HAS_PE=pe is not None, BLOCK_C=block_c, BLOCK_D=block_d,
            num_warps=warps,
        )  # fmt: skip
        if maxsr:
            from ..viterbi.triton import _viterbi_scan_kcc_kernel

            _viterbi_scan_kcc_kernel[(B,)](
                cum, trans, db, start, lengths, ps_arg, pe_arg,
                alpha, shift, score, final, bpd, bpa,
                T, K, C, STORE_BP=backpointers, **flags,
            )  # fmt: skip
        else:
            from ..logpartition.triton_scan import _forward_scan_kcc_kernel

            _forward_scan_kcc_kernel[(B,)](
                cum, trans, db, start, lengths, ps_arg, pe_arg, alpha, shift, score, final,
                T, K, C, **flags,
            )  # fmt: skip
    return (
        score,
        final,
        alpha,
        window,
        shift,
        bpd if backpointers else None,
        bpa if backpointers else None,
    )
