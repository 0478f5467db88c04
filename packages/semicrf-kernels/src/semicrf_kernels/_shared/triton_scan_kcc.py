"""The jitted loop body of the ``(K, C, C)`` scans (transition depending on the duration).

Shared by the forward scan (:mod:`semicrf_kernels.logpartition.triton_scan`) and the Viterbi scan
(:mod:`semicrf_kernels.viterbi.triton`): O(K C^2) per position, one position at a time (the
reduction over the previous label does not factorise, so there is no temporal blocking and no
split of the window).
"""

from __future__ import annotations

from .triton_support import HAS_TRITON

__all__: list[str] = []  # jitted helpers only (private)

if HAS_TRITON:
    import triton
    import triton.language as tl

    from .triton_scan import _final_score, _scan_rows
else:  # pragma: no cover - exercised only where triton is absent
    triton = None
    tl = None


if HAS_TRITON:

    @triton.jit
    def _scan_kcc_body(
        cum_ptr,  # (B, T+1, C)
        trans_ptr,  # (K, C, C)
        db_ptr,  # (K, C)
        start_ptr,  # (K, C) logsumexp_c' trans[d, c', c] (max semiring's first segment)
        len_ptr,  # (B,) int64
        ps_ptr,
        pe_ptr,
        first_ptr,  # out (B, T+1, C) alpha_n
        shift_ptr,  # out (B, T+1) float64
        score_ptr,  # out (B,) float64
        final_ptr,  # out (B,) int64
        bpd_ptr,  # out (B, T, C) int32
        bpl_ptr,  # out (B, T, C) int32 previous label of the best segment ending at t-1
        T,
        K,
        C,
        MAXSR: tl.constexpr,
        HAS_PS: tl.constexpr,
        HAS_PE: tl.constexpr,
        STORE_BP: tl.constexpr,
        BLOCK_C: tl.constexpr,
        BLOCK_D: tl.constexpr,
    ):
        """The ``(K, C, C)`` forward scan of one sequence (the program's), one position at a
        time; ``MAXSR`` picks the semiring (``STORE_BP``: backpointers, max only)."""
        # alpha[t, c] = pe[t-1, c] + (+)_{d} [(+)_{c'} alpha[t-d, c'] + trans[d-1, c', c]]
        #                                    + cum[t, c] - cum[t-d, c] + ps[t-d, c] + db[d-1, c]
        NEG: tl.constexpr = float("-inf")
        BIG: tl.constexpr = 1073741824
        b, L, offs_c, cmask, cum_b, ps_b, pe_b, first_b, shift_b = _scan_rows(
            len_ptr, cum_ptr, ps_ptr, pe_ptr, first_ptr, shift_ptr, T, C, BLOCK_C
        )
        DT = cum_ptr.dtype.element_ty
        offs_d = tl.arange(0, BLOCK_D)
        zero64 = L.to(tl.float64) * 0.0
        tl.store(first_b + offs_c, tl.where(cmask, 0.0, NEG).to(DT), mask=cmask)
        tl.store(shift_b, zero64)
        r_prev = zero64
        cc_mask = cmask[:, None] & cmask[None, :]
        for t in range(1, L + 1):
            tl.debug_barrier()
            cur = tl.load(cum_b + t * C + offs_c, mask=cmask, other=0.0)
            if MAXSR:
                acc_v = tl.full([BLOCK_C], NEG, DT)
                acc_d = tl.full([BLOCK_C], BIG, tl.int64)
                acc_l = tl.full([BLOCK_C], -1, tl.int64)
            else:
                acc_m = tl.full([BLOCK_C], NEG, DT)
                acc_s = tl.zeros([BLOCK_C], DT)
            dmax = tl.minimum(t, K)
            for d0 in range(1, dmax + 1, BLOCK_D):
                d = d0 + offs_d
                dv = d <= dmax
                s = t - d
                m2 = dv[:, None] & cmask[None, :]
                al = tl.load(first_b + s[:, None] * C + offs_c[None, :], mask=m2, other=NEG)
                sh = tl.load(shift_b + s, mask=dv, other=0.0)
                al = al + (sh - r_prev).to(DT)[:, None]
                m3 = dv[:, None, None] & cc_mask[None, :, :]
                tr = tl.load(
                    trans_ptr
                    + (d - 1)[:, None, None] * C * C
                    + offs_c[None, :, None] * C
                    + offs_c[None, None, :],
                    mask=m3,
                    other=NEG,
                )
                y = al[:, :, None] + tr  # (D, C_prev, C)
                if MAXSR:
                    rv = tl.max(y, axis=1)
                    ra = tl.min(tl.where(y == rv[:, None, :], offs_c[None, :, None], BIG), axis=1)
                    # the first segment sums its virtual start label out (log-sum-exp)
                    st = tl.load(
                        start_ptr + (d - 1)[:, None] * C + offs_c[None, :], mask=m2, other=NEG
                    )
                    first_seg = (s == 0)[:, None]
                    rv = tl.where(first_seg, st + (sh - r_prev).to(DT)[:, None], rv)
                    ra = tl.where(first_seg, -1, ra)
                else:
                    ym = tl.max(y, axis=1)
                    ysafe = tl.where(ym == NEG, 0.0, ym)
                    rv = ysafe + tl.log(tl.sum(tl.exp(y - ysafe[:, None, :]), axis=1))
                cw = tl.load(cum_b + s[:, None] * C + offs_c[None, :], mask=m2, other=0.0)
                x = rv + (cur[None, :] - cw)
                x += tl.load(db_ptr + (d - 1)[:, None] * C + offs_c[None, :], mask=m2, other=NEG)
                if HAS_PS:
                    x += tl.load(ps_b + s[:, None] * C + offs_c[None, :], mask=m2, other=0.0)
                x = tl.where(m2, x, NEG)
                if MAXSR:
                    tv = tl.max(x, axis=0)
                    hit = x == tv[None, :]
                    td = tl.min(tl.where(hit, d[:, None], BIG), axis=0)
                    tlab = tl.max(tl.where(hit & (d[:, None] == td[None, :]), ra, -BIG), axis=0)
                    better = tv > acc_v  # tiles in increasing duration: ties keep the smaller
                    acc_d = tl.where(better, td, acc_d)
                    acc_l = tl.where(better, tlab.to(tl.int64), acc_l)
                    acc_v = tl.where(better, tv, acc_v)
                else:
                    tm = tl.max(x, axis=0)
                    nm = tl.maximum(acc_m, tm)
                    safe = tl.where(nm == NEG, 0.0, nm)
                    acc_s = acc_s * tl.exp(acc_m - safe) + tl.sum(tl.exp(x - safe[None, :]), axis=0)
                    acc_m = nm
            if MAXSR:
                val = acc_v
            else:
                safe = tl.where(acc_m == NEG, 0.0, acc_m)
                val = safe + tl.log(acc_s)
            if HAS_PE:
                val += tl.load(pe_b + (t - 1) * C + offs_c, mask=cmask, other=0.0)
            val = tl.where(cmask, val, NEG)
            mx = tl.max(val, axis=0)
            mxs = tl.where(mx == NEG, 0.0, mx)
            fn = val - mxs
            r_t = r_prev + mxs.to(tl.float64)
            tl.store(first_b + t * C + offs_c, fn, mask=cmask)
            tl.store(shift_b + t, r_t)
            if STORE_BP:
                tl.store(bpd_ptr + b * T * C + (t - 1) * C + offs_c, acc_d.to(tl.int32), mask=cmask)
                tl.store(bpl_ptr + b * T * C + (t - 1) * C + offs_c, acc_l.to(tl.int32), mask=cmask)
            r_prev = r_t
        tl.debug_barrier()
        _final_score(
            first_b + L * C, shift_b + L, score_ptr + b, final_ptr + b, offs_c, cmask, MAXSR
        )
