"""The register-ring loop body of the ``(C, C)`` scans (``ScanConfig.ring``: on for the paired
forward and backward scans by ``scan_launch.paired_config``, else on request).

The temporally blocked body (:mod:`.triton_scan`) reads the duration window back from global memory
once per block, behind a barrier, and then folds it with a tile per slice of rows. When the whole
window fits in registers (``BLOCK_R >= min(K, T)`` rows of ``C`` labels, at most ``512 * num_warps``
elements: ``scan_launch.ring_rows``), this body keeps it there instead: a ring of ``BLOCK_R`` slots
holds, for the last ``BLOCK_R`` positions, their window value, their cumulative score row and their
shift, and every position reduces the ring directly. Nothing the scan wrote is read back (the rows
are still stored, for the gradients and the traceback), so no step waits on memory it wrote; what
remains per position are the reductions over durations, over previous labels and the normalising
maximum. On an H100 it made the paired scans 20-30 % faster at the short rows and was mixed for
scans alone (``docs/benchmarks.md``, "Short rows").

It writes exactly the blocked body's outputs, in the same meaning (every row relative to its
own shift, maximum 0), for the forward, backward (mirrored) and Viterbi scans, so everything
downstream is unchanged. Only the unsplit scan uses it.
"""

from __future__ import annotations

from .triton_support import HAS_TRITON

__all__: list[str] = []  # jitted helpers only (private)

if HAS_TRITON:
    import triton
    import triton.language as tl

    from .triton_scan_tiled import _exp_window_value, _window_value
else:  # pragma: no cover - exercised only where triton is absent
    triton = None
    tl = None


