"""Triton kernels of the log partition's gradients (launched from :mod:`.triton`).

The ``(K, C, C)`` backward scan, the checkpointed drift measurement (cut masses), the
marginals of segment starts/ends and the shared parameters' gradient reductions; see the
module docstring of :mod:`.triton` for the algorithm.
"""

from __future__ import annotations

from .._shared.triton_support import HAS_TRITON

if HAS_TRITON:
    import triton
    import triton.language as tl

    @triton.jit(do_not_specialize=["T", "K"])
    def _scan_kcc_backward_kernel(
        cum_ptr,  # (B, T+1, C)
        trans_ptr,  # (K, C, C)
        db_ptr,  # (K, C)
        len_ptr,  # (B,) int64
        ps_ptr,
        pe_ptr,
        alpha_ptr,  # (B, T+1, C) forward alpha_n
        ashift_ptr,  # (B, T+1) float64 forward shift
        logz_ptr,  # (B,) float64
        lps_ptr,  # out (B, T+1, C) log P_start relative to log Z (row s < L)
        win_ptr,  # out (B, T+1, C) beta_n[e] + proj_end[e-1]
        shift_ptr,  # out (B, T+1) float64
        T,
        K,
        C,
        HAS_PS: tl.constexpr,
        HAS_PE: tl.constexpr,
        BLOCK_C: tl.constexpr,
        BLOCK_D: tl.constexpr,
    ):
        # beta[s, c'] = (+)_{d, c} trans[d-1, c', c] + Y[d, c],
        # Y[d, c] = db[d-1, c] + cum[s+d, c] - cum[s, c] + ps[s, c] + beta[s+d, c] + pe[s+d-1, c]
        # P_start[s, c] = sum_{d, c'} exp(alpha[s, c'] + trans[d-1, c', c] + Y[d, c] - log Z)
        NEG: tl.constexpr = float("-inf")
        b = tl.program_id(0).to(tl.int64)
        L = tl.load(len_ptr + b)
        logz = tl.load(logz_ptr + b)
        # a sequence without segmentation (log Z = -inf) is measured against 0 and discarded
        logz_s = tl.where(logz == NEG, 0.0, logz)
        DT = cum_ptr.dtype.element_ty
        offs_c = tl.arange(0, BLOCK_C)
        cmask = offs_c < C
        offs_d = tl.arange(0, BLOCK_D)
        cum_b = cum_ptr + b * (T + 1) * C
        ps_b = ps_ptr + b * T * C
        pe_b = pe_ptr + b * T * C
        alpha_b = alpha_ptr + b * (T + 1) * C
        win_b = win_ptr + b * (T + 1) * C
        shift_b = shift_ptr + b * (T + 1)
        lps_b = lps_ptr + b * (T + 1) * C
        zero64 = L.to(tl.float64) * 0.0
        w0 = tl.zeros([BLOCK_C], DT)
        if HAS_PE:
            w0 += tl.load(pe_b + (L - 1) * C + offs_c, mask=cmask, other=0.0)
        tl.store(win_b + L * C + offs_c, w0, mask=cmask)
        tl.store(shift_b + L, zero64)
        r_prev = zero64
        cc_mask = cmask[:, None] & cmask[None, :]
        for tau in range(1, L + 1):
            tl.debug_barrier()
            s = L - tau
            cs = tl.load(cum_b + s * C + offs_c, mask=cmask, other=0.0)
            al = tl.load(alpha_b + s * C + offs_c, mask=cmask, other=NEG)
            ra_s = tl.load(ashift_ptr + b * (T + 1) + s)
            mb = tl.full([BLOCK_C], NEG, DT)
            sb = tl.zeros([BLOCK_C], DT)
            mp = tl.full([BLOCK_C], NEG, DT)
            sp = tl.zeros([BLOCK_C], DT)
            emax = tl.minimum(K, L - s)
            for d0 in range(1, emax + 1, BLOCK_D):
                d = d0 + offs_d
                dv = d <= emax
                e = s + d
                m2 = dv[:, None] & cmask[None, :]
                y = tl.load(win_b + e[:, None] * C + offs_c[None, :], mask=m2, other=NEG)
                sh = tl.load(shift_b + e, mask=dv, other=0.0)
                y = y + (sh - r_prev).to(DT)[:, None]
                y += (
                    tl.load(cum_b + e[:, None] * C + offs_c[None, :], mask=m2, other=0.0)
                    - cs[None, :]
                )
                y += tl.load(db_ptr + (d - 1)[:, None] * C + offs_c[None, :], mask=m2, other=NEG)
                if HAS_PS:
                    y += tl.load(ps_b + s * C + offs_c, mask=cmask, other=0.0)[None, :]
                y = tl.where(m2, y, NEG)
                tr = tl.load(
                    trans_ptr
                    + (d - 1)[:, None, None] * C * C
                    + offs_c[None, :, None] * C
                    + offs_c[None, None, :],
                    mask=dv[:, None, None] & cc_mask[None, :, :],
                    other=NEG,
                )
                t3 = tr + y[:, None, :]  # (D, C_prev, C)
                tm = tl.max(tl.max(t3, axis=2), axis=0)
                nm = tl.maximum(mb, tm)
                safe = tl.where(nm == NEG, 0.0, nm)
                sb = sb * tl.exp(mb - safe) + tl.sum(
                    tl.sum(tl.exp(t3 - safe[None, :, None]), axis=2), axis=0
                )
                mb = nm
                u3 = t3 + al[None, :, None]
                um = tl.max(tl.max(u3, axis=1), axis=0)
                nmp = tl.maximum(mp, um)
                safep = tl.where(nmp == NEG, 0.0, nmp)
                sp = sp * tl.exp(mp - safep) + tl.sum(
                    tl.sum(tl.exp(u3 - safep[None, None, :]), axis=1), axis=0
                )
                mp = nmp
            safe = tl.where(mb == NEG, 0.0, mb)
            beta = tl.where(cmask, safe + tl.log(sb), NEG)
            mx = tl.max(beta, axis=0)
            mxs = tl.where(mx == NEG, 0.0, mx)
            r_s = r_prev + mxs.to(tl.float64)
            wv = beta - mxs
            if HAS_PE:
                wv += tl.load(
                    pe_b + (s - 1) * C + offs_c, mask=cmask & ((offs_c * 0 + s) >= 1), other=0.0
                )
            tl.store(win_b + s * C + offs_c, wv, mask=cmask)
            tl.store(shift_b + s, r_s)
            safep = tl.where(mp == NEG, 0.0, mp)
            rel = tl.where(logz == NEG, NEG, (ra_s + r_prev - logz_s).to(DT))
            tl.store(lps_b + s * C + offs_c, safep + tl.log(sp) + rel, mask=cmask)
            r_prev = r_s

    @triton.jit
    def _cut_mass_setup(len_ptr, logz_ptr, C, BLOCK_C: tl.constexpr):
        """Program ``(b, j)`` of a cut-mass kernel: sequence, checkpoint index, length, log Z
        (and its finite stand-in: a sequence without segmentation, log Z = -inf, is measured
        against 0 and discarded) and the label offsets."""
        NEG: tl.constexpr = float("-inf")
        b = tl.program_id(0).to(tl.int64)
        j = tl.program_id(1)
        L = tl.load(len_ptr + b)
        logz = tl.load(logz_ptr + b)
        logz_s = tl.where(logz == NEG, 0.0, logz)
        offs_c = tl.arange(0, BLOCK_C)
        cmask = offs_c < C
        return b, j, L, logz, logz_s, offs_c, cmask

    @triton.jit(do_not_specialize=["T", "K", "SPACING", "J"])
    def _cut_mass_cc_kernel(
        cum_ptr, db_ptr, len_ptr, logz_ptr,
        wf_ptr, ra_ptr, wb_ptr, rb_ptr,  # forward / backward window values and shifts
        out_ptr,  # (B, J) float64: log(mass of segments covering the checkpoint / Z)
        T, K, C, SPACING, J,
        BLOCK_C: tl.constexpr, BLOCK_S: tl.constexpr, BLOCK_D: tl.constexpr,
    ):  # fmt: skip
        # Every segmentation has exactly one segment covering position p, so
        # sum_{s <= p < s+d} exp(A[s] + seg(s, d) + beta[s+d] - log Z) = 1 exactly; its computed
        # value measures the accumulated rounding drift at p.
        NEG: tl.constexpr = float("-inf")
        b, j, L, logz, logz_s, offs_c, cmask = _cut_mass_setup(len_ptr, logz_ptr, C, BLOCK_C)
        DT = cum_ptr.dtype.element_ty
        offs_s = tl.arange(0, BLOCK_S)
        offs_d = tl.arange(0, BLOCK_D)
        base = b * (T + 1)
        p = tl.minimum(j.to(tl.int64) * SPACING, L - 1)
        acc = logz_s * 0.0
        s_lo = tl.maximum(p - K + 1, 0)
        for s0 in range(s_lo, p + 1, BLOCK_S):
            s = s0 + offs_s
            sv = s <= p
            m2 = sv[:, None] & cmask[None, :]
            qf = tl.load(wf_ptr + (base + s)[:, None] * C + offs_c[None, :], mask=m2, other=NEG)
            cs = tl.load(cum_ptr + (base + s)[:, None] * C + offs_c[None, :], mask=m2, other=0.0)
            ras = tl.load(ra_ptr + base + s, mask=sv, other=0.0)
            d_lo = tl.maximum(p - (s0 + BLOCK_S - 1) + 1, 1)
            d_hi = tl.minimum(K, L - s0)
            for d0 in range(d_lo, d_hi + 1, BLOCK_D):
                d = d0 + offs_d
                e = s[:, None] + d[None, :]
                v = sv[:, None] & (e > p) & (e <= L) & (d[None, :] <= K)
                m3 = v[:, :, None] & cmask[None, None, :]
                eo = (base + e)[:, :, None] * C + offs_c[None, None, :]
                x = tl.load(wb_ptr + eo, mask=m3, other=NEG)
                x += tl.load(cum_ptr + eo, mask=m3, other=0.0) - cs[:, None, :]
                x += tl.load(
                    db_ptr + (d - 1)[:, None] * C + offs_c[None, :],
                    mask=(d <= K)[:, None] & cmask[None, :],
                    other=NEG,
                )[None, :, :]
                rbe = tl.load(rb_ptr + base + e, mask=v, other=0.0)
                x += qf[:, None, :] + (ras[:, None] + rbe - logz_s).to(DT)[:, :, None]
                x = tl.where(m3, x, NEG)
                acc += tl.sum(tl.sum(tl.sum(tl.exp(x), axis=2), axis=1), axis=0).to(tl.float64)
        ok = acc > 0
        val = tl.where(ok, tl.log(tl.where(ok, acc, 1.0)), 0.0)
        tl.store(out_ptr + b * J + j, tl.where(logz > NEG, val, 0.0))

    @triton.jit(do_not_specialize=["T", "K", "SPACING", "J"])
    def _cut_mass_kcc_kernel(
        cum_ptr, trans_ptr, db_ptr, len_ptr, logz_ptr, ps_ptr,
        alpha_ptr, ra_ptr, wb_ptr, rb_ptr, out_ptr,
        T, K, C, SPACING, J,
        HAS_PS: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_D: tl.constexpr,
    ):  # fmt: skip
        NEG: tl.constexpr = float("-inf")
        b, j, L, logz, logz_s, offs_c, cmask = _cut_mass_setup(len_ptr, logz_ptr, C, BLOCK_C)
        DT = cum_ptr.dtype.element_ty
        offs_d = tl.arange(0, BLOCK_D)
        cc_mask = cmask[:, None] & cmask[None, :]
        base = b * (T + 1)
        p = tl.minimum(j.to(tl.int64) * SPACING, L - 1)
        acc = logz_s * 0.0
        for s in range(tl.maximum(p - K + 1, 0), p + 1):
            al = tl.load(alpha_ptr + (base + s) * C + offs_c, mask=cmask, other=NEG)
            cs = tl.load(cum_ptr + (base + s) * C + offs_c, mask=cmask, other=0.0)
            ras = tl.load(ra_ptr + base + s)
            dmax = tl.minimum(K, L - s)
            for d0 in range(p - s + 1, dmax + 1, BLOCK_D):
                d = d0 + offs_d
                dv = d <= dmax
                e = s + d
                m2 = dv[:, None] & cmask[None, :]
                y = tl.load(wb_ptr + (base + e)[:, None] * C + offs_c[None, :], mask=m2, other=NEG)
                y += (
                    tl.load(cum_ptr + (base + e)[:, None] * C + offs_c[None, :], mask=m2, other=0.0)
                    - cs[None, :]
                )
                y += tl.load(db_ptr + (d - 1)[:, None] * C + offs_c[None, :], mask=m2, other=NEG)
                if HAS_PS:
                    y += tl.load(ps_ptr + (b * T + s) * C + offs_c, mask=cmask, other=0.0)[None, :]
                rbe = tl.load(rb_ptr + base + e, mask=dv, other=0.0)
                y += (ras + rbe - logz_s).to(DT)[:, None]
                y = tl.where(m2, y, NEG)
                tr = tl.load(
                    trans_ptr
                    + (d - 1)[:, None, None] * C * C
                    + offs_c[None, :, None] * C
                    + offs_c[None, None, :],
                    mask=dv[:, None, None] & cc_mask[None, :, :],
                    other=NEG,
                )
                x = tr + al[None, :, None] + y[:, None, :]
                acc += tl.sum(tl.sum(tl.sum(tl.exp(x), axis=2), axis=1), axis=0).to(tl.float64)
        ok = acc > 0
        val = tl.where(ok, tl.log(tl.where(ok, acc, 1.0)), 0.0)
        tl.store(out_ptr + b * J + j, tl.where(logz > NEG, val, 0.0))

    @triton.jit(do_not_specialize=["T", "G_STRIDE"])
    def _marginals_kernel(
        len_ptr,
        alpha_ptr, wf_ptr, ra_ptr,  # forward rows
        first_ptr, wb_ptr, rb_ptr,  # backward rows (gamma_n, or log P_start with KCC)
        lz_ptr, logz_ptr,
        g_ptr,  # (B,) upstream gradient, any stride (a summed loss passes a stride-0 expand)
        G_STRIDE, ps_ptr, pe_ptr,
        gcum_ptr, gps_ptr, gpe_ptr,  # out (B, T+1, C), (B, T, C), (B, T, C)
        T, C,
        KCC: tl.constexpr, HAS_PS: tl.constexpr, HAS_PE: tl.constexpr,
        WANT_PS: tl.constexpr, WANT_PE: tl.constexpr,
        BLOCK_T: tl.constexpr, BLOCK_C: tl.constexpr,
    ):  # fmt: skip
        # Row q of every output: grad_cum[q] = g (P_end[q] - P_start[q]), grad_proj_start[q] =
        # g P_start[q], grad_proj_end[q-1] = g P_end[q]; zero outside [0, L].
        b = tl.program_id(0).to(tl.int64)
        q = tl.program_id(1).to(tl.int64) * BLOCK_T + tl.arange(0, BLOCK_T)
        offs_c = tl.arange(0, BLOCK_C)
        cmask = offs_c < C
        L = tl.load(len_ptr + b)
        logz = tl.load(logz_ptr + b)
        DT = alpha_ptr.dtype.element_ty
        # a sequence without a segmentation contributes zeros, whatever its upstream gradient
        g = tl.where(logz > float("-inf"), tl.load(g_ptr + b * G_STRIDE).to(DT), 0.0)
        base = b * (T + 1)
        inr = q <= T
        lzq = tl.load(lz_ptr + base + q, mask=inr, other=0.0)
        shared = (
            tl.load(ra_ptr + base + q, mask=inr, other=0.0)
            + tl.load(rb_ptr + base + q, mask=inr, other=0.0)
            - lzq
        ).to(DT)
        rowc = (base + q)[:, None] * C + offs_c[None, :]
        prow = (b * T + q - 1)[:, None] * C + offs_c[None, :]  # projections at position q - 1
        vend = (q >= 1) & (q <= L)
        me = vend[:, None] & cmask[None, :]
        xe = tl.load(alpha_ptr + rowc, mask=me, other=0.0) + tl.load(
            wb_ptr + rowc, mask=me, other=0.0
        )
        if HAS_PE:
            xe -= tl.load(pe_ptr + prow, mask=me, other=0.0)
        p_end = tl.where(me, tl.exp(xe + shared[:, None]), 0.0)
        vst = q < L
        ms = vst[:, None] & cmask[None, :]
        if KCC:
            xs = tl.load(first_ptr + rowc, mask=ms, other=0.0) + (logz - lzq).to(DT)[:, None]
        else:
            xs = tl.load(wf_ptr + rowc, mask=ms, other=0.0) + tl.load(
                first_ptr + rowc, mask=ms, other=0.0
            )
            if HAS_PS:
                xs -= tl.load(ps_ptr + prow + C, mask=ms, other=0.0)
            xs += shared[:, None]
        p_start = tl.where(ms, tl.exp(xs), 0.0)
        mo = inr[:, None] & cmask[None, :]
        tl.store(gcum_ptr + rowc, g * (p_end - p_start), mask=mo)
        if WANT_PS:
            tl.store(gps_ptr + prow + C, g * p_start, mask=(q < T)[:, None] & cmask[None, :])
        if WANT_PE:
            tl.store(gpe_ptr + prow, g * p_end, mask=((q >= 1) & inr)[:, None] & cmask[None, :])

    @triton.jit(do_not_specialize=["T", "CHUNK", "NCH"])
    def _grad_trans_cc_kernel(
        len_ptr, alpha_ptr, ra_ptr, first_ptr, rb_ptr, lz_ptr, trans_ptr,
        out_ptr,  # (B, NCH, C, C) float64 partial sums
        T, C, CHUNK, NCH,
        BLOCK_S: tl.constexpr, BLOCK_TC: tl.constexpr, BLOCK_C: tl.constexpr,
    ):  # fmt: skip
        NEG: tl.constexpr = float("-inf")
        b = tl.program_id(0).to(tl.int64)
        ch = tl.program_id(1).to(tl.int64)
        ct = tl.program_id(2)
        L = tl.load(len_ptr + b)
        DT = alpha_ptr.dtype.element_ty
        offs_c = tl.arange(0, BLOCK_C)
        cmask = offs_c < C
        cin = ct * BLOCK_TC + tl.arange(0, BLOCK_TC)
        inm = cin < C
        offs_s = tl.arange(0, BLOCK_S)
        tr = tl.load(
            trans_ptr + cin[:, None] * C + offs_c[None, :],
            mask=inm[:, None] & cmask[None, :],
            other=NEG,
        )
        base = b * (T + 1)
        acc = tl.zeros([BLOCK_TC, BLOCK_C], tl.float64)
        stop = tl.minimum((ch + 1) * CHUNK, L)
        for s0 in range(ch * CHUNK, stop, BLOCK_S):
            s = s0 + offs_s
            sv = s < stop
            a = tl.load(
                alpha_ptr + (base + s)[:, None] * C + cin[None, :],
                mask=sv[:, None] & inm[None, :],
                other=NEG,
            )
            gm = tl.load(
                first_ptr + (base + s)[:, None] * C + offs_c[None, :],
                mask=sv[:, None] & cmask[None, :],
                other=NEG,
            )
            sh = tl.load(ra_ptr + base + s, mask=sv, other=0.0) + tl.load(
                rb_ptr + base + s, mask=sv, other=0.0
            )
            sh = (sh - tl.load(lz_ptr + base + s, mask=sv, other=0.0)).to(DT)
            x = (a + sh[:, None])[:, :, None] + tr[None, :, :] + gm[:, None, :]
            acc += tl.sum(tl.exp(x), axis=0).to(tl.float64)
        o = ((b * NCH + ch) * C + cin)[:, None] * C + offs_c[None, :]
        tl.store(out_ptr + o, acc, mask=inm[:, None] & cmask[None, :])

    @triton.jit(do_not_specialize=["T", "K", "CHUNK", "NCH"])
    def _grad_db_cc_kernel(
        len_ptr, cum_ptr, db_ptr, wf_ptr, ra_ptr, wb_ptr, rb_ptr, lz_ptr,
        out_ptr,  # (B, NCH, K, C) float64 partial sums
        T, K, C, CHUNK, NCH,
        BLOCK_S: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_C: tl.constexpr,
        I64: tl.constexpr, STAGES: tl.constexpr = 1,
    ):  # fmt: skip
        NEG: tl.constexpr = float("-inf")
        b = tl.program_id(0).to(tl.int64)
        # Offsets inside one sequence's rows fit int32 unless (T + 1) C does not (I64): the
        # (S, D, C) gathers then need half the address registers.
        ch = tl.program_id(1)
        dt_ = tl.program_id(2)
        L = tl.load(len_ptr + b)
        if I64:
            ch = ch.to(tl.int64)
        else:
            L = L.to(tl.int32)
        DT = cum_ptr.dtype.element_ty
        offs_c = tl.arange(0, BLOCK_C)
        cmask = offs_c < C
        d = dt_ * BLOCK_D + 1 + tl.arange(0, BLOCK_D)
        dv = d <= K
        offs_s = tl.arange(0, BLOCK_S)
        dbv = tl.load(
            db_ptr + (d - 1)[:, None] * C + offs_c[None, :],
            mask=dv[:, None] & cmask[None, :],
            other=NEG,
        )
        base = b * (T + 1)
        cum_b = cum_ptr + base * C
        wf_b = wf_ptr + base * C
        wb_b = wb_ptr + base * C
        ra_b = ra_ptr + base
        rb_b = rb_ptr + base
        lz_b = lz_ptr + base
        acc = tl.zeros([BLOCK_D, BLOCK_C], tl.float64)
        stop = tl.minimum((ch + 1) * CHUNK, L)
        for s0 in tl.range(ch * CHUNK, stop, BLOCK_S, num_stages=STAGES):
            s = s0 + offs_s
            sv = s < stop
            m2 = sv[:, None] & cmask[None, :]
            so = s[:, None] * C + offs_c[None, :]
            qf = tl.load(wf_b + so, mask=m2, other=NEG)
            cs = tl.load(cum_b + so, mask=m2, other=0.0)
            sh = tl.load(ra_b + s, mask=sv, other=0.0) - tl.load(lz_b + s, mask=sv, other=0.0)
            e = s[:, None] + d[None, :]
            v = sv[:, None] & dv[None, :] & (e <= L)
            m3 = v[:, :, None] & cmask[None, None, :]
            eo = e[:, :, None] * C + offs_c[None, None, :]
            x = tl.load(wb_b + eo, mask=m3, other=NEG)
            x += tl.load(cum_b + eo, mask=m3, other=0.0) - cs[:, None, :]
            rbe = tl.load(rb_b + e, mask=v, other=0.0)
            x += (qf + 0.0)[:, None, :] + dbv[None, :, :] + (sh[:, None] + rbe).to(DT)[:, :, None]
            x = tl.where(m3, x, NEG)
            acc += tl.sum(tl.exp(x), axis=0).to(tl.float64)
        o = ((b * NCH + ch) * K + (d - 1))[:, None] * C + offs_c[None, :]
        tl.store(out_ptr + o, acc, mask=dv[:, None] & cmask[None, :])

    @triton.jit(do_not_specialize=["T", "K"])
    def _grad_kcc_kernel(
        len_ptr, cum_ptr, trans_ptr, db_ptr, ps_ptr, alpha_ptr, ra_ptr, wb_ptr, rb_ptr, lz_ptr,
        gt_ptr,  # out (B, K, C, C) float64 partial per sequence
        gd_ptr,  # out (B, K, C) float64
        T, K, C,
        HAS_PS: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_C: tl.constexpr,
    ):  # fmt: skip
        NEG: tl.constexpr = float("-inf")
        b = tl.program_id(0).to(tl.int64)
        dt_ = tl.program_id(1)
        L = tl.load(len_ptr + b)
        DT = cum_ptr.dtype.element_ty
        offs_c = tl.arange(0, BLOCK_C)
        cmask = offs_c < C
        d = dt_ * BLOCK_D + 1 + tl.arange(0, BLOCK_D)
        dv = d <= K
        cc_mask = cmask[:, None] & cmask[None, :]
        m3t = dv[:, None, None] & cc_mask[None, :, :]
        tro = (d - 1)[:, None, None] * C * C + offs_c[None, :, None] * C + offs_c[None, None, :]
        tr = tl.load(trans_ptr + tro, mask=m3t, other=NEG)
        dbv = tl.load(
            db_ptr + (d - 1)[:, None] * C + offs_c[None, :],
            mask=dv[:, None] & cmask[None, :],
            other=NEG,
        )
        base = b * (T + 1)
        acc_t = tl.zeros([BLOCK_D, BLOCK_C, BLOCK_C], tl.float64)
        acc_d = tl.zeros([BLOCK_D, BLOCK_C], tl.float64)
        for s in range(0, L):
            al = tl.load(alpha_ptr + (base + s) * C + offs_c, mask=cmask, other=NEG)
            cs = tl.load(cum_ptr + (base + s) * C + offs_c, mask=cmask, other=0.0)
            sh = tl.load(ra_ptr + base + s) - tl.load(lz_ptr + base + s)
            e = s + d
            v = dv & (e <= L)
            m2 = v[:, None] & cmask[None, :]
            y = tl.load(wb_ptr + (base + e)[:, None] * C + offs_c[None, :], mask=m2, other=NEG)
            y += (
                tl.load(cum_ptr + (base + e)[:, None] * C + offs_c[None, :], mask=m2, other=0.0)
                - cs[None, :]
            )
            if HAS_PS:
                y += tl.load(ps_ptr + (b * T + s) * C + offs_c, mask=cmask, other=0.0)[None, :]
            rbe = tl.load(rb_ptr + base + e, mask=v, other=0.0)
            y += dbv + (sh + rbe).to(DT)[:, None]
            y = tl.where(m2, y, NEG)
            ex = tl.exp(tr + al[None, :, None] + y[:, None, :])
            acc_t += ex.to(tl.float64)
            acc_d += tl.sum(ex, axis=1).to(tl.float64)
        tl.store(gt_ptr + b * K * C * C + tro, acc_t, mask=m3t)
        tl.store(
            gd_ptr + (b * K + d - 1)[:, None] * C + offs_c[None, :],
            acc_d,
            mask=dv[:, None] & cmask[None, :],
        )

    @triton.jit(do_not_specialize=["G_STRIDE", "B", "NCH", "N"])
    def _batch_sum_kernel(
        part_ptr,  # (B, NCH, N) float64 per-program partial sums of a shared parameter
        g_ptr,  # (B,) upstream gradient, any stride
        G_STRIDE,
        logz_ptr,  # (B,) float64 log Z
        out_ptr,  # out (N,) in the compute dtype
        B, NCH, N,
        BLOCK_R: tl.constexpr, BLOCK_N: tl.constexpr,
    ):  # fmt: skip
        # out[n] = sum_b g[b] sum_ch part[b, ch, n] in float64, in a fixed order (deterministic);
        # one launch for the partial sums, the weighting and the cast (six small ops before).
        # The B * NCH partial rows are read BLOCK_R at a time and reduced as a tile: a loop over
        # single rows was one dependent global load per row (78 us for 192 rows on an H100).
        n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
        nm = n < N
        acc = tl.zeros([BLOCK_N], tl.float64)
        rows = B * NCH
        for r0 in range(0, rows, BLOCK_R):
            r = r0 + tl.arange(0, BLOCK_R)
            rm = r < rows
            b = r // NCH
            logz = tl.load(logz_ptr + b, mask=rm, other=float("-inf"))
            gb = tl.load(g_ptr + G_STRIDE.to(tl.int64) * b, mask=rm, other=0.0).to(tl.float64)
            # a sequence without segmentation contributes nothing, whatever its upstream value
            w = tl.where(logz > float("-inf"), gb, 0.0)
            x = tl.load(
                part_ptr + r.to(tl.int64)[:, None] * N + n[None, :],
                mask=rm[:, None] & nm[None, :],
                other=0.0,
            )
            acc += tl.sum(tl.where(w[:, None] != 0.0, w[:, None] * x, 0.0), axis=0)
        tl.store(out_ptr + n, acc.to(out_ptr.dtype.element_ty), mask=nm)

    @triton.jit(do_not_specialize=["T", "SPACING", "J"])
    def _drift_lz_kernel(
        len_ptr,  # (B,) int64
        logz_ptr,  # (B,) float64 log Z
        corr_ptr,  # (B, J) float64 drift at the checkpoints
        lz_ptr,  # out (B, T+1) float64 drift-corrected log Z, +inf where log Z = -inf
        T, SPACING, J,
        BLOCK_T: tl.constexpr,
    ):  # fmt: skip
        # One launch for what interpolate_drift (the PyTorch reference) does in ~15 small ops:
        # linear interpolation between checkpoints min(j * SPACING, L - 1), plus log Z.
        b = tl.program_id(0).to(tl.int64)
        q = tl.program_id(1) * BLOCK_T + tl.arange(0, BLOCK_T)
        inr = q <= T
        L = tl.load(len_ptr + b)
        logz = tl.load(logz_ptr + b)
        last = L - 1
        qq = tl.minimum(q, last)
        j = tl.minimum(qq // SPACING, J - 1)
        p0 = j * SPACING
        p1 = tl.minimum((j + 1) * SPACING, last)
        jn = tl.minimum(j + 1, J - 1)
        span = tl.maximum(p1 - p0, 1).to(tl.float64)
        w = tl.where(p1 > p0, (qq - p0).to(tl.float64) / span, 0.0)
        c0 = tl.load(corr_ptr + b * J + j, mask=inr, other=0.0)
        c1 = tl.load(corr_ptr + b * J + jn, mask=inr, other=0.0)
        lz = logz + (c0 * (1 - w) + c1 * w)
        lz = tl.where(logz == float("-inf"), float("inf"), lz)
        tl.store(lz_ptr + b * (T + 1) + q, lz, mask=inr)
