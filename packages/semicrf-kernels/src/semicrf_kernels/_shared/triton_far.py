"""The far-window kernel of the split scan: a super-block's far rows, over the whole GPU.

For a super-block ``tau in [t0, t0 + S)`` (scan time: positions forward, ``L - s`` in reverse)
the window rows older than ``far_end = t0 - GAP``, ``r in [tau - K, far_end)``, were all written
by earlier super-blocks (with ``GAP = S``, by those before the previous one, so this kernel runs
while the previous super-block is scanned). One program reduces ``RS`` of those rows (a
*slice*) for ``PF`` outputs and every label, with the same loop body as the serial scan's phase 1
(:func:`.triton_scan._scan_cc_window`); the grid is ``(S / PF, NSPLIT, batch)``. Its partials,
relative to the shift of row ``far_end - 1``, are then merged in slice order by
:func:`_far_reduce_kernel`, as parallel as the far kernel (``(S / PR, batch)`` programs), so
that the serial kernel reads one value per output and label: merging ``NSPLIT`` partials in the
serial kernel put ``ceil(NSPLIT / BLOCK_K)`` dependent loads on every block of the critical path
(fitted to H100 timings at ``K = 3000``: about 60 ns per slice and position, some 40 % of the
scan with 128-position super-blocks). No
atomics, so the result is bitwise deterministic. See :mod:`.split_launch` for the host side and
``docs/kernels.md`` for the figure.
"""

from __future__ import annotations

from .triton_support import HAS_TRITON

__all__: list[str] = []  # kernels only (private); launched by .split_launch

if HAS_TRITON:
    import triton
    import triton.language as tl

    from .triton_scan import _far_merge, _scan_cc_window
else:  # pragma: no cover - exercised only where triton is absent
    triton = None
    tl = None


if HAS_TRITON:

    @triton.jit(do_not_specialize=["T", "K", "t0", "S", "RS", "GAP"])
    def _far_window_kernel(
        cum_ptr,  # (B, T+1, C) cumulative scores
        db_ptr,  # (K, C) duration bias
        len_ptr,  # (B,) int64 lengths
        win_ptr,  # (B, T+1, C) window values, relative to their row's shift
        shift_ptr,  # (B, T+1) float64 per-row shift
        farv_ptr,  # out (B, S, NSPLIT, C): far partial relative to shift[row(t0 - GAP - 1)]
        fard_ptr,  # out (B, S, NSPLIT, C) int32: its best duration (MAXSR)
        T, K, C, t0, S, RS, GAP,
        REVERSE: tl.constexpr, MAXSR: tl.constexpr,
        BLOCK_C: tl.constexpr, BLOCK_PF: tl.constexpr, BLOCK_SF: tl.constexpr,
    ):  # fmt: skip
        BIG: tl.constexpr = 1073741824
        NEG: tl.constexpr = float("-inf")
        tile = tl.program_id(0)
        split = tl.program_id(1)
        nsplit = tl.num_programs(1)
        b = tl.program_id(2).to(tl.int64)
        L = tl.load(len_ptr + b)
        DT = cum_ptr.dtype.element_ty
        offs_c = tl.arange(0, BLOCK_C)
        cmask = offs_c < C
        offs_p = tl.arange(0, BLOCK_PF)
        cum_b = cum_ptr + b * (T + 1) * C
        win_b = win_ptr + b * (T + 1) * C
        shift_b = shift_ptr + b * (T + 1)
        j = tile * BLOCK_PF + offs_p  # output index inside the super-block
        taus = t0 + j
        pact = (taus <= L) & (j < S)
        live = L >= t0  # the sequence has outputs in this super-block
        # this program's rows: the split-th slice of RS rows counted back from far_end, clipped
        # to the oldest row any of its outputs reaches
        far_end = t0 - GAP
        hi = far_end - split * RS
        lo = tl.maximum(tl.maximum(hi - RS, t0 + tile * BLOCK_PF - K), 0)
        hi = tl.where(live, hi, lo)
        if REVERSE:
            rows_cur = L - taus
            ref_row = L - (far_end - 1)
        else:
            rows_cur = taus
            ref_row = far_end - 1
        r_ref = tl.load(shift_b + ref_row, mask=live, other=0.0)
        cumcur = tl.load(
            cum_b + rows_cur[:, None] * C + offs_c[None, :],
            mask=pact[:, None] & cmask[None, :],
            other=0.0,
        )
        acc_v, acc_d = _scan_cc_window(
            cum_b, win_b, shift_b, db_ptr, lo, hi, L, K, C, r_ref, taus, pact, cumcur, offs_c,
            cmask, tl.full([BLOCK_PF, BLOCK_C], NEG, DT), tl.full([BLOCK_PF, BLOCK_C], BIG, tl.int64),
            REVERSE, MAXSR, BLOCK_C, BLOCK_PF, BLOCK_SF,
        )  # fmt: skip
        out = ((b * S + j[:, None]) * nsplit + split) * C + offs_c[None, :]
        omask = (j < S)[:, None] & cmask[None, :]
        tl.store(farv_ptr + out, acc_v, mask=omask)
        if MAXSR:
            tl.store(fard_ptr + out, acc_d.to(tl.int32), mask=omask)

    @triton.jit(do_not_specialize=["S", "NSPLIT", "C", "t0"])
    def _far_reduce_kernel(
        farv_ptr,  # (B, S, NSPLIT, C) the far kernel's partials
        fard_ptr,  # (B, S, NSPLIT, C) int32 their best durations (MAXSR)
        outv_ptr,  # out (B, S, 1, C): the partials merged in slice order (same shift)
        outd_ptr,  # out (B, S, 1, C) int32: the merged best duration (MAXSR)
        len_ptr,  # (B,) int64 lengths
        S, NSPLIT, C, t0,
        MAXSR: tl.constexpr,
        BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_K: tl.constexpr,
    ):  # fmt: skip
        """Merge each output's ``NSPLIT`` far partials into one, in slice order (the max keeps
        the smaller duration on ties), for ``BLOCK_P`` outputs of the super-block ``[t0, t0 +
        S)`` (scan time) and every label."""
        tile = tl.program_id(0)
        b = tl.program_id(1).to(tl.int64)
        L = tl.load(len_ptr + b)
        offs_c = tl.arange(0, BLOCK_C)
        cmask = offs_c < C
        j = tile * BLOCK_P + tl.arange(0, BLOCK_P)
        pact = (j < S) & (t0 + j <= L)
        v, d = _far_merge(
            farv_ptr + b * S * NSPLIT * C, fard_ptr + b * S * NSPLIT * C, j, NSPLIT, C,
            L.to(tl.float64) * 0.0, pact, offs_c, cmask, farv_ptr.dtype.element_ty, MAXSR,
            BLOCK_C, BLOCK_P, BLOCK_K,
        )  # fmt: skip
        out = (b * S + j[:, None]) * C + offs_c[None, :]
        omask = (j < S)[:, None] & cmask[None, :]
        tl.store(outv_ptr + out, v, mask=omask)
        if MAXSR:
            tl.store(outd_ptr + out, d.to(tl.int32), mask=omask)