if HAS_TRITON:

    @triton.jit
    def _ring_inputs(
        cum_b, ps_b, pe_b, tau, L, T, C, offs_c, cmask,
        REVERSE: tl.constexpr, HAS_PS: tl.constexpr, HAS_PE: tl.constexpr,
    ):  # fmt: skip
        """The rows step ``tau`` reads that are new to the program (the duration bias, a small
        table, stays in L1): its cumulative row and its two projection terms (zeros when
        absent), the first added to the position's value and the second to its window value,
        each ``(BLOCK_C,)``. Nothing is read past ``L``."""
        if REVERSE:
            row = L - tau
        else:
            row = tau
        # Masks are built from tensor comparisons: the interpreter mistypes scalar & tensor.
        rowv = offs_c * 0 + row
        live = cmask & ((offs_c * 0 + tau) <= L)
        cur = tl.load(cum_b + row * C + offs_c, mask=live, other=0.0)
        p_val = cur * 0.0
        p_sec = cur * 0.0
        if REVERSE:
            if HAS_PS:
                p_val = tl.load(ps_b + row * C + offs_c, mask=live, other=0.0)
            if HAS_PE:
                p_sec = tl.load(pe_b + (row - 1) * C + offs_c, mask=live & (rowv >= 1), other=0.0)
        else:
            if HAS_PE:
                p_val = tl.load(pe_b + (row - 1) * C + offs_c, mask=live, other=0.0)
            if HAS_PS:
                p_sec = tl.load(ps_b + row * C + offs_c, mask=live & (rowv < T), other=0.0)
        return cur, p_val, p_sec

    @triton.jit
    def _scan_cc_ring(
        cum_b, trans_ptr, MT, CM, LIVE, db_ptr, ps_b, pe_b, first_b, win_b, shift_b, bpd_b,
        bpa_b, L, T, K, C, offs_c, cmask,
        REVERSE: tl.constexpr, MAXSR: tl.constexpr, HAS_PS: tl.constexpr, HAS_PE: tl.constexpr,
        STORE_BP: tl.constexpr, TRANS_REGS: tl.constexpr, EXP_TRANS: tl.constexpr,
        BLOCK_C: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_TC: tl.constexpr,
    ):  # fmt: skip
        """Positions ``tau = 1..L`` of a ``(C, C)`` scan whose row 0 is already stored
        (:func:`.triton_scan._scan_cc_start`), with the window in a register ring.

        Slot ``j`` of the ring holds the row ``tau'`` (``ring_tau[j]``) last written to it:
        ``ring_w[j]`` its window value relative to its shift ``ring_sh[j]`` (float64) and
        ``ring_c[j]`` its cumulative-score row; row ``tau'`` contributes to ``tau`` through
        duration ``d = tau - tau'``, valid up to ``K``. Cumulative scores enter through the
        difference of two rows at most ``K`` apart and window values through the float64
        difference of two shifts, as in the blocked body, so no float32 value grows with ``T``.

        With ``EXP_TRANS`` ``MT`` holds ``E`` and the window value is taken in exponential space
        (:func:`.triton_scan_tiled._exp_window_value`, column maxima ``CM``, live columns
        ``LIVE``). Returns the flags of columns whose sum fell too low, ``(BLOCK_C,)`` int32
        (zeros without ``EXP_TRANS``).
        """
        NEG: tl.constexpr = float("-inf")
        BIG: tl.constexpr = 1073741824
        DT = cum_b.dtype.element_ty
        offs_r = tl.arange(0, BLOCK_R)
        if REVERSE:
            row0 = L
        else:
            row0 = L * 0
        # row 0 was stored by other threads of this program
        tl.debug_barrier()
        slot0 = (offs_r == 0)[:, None] & cmask[None, :]
        w0 = tl.load(win_b + row0 * C + offs_c, mask=cmask, other=NEG)
        c0 = tl.load(cum_b + row0 * C + offs_c, mask=cmask, other=0.0)
        ring_w = tl.where(slot0, w0[None, :], NEG).to(DT)
        ring_c = tl.where(slot0, c0[None, :], 0.0).to(DT)
        zero64 = L.to(tl.float64) * 0.0
        ring_sh = tl.zeros([BLOCK_R], tl.float64) + zero64
        # an empty slot's row lies more than K back, so its duration is never valid
        ring_tau = tl.where(offs_r == 0, 0, -K - 1).to(tl.int64)
        r_cur = zero64
        flags = offs_c * 0
        # Each step's new rows are loaded one step ahead (none depends on the scan), so that
        # their latency (a cumulative row not yet read, from DRAM) overlaps a step instead of
        # starting it.
        cur_n, pval_n, psec_n = _ring_inputs(
            cum_b, ps_b, pe_b, L * 0 + 1, L, T, C, offs_c, cmask, REVERSE, HAS_PS, HAS_PE
        )
        for tau in range(1, L + 1):
            if REVERSE:
                row = L - tau
            else:
                row = tau
            rowv = offs_c * 0 + row
            cur = cur_n
            p_val = pval_n
            p_sec = psec_n
            cur_n, pval_n, psec_n = _ring_inputs(
                cum_b, ps_b, pe_b, tau + 1, L, T, C, offs_c, cmask, REVERSE, HAS_PS, HAS_PE
            )
            d = tau - ring_tau
            dm = (d <= K)[:, None] & cmask[None, :]
            dbv = tl.load(db_ptr + (d - 1)[:, None] * C + offs_c[None, :], mask=dm, other=NEG)
            if REVERSE:
                diff = ring_c - cur[None, :]
            else:
                diff = cur[None, :] - ring_c
            x = tl.where(dm, diff + ring_w + (ring_sh - r_cur).to(DT)[:, None] + dbv, NEG)
            if MAXSR:
                val = tl.max(x, axis=0)
                # the smallest best duration (the Viterbi tie rule)
                best_d = tl.min(tl.where(x == val[None, :], d[:, None], BIG), axis=0)
            else:
                lm = tl.max(x, axis=0)
                safe = tl.where(lm == NEG, 0.0, lm)
                val = safe + tl.log(tl.sum(tl.exp(x - safe[None, :]), axis=0))
            val = tl.where(cmask, val + p_val, NEG)
            mx = tl.max(val, axis=0)
            mxs = tl.where(mx == NEG, 0.0, mx)
            fn = val - mxs
            r_t = r_cur + mxs.to(tl.float64)
            tl.store(first_b + row * C + offs_c, fn, mask=cmask)
            tl.store(shift_b + row, r_t)
            if STORE_BP:
                tl.store(bpd_b + (row - 1) * C + offs_c, best_d.to(tl.int32), mask=cmask)
            # the window value of this row: (+)_{c_in} fn[c_in] + M[c_in, c] + proj
            if EXP_TRANS:
                sec, flag = _exp_window_value(fn, MT, CM, LIVE, mx > NEG)
                flags = flags | flag
            else:
                sec, arg = _window_value(
                    fn, MT, first_b + row * C, trans_ptr, C, C, offs_c, cmask,
                    MAXSR, TRANS_REGS, BLOCK_C, BLOCK_TC,
                )  # fmt: skip
            sec += p_sec
            tl.store(win_b + row * C + offs_c, sec, mask=cmask)
            if STORE_BP:
                tl.store(bpa_b + row * C + offs_c, arg.to(tl.int32), mask=cmask & (rowv < T))
            into = offs_r == tau % BLOCK_R
            ring_w = tl.where(into[:, None], sec[None, :], ring_w)
            ring_c = tl.where(into[:, None], cur[None, :], ring_c)
            ring_sh = tl.where(into, r_t, ring_sh)
            ring_tau = tl.where(into, tau, ring_tau)
            r_cur = r_t
        return flags
