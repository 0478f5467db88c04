"""The jitted loop bodies the streaming scan kernels share (tile choices and the launcher of
the forward-direction scans are in :mod:`.scan_launch`).

Each scan *kernel* serves one role and lives in its op folder: the forward scan
(:mod:`semicrf_kernels.logpartition.triton_scan`), the backward scan (same module, mirrored in
time) and the Viterbi scan with backpointers (:mod:`semicrf_kernels.viterbi.triton`). Their
loop bodies are the same computation in another direction or semiring, so they are written once
here as ``@triton.jit`` helpers (inlined when compiled): :func:`_scan_cc_body` (``(C, C)``
transitions, temporally blocked: :func:`_scan_cc_start`, then per block :func:`_scan_cc_window`
(phase 1, which also merges the far partials of a split scan, :func:`_far_merge`) and
:func:`_scan_cc_block` (phase 2)); the ``(K, C, C)`` body is in :mod:`.triton_scan_kcc`.
The recurrences are documented in :mod:`semicrf_kernels.logpartition.triton_scan`.
"""

from __future__ import annotations

from .triton_support import HAS_TRITON

__all__: list[str] = []  # jitted helpers only (private)

if HAS_TRITON:
    import triton
    import triton.language as tl

    from .triton_scan_ring import _scan_cc_ring
    from .triton_scan_tiled import _exp_transition, _exp_window_value, _window_value
else:  # pragma: no cover - exercised only where triton is absent
    triton = None
    tl = None


if HAS_TRITON:

    @triton.jit
    def _scan_rows(
        len_ptr, cum_ptr, ps_ptr, pe_ptr, first_ptr, shift_ptr, T, C, BLOCK_C: tl.constexpr,
        B_OFF=0,
    ):  # fmt: skip
        """The program's sequence ``b`` (program ``b + B_OFF``), its length and its rows of every
        ``(B, T(+1), C)`` input and output (the pointer set-up every scan kernel starts with)."""
        b = tl.program_id(0).to(tl.int64) - B_OFF
        L = tl.load(len_ptr + b)
        offs_c = tl.arange(0, BLOCK_C)
        cmask = offs_c < C
        cum_b = cum_ptr + b * (T + 1) * C
        ps_b = ps_ptr + b * T * C
        pe_b = pe_ptr + b * T * C
        first_b = first_ptr + b * (T + 1) * C
        shift_b = shift_ptr + b * (T + 1)
        return b, L, offs_c, cmask, cum_b, ps_b, pe_b, first_b, shift_b

    @triton.jit
    def _final_score(row_ptr, shift_ptr, score_ptr, final_ptr, offs_c, cmask, MAXSR: tl.constexpr):
        """Store ``(+)_c row[c] + shift`` (and, for the max, the smallest best label)."""
        fn = tl.load(row_ptr + offs_c, mask=cmask, other=float("-inf"))
        if MAXSR:
            fv = tl.max(fn, axis=0)
            fl = tl.min(tl.where(fn == fv, offs_c, 1073741824), axis=0)
            tl.store(final_ptr, fl.to(tl.int64))
        else:
            fm = tl.max(fn, axis=0)
            fsafe = tl.where(fm == float("-inf"), 0.0, fm)
            fv = fsafe + tl.log(tl.sum(tl.exp(fn - fsafe), axis=0))
        tl.store(score_ptr, fv.to(tl.float64) + tl.load(shift_ptr))

    @triton.jit
    def _scan_cc_start(
        cum_b, trans_ptr, MT, CM, LIVE, ps_b, pe_b, first_b, win_b, shift_b, bpa_b, L, C,
        offs_c, cmask,
        REVERSE: tl.constexpr, HAS_PS: tl.constexpr, HAS_PE: tl.constexpr,
        STORE_BP: tl.constexpr, TRANS_REGS: tl.constexpr, EXP_TRANS: tl.constexpr,
        BLOCK_C: tl.constexpr, BLOCK_TC: tl.constexpr,
    ):  # fmt: skip
        """Row ``tau = 0`` of a ``(C, C)`` scan: its window row and its shift (0)."""
        NEG: tl.constexpr = float("-inf")
        DT = cum_b.dtype.element_ty
        # ---- tau = 0 ------------------------------------------------------------------------
        zero64 = L.to(tl.float64) * 0.0
        if REVERSE:
            # s = L: beta[L] = 0 (every label may end the sequence), window = proj_end[L-1].
            row0 = L
            w0 = tl.zeros([BLOCK_C], DT)
            if HAS_PE:
                w0 += tl.load(pe_b + (L - 1) * C + offs_c, mask=cmask, other=0.0)
        else:
            # t = 0: alpha[0] = 0; A[0] = logsumexp_c' trans[c', c] (the start score, a
            # log-sum-exp in every semiring).
            row0 = L * 0
            f0 = tl.where(cmask, 0.0, NEG).to(DT)
            tl.store(first_b + offs_c, f0, mask=cmask)
            if EXP_TRANS:
                # (never flagged: every live column has a term exp(0) * 1)
                w0, _f0 = _exp_window_value(f0, MT, CM, LIVE, L >= 0)
            else:
                w0, _a0 = _window_value(
                    f0, MT, first_b, trans_ptr, C, C, offs_c, cmask, False, TRANS_REGS, BLOCK_C,
                    BLOCK_TC,
                )  # fmt: skip
            if HAS_PS:
                w0 += tl.load(ps_b + offs_c, mask=cmask, other=0.0)
            if STORE_BP:
                tl.store(bpa_b + offs_c, tl.full([BLOCK_C], -1, tl.int32), mask=cmask)
        tl.store(win_b + row0 * C + offs_c, w0, mask=cmask)
        tl.store(shift_b + row0, zero64)

    @triton.jit
    def _fold(acc_v, acc_d, acc_s, x, d, MAXSR: tl.constexpr):
        """Fold ``x (P, R, C)`` (durations ``d``, broadcastable to it) along ``R`` into the
        running ``(acc_v, acc_d, acc_s)`` (each ``(P, C)``): the max keeps the larger value and,
        on ties, the smaller duration; the log semiring keeps a running maximum ``acc_v`` and
        the sum ``acc_s`` of exponentials relative to it."""
        NEG: tl.constexpr = float("-inf")
        BIG: tl.constexpr = 1073741824
        if MAXSR:
            tv = tl.max(x, axis=1)
            td = tl.min(tl.where(x == tv[:, None, :], d, BIG), axis=1)
            better = (tv > acc_v) | ((tv == acc_v) & (td < acc_d))
            acc_d = tl.where(better, td, acc_d)
            acc_v = tl.where(better, tv, acc_v)
        else:
            tm = tl.max(x, axis=1)
            nm = tl.maximum(acc_v, tm)
            safe = tl.where(nm == NEG, 0.0, nm)
            acc_s = acc_s * tl.exp(acc_v - safe) + tl.sum(tl.exp(x - safe[:, None, :]), axis=1)
            acc_v = nm
        return acc_v, acc_d, acc_s

    @triton.jit
    def _scan_cc_window(
        cum_b, win_b, shift_b, db_ptr, lo, hi, L, K, C, r_ref, taus, pact, cumcur, offs_c, cmask,
        init_v, init_d,
        REVERSE: tl.constexpr, MAXSR: tl.constexpr,
        BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_S: tl.constexpr,
    ):  # fmt: skip
        """Phase 1 of a block: the window rows ``[lo, hi)``, for all ``P`` outputs at once,
        added to ``(init_v, init_d)`` (a far part already reduced, or ``(-inf, BIG)``).

        Returns ``(acc_v (P, C), acc_d (P, C) int64)``: per output and label the (+)-sum (one log
        value) and, for the max, the smallest best duration (``acc_d`` unused otherwise)."""
        NEG: tl.constexpr = float("-inf")
        DT = cum_b.dtype.element_ty
        offs_s = tl.arange(0, BLOCK_S)
        acc_d = init_d
        acc_v = init_v
        # log semiring: init_v as one element, (-inf, 0) when there is none, (init_v, 1) otherwise
        acc_s = tl.where(init_v == NEG, 0.0, 1.0).to(DT)
        for r0 in range(lo, hi, BLOCK_S):
            r = r0 + offs_s
            rvalid = r < hi
            if REVERSE:
                rows_w = L - r
            else:
                rows_w = r
            wmask = rvalid[:, None] & cmask[None, :]
            w = tl.load(win_b + rows_w[:, None] * C + offs_c[None, :], mask=wmask, other=NEG)
            cw = tl.load(cum_b + rows_w[:, None] * C + offs_c[None, :], mask=wmask, other=0.0)
            sh = tl.load(shift_b + rows_w, mask=rvalid, other=0.0)
            w = w + (sh - r_ref).to(DT)[:, None]
            d = taus[:, None] - r[None, :]
            dvalid = pact[:, None] & rvalid[None, :] & (d <= K)
            m3 = dvalid[:, :, None] & cmask[None, None, :]
            dbv = tl.load(
                db_ptr + (d - 1)[:, :, None] * C + offs_c[None, None, :], mask=m3, other=NEG
            )
            if REVERSE:
                diff = cw[None, :, :] - cumcur[:, None, :]
            else:
                diff = cumcur[:, None, :] - cw[None, :, :]
            x = tl.where(m3, diff + w[None, :, :] + dbv, NEG)
            acc_v, acc_d, acc_s = _fold(acc_v, acc_d, acc_s, x, d[:, :, None], MAXSR)
        if not MAXSR:
            # one log value per (output, label): phase 2 then needs a single log-sum-exp
            safe = tl.where(acc_v == NEG, 0.0, acc_v)
            acc_v = safe + tl.log(acc_s)
        return acc_v, acc_d

    @triton.jit
    def _far_merge(
        farv_b, fard_b, jrow, NSPLIT, C, delta, pact, offs_c, cmask, DT: tl.constexpr,
        MAXSR: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_K: tl.constexpr,
    ):  # fmt: skip
        """The far kernel's ``NSPLIT`` partials of each output ``jrow`` of a super-block, merged in
        split order: ``(v (P, C), d (P, C) int64)``, ``v`` shifted by ``delta`` (float64); the
        max keeps the smaller duration on ties. ``(-inf, BIG)`` when ``NSPLIT = 0``."""
        NEG: tl.constexpr = float("-inf")
        BIG: tl.constexpr = 1073741824
        offs_k = tl.arange(0, BLOCK_K)
        acc_v = tl.full([BLOCK_P, BLOCK_C], NEG, DT)
        acc_d = tl.full([BLOCK_P, BLOCK_C], BIG, tl.int64)
        acc_s = tl.zeros([BLOCK_P, BLOCK_C], DT)
        for k0 in range(0, NSPLIT, BLOCK_K):
            ks = k0 + offs_k
            fm = pact[:, None, None] & (ks < NSPLIT)[None, :, None] & cmask[None, None, :]
            fo = (jrow[:, None, None] * NSPLIT + ks[None, :, None]) * C + offs_c[None, None, :]
            x = tl.where(fm, tl.load(farv_b + fo, mask=fm, other=NEG) + delta.to(DT), NEG)
            if MAXSR:
                fd = tl.load(fard_b + fo, mask=fm, other=BIG).to(tl.int64)
            else:
                fd = acc_d[:, None, :]  # unused by the log semiring
            acc_v, acc_d, acc_s = _fold(acc_v, acc_d, acc_s, x, fd, MAXSR)
        if not MAXSR:
            safe = tl.where(acc_v == NEG, 0.0, acc_v)
            acc_v = safe + tl.log(acc_s)
        return acc_v, acc_d

    @triton.jit
    def _scan_cc_block(
        cum_b, trans_ptr, MT, CM, LIVE, db_ptr, ps_b, pe_b, first_b, win_b, shift_b, bpd_b,
        bpa_b, tau0, L, T, K, C, r_ref, acc_v, acc_d, cumcur, offs_c, cmask, flags,
        REVERSE: tl.constexpr, MAXSR: tl.constexpr, HAS_PS: tl.constexpr, HAS_PE: tl.constexpr,
        STORE_BP: tl.constexpr, TRANS_REGS: tl.constexpr, RENORM_BLOCK: tl.constexpr,
        EXP_TRANS: tl.constexpr,
        BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_TC: tl.constexpr,
    ):  # fmt: skip
        """Phase 2 of a block: its ``P`` positions in order, stored; returns the next block's
        shift (the last row's; with ``RENORM_BLOCK`` every row keeps the block's ``r_ref`` and
        the next shift is ``r_ref`` plus the last row's maximum, one reduction per block) and
        ``flags`` or'ed with the exponential-space window values' flags (``EXP_TRANS``)."""
        NEG: tl.constexpr = float("-inf")
        BIG: tl.constexpr = 1073741824
        DT = cum_b.dtype.element_ty
        offs_p = tl.arange(0, BLOCK_P)
        # ---- phase 2: the P positions in order, with the block's own rows in registers ---
        # Row i of the (P, C) local tile holds the phase-1 result of output i; rows j < i the
        # block's own window rows; rows j > i nothing (-inf).
        loc_w = tl.full([BLOCK_P, BLOCK_C], NEG, DT)
        loc_sh = tl.zeros([BLOCK_P], tl.float64) + r_ref
        r_last = r_ref
        last_val = tl.full([BLOCK_C], NEG, DT)
        for i in tl.static_range(BLOCK_P):
            tau = tau0 + i
            act = tau <= L
            if REVERSE:
                row = L - tau
            else:
                row = tau
            # Masks are built from tensor comparisons: the interpreter mistypes scalar & tensor.
            cact = cmask & ((offs_c * 0 + tau) <= L)
            rowv = offs_c * 0 + row
            cur = tl.load(cum_b + row * C + offs_c, mask=cact, other=0.0)
            jd = i - offs_p
            jvalid = (offs_p < i) & (jd <= K)
            jm = jvalid[:, None] & cmask[None, :]
            dbl = tl.load(db_ptr + (jd - 1)[:, None] * C + offs_c[None, :], mask=jm, other=NEG)
            if REVERSE:
                diffl = cumcur - cur[None, :]
            else:
                diffl = cur[None, :] - cumcur
            xl = tl.where(jm, diffl + loc_w + (loc_sh - r_ref).to(DT)[:, None] + dbl, NEG)
            sel = offs_p[:, None] == i
            xl = tl.where(sel, acc_v, xl)
            if MAXSR:
                val = tl.max(xl, axis=0)
                # durations: jd for the block's rows (the smaller ones, so they win ties)
                dd = tl.where(sel, acc_d, jd[:, None].to(tl.int64))
                best_d = tl.min(tl.where(xl == val[None, :], dd, BIG), axis=0)
            else:
                lm = tl.max(xl, axis=0)
                safe = tl.where(lm == NEG, 0.0, lm)
                val = safe + tl.log(tl.sum(tl.exp(xl - safe[None, :]), axis=0))
            if REVERSE:
                if HAS_PS:
                    val += tl.load(ps_b + row * C + offs_c, mask=cact, other=0.0)
            else:
                if HAS_PE:
                    val += tl.load(pe_b + (row - 1) * C + offs_c, mask=cact, other=0.0)
            val = tl.where(cmask, val, NEG)
            if RENORM_BLOCK:
                tl.static_assert(not EXP_TRANS, "exp_trans needs rows normalised to maximum 0")
                fn = val
                r_t = r_ref
                last_val = tl.where(cact, val, last_val)
                row_live = act
            else:
                mx = tl.max(val, axis=0)
                row_live = act & (mx > NEG)
                mxs = tl.where(mx == NEG, 0.0, mx)
                fn = val - mxs
                r_t = r_ref + mxs.to(tl.float64)
            tl.store(first_b + row * C + offs_c, fn, mask=cact)
            tl.store(shift_b + row, r_t, mask=act)
            if STORE_BP:
                tl.store(bpd_b + (row - 1) * C + offs_c, best_d.to(tl.int32), mask=cact)
            # the window value of this row: (+)_{c_in} fn[c_in] + M[c_in, c] + proj; an
            # inactive step (past L) reads nothing: its row was never written
            if EXP_TRANS:
                sec, flag = _exp_window_value(fn, MT, CM, LIVE, row_live)
                flags = flags | flag
            else:
                sec, arg = _window_value(
                    fn, MT, first_b + row * C, trans_ptr, C, tl.where(tau <= L, C, 0), offs_c,
                    cmask, MAXSR, TRANS_REGS, BLOCK_C, BLOCK_TC,
                )  # fmt: skip
            if REVERSE:
                if HAS_PE:
                    sec += tl.load(
                        pe_b + (row - 1) * C + offs_c, mask=cact & (rowv >= 1), other=0.0
                    )
            else:
                if HAS_PS:
                    sec += tl.load(ps_b + row * C + offs_c, mask=cact & (rowv < T), other=0.0)
            tl.store(win_b + row * C + offs_c, sec, mask=cact)
            if STORE_BP:
                tl.store(bpa_b + row * C + offs_c, arg.to(tl.int32), mask=cact & (rowv < T))
            loc_w = tl.where(sel, sec[None, :], loc_w)
            loc_sh = tl.where(offs_p == i, r_t, loc_sh)
            r_last = tl.where(act, r_t, r_last)
        if RENORM_BLOCK:
            mb = tl.max(last_val, axis=0)
            r_last = r_ref + tl.where(mb == NEG, 0.0, mb).to(tl.float64)
        return r_last, flags

    @triton.jit
    def _scan_cc_body(
        cum_ptr, trans_ptr, db_ptr, len_ptr, ps_ptr, pe_ptr,
        first_ptr, win_ptr, shift_ptr, score_ptr, final_ptr, bpd_ptr, bpa_ptr,
        T, K, C, farv_ptr, fard_ptr, t_begin, S, NSPLIT, GAP,
        REVERSE: tl.constexpr, MAXSR: tl.constexpr, HAS_PS: tl.constexpr, HAS_PE: tl.constexpr,
        STORE_BP: tl.constexpr, TRANS_REGS: tl.constexpr, RENORM_BLOCK: tl.constexpr,
        BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_S: tl.constexpr,
        BLOCK_TC: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_R: tl.constexpr, B_OFF=0,
        EXP_TRANS: tl.constexpr = False,
    ):  # fmt: skip
        """The ``(C, C)`` scan of the program's sequence (program ``b + B_OFF`` scans ``b``) over
        the super-block ``tau in [t_begin, t_begin + S)``, temporally blocked (the whole scan
        when ``t_begin = 1, S > T``).

        The window rows older than ``far_end = t_begin - GAP`` come reduced from the far kernel
        (:mod:`.triton_far`): ``NSPLIT`` partials per output in ``farv_ptr``/``fard_ptr``
        ``(B, S, NSPLIT, C)``, relative to the shift of row ``far_end - 1``; this program reduces
        only the near rows ``[far_end, tau)``. ``GAP = S`` lets the far kernel of this
        super-block run while the previous one is scanned; ``GAP = 0`` puts it between the two.
        ``NSPLIT = 0``: no far part, the rows from 0 on are near (the first super-block also
        writes row 0). ``BLOCK_R > 0`` (unsplit only): the window is held in a register ring of
        ``BLOCK_R >= min(K, T)`` rows instead (:mod:`.triton_scan_ring`).

        Time runs over tau = 0..L. Forward: tau = t, window rows are starts s = tau' < tau.
        Reverse (the backward scan): tau = L - s, window rows are ends e = L - tau'. In both, a
        window row tau' contributes to tau through duration d = tau - tau'. The reduction over
        the previous label reads ``M[c_in, c_out] = trans_ptr[c_in * C + c_out]``: the
        transition forward, its transpose (passed pre-transposed) in reverse, where
        ``beta[c'] = (+)_c trans[c', c] + gamma[c]``.

        ``EXP_TRANS`` (log semiring, ``TRANS_REGS``, an unsplit scan with rows normalised to
        maximum 0): the window values are taken in exponential space
        (:mod:`.triton_scan_tiled`); if any column's sum fell too low, the whole scan is done
        again in log space, so the result is either that of the exponential-space scan, within
        float rounding of the log-space one, or exactly the log-space one.
        """
        b, L, offs_c, cmask, cum_b, ps_b, pe_b, first_b, shift_b = _scan_rows(
            len_ptr, cum_ptr, ps_ptr, pe_ptr, first_ptr, shift_ptr, T, C, BLOCK_C, B_OFF
        )
        win_b = win_ptr + b * (T + 1) * C
        bpd_b = bpd_ptr + b * T * C
        bpa_b = bpa_ptr + b * T * C
        if TRANS_REGS:
            MT = _load_mt(trans_ptr, C, offs_c, cmask)
        else:
            MT = offs_c  # unused: the tiled reduction streams the matrix
        args = (
            cum_ptr, trans_ptr, db_ptr, score_ptr, final_ptr, T, K, C, farv_ptr, fard_ptr,
            t_begin, S, NSPLIT, GAP, b, L, offs_c, cmask, cum_b, ps_b, pe_b, first_b, shift_b,
            win_b, bpd_b, bpa_b,
        )  # fmt: skip
        if EXP_TRANS:
            tl.static_assert(TRANS_REGS and not MAXSR and not RENORM_BLOCK)
            E, CM, LIVE = _exp_transition(MT, cmask)
            flags = _scan_cc_pass(
                args, E, CM, LIVE, REVERSE, MAXSR, HAS_PS, HAS_PE, STORE_BP, TRANS_REGS,
                RENORM_BLOCK, True, BLOCK_C, BLOCK_P, BLOCK_S, BLOCK_TC, BLOCK_K, BLOCK_R,
            )  # fmt: skip
            if tl.max(flags, axis=0) > 0:
                # a sum fell too low somewhere: the whole scan again, in log space
                tl.debug_barrier()
                _scan_cc_pass(
                    args, _load_mt(trans_ptr, C, offs_c, cmask), CM, LIVE, REVERSE, MAXSR, HAS_PS,
                    HAS_PE, STORE_BP, TRANS_REGS, RENORM_BLOCK, False, BLOCK_C, BLOCK_P, BLOCK_S,
                    BLOCK_TC, BLOCK_K, BLOCK_R,
                )  # fmt: skip
        else:
            _scan_cc_pass(
                args, MT, offs_c, cmask, REVERSE, MAXSR, HAS_PS, HAS_PE, STORE_BP, TRANS_REGS,
                RENORM_BLOCK, False, BLOCK_C, BLOCK_P, BLOCK_S, BLOCK_TC, BLOCK_K, BLOCK_R,
            )  # fmt: skip

    @triton.jit
    def _load_mt(trans_ptr, C, offs_c, cmask):
        """The ``(C, C)`` transition held transposed, ``MT[c_out, c_in]``: the reduction over
        ``c_in`` then runs along the fastest axis (within a warp), and a row broadcasts along
        rows without a conversion."""
        return tl.load(
            trans_ptr + offs_c[None, :] * C + offs_c[:, None],
            mask=cmask[:, None] & cmask[None, :],
            other=float("-inf"),
        )

    @triton.jit
    def _scan_cc_pass(
        args, MT, CM, LIVE,
        REVERSE: tl.constexpr, MAXSR: tl.constexpr, HAS_PS: tl.constexpr, HAS_PE: tl.constexpr,
        STORE_BP: tl.constexpr, TRANS_REGS: tl.constexpr, RENORM_BLOCK: tl.constexpr,
        EXP_TRANS: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr,
        BLOCK_S: tl.constexpr, BLOCK_TC: tl.constexpr, BLOCK_K: tl.constexpr,
        BLOCK_R: tl.constexpr,
    ):  # fmt: skip
        """One pass of :func:`_scan_cc_body` over its super-block (``args``: the pointers and
        rows it set up); returns the exponential-space flags (zeros without ``EXP_TRANS``)."""
        (
            cum_ptr, trans_ptr, db_ptr, score_ptr, final_ptr, T, K, C, farv_ptr, fard_ptr,
            t_begin, S, NSPLIT, GAP, b, L, offs_c, cmask, cum_b, ps_b, pe_b, first_b, shift_b,
            win_b, bpd_b, bpa_b,
        ) = args  # fmt: skip
        offs_p = tl.arange(0, BLOCK_P)
        flags = offs_c * 0
        zero64 = L.to(tl.float64) * 0.0
        if t_begin == 1:
            _scan_cc_start(
                cum_b, trans_ptr, MT, CM, LIVE, ps_b, pe_b, first_b, win_b, shift_b, bpa_b, L, C,
                offs_c, cmask, REVERSE, HAS_PS, HAS_PE, STORE_BP, TRANS_REGS, EXP_TRANS, BLOCK_C,
                BLOCK_TC,
            )  # fmt: skip
        if BLOCK_R > 0:
            # the whole (unsplit) scan with its window in a register ring
            flags = _scan_cc_ring(
                cum_b, trans_ptr, MT, CM, LIVE, db_ptr, ps_b, pe_b, first_b, win_b, shift_b, bpd_b,
                bpa_b, L, T, K, C, offs_c, cmask, REVERSE, MAXSR, HAS_PS, HAS_PE, STORE_BP,
                TRANS_REGS, EXP_TRANS, BLOCK_C, BLOCK_R, BLOCK_TC,
            )  # fmt: skip
        else:
            if REVERSE:
                ref_row = L - (t_begin - 1)
            else:
                ref_row = t_begin - 1
            # a later super-block starts from the shift of the row before it (row 0's is 0); a
            # sequence that ended before the super-block reads nothing (its rows are out of range)
            live = t_begin - 1 <= L
            r_ref = tl.where(
                t_begin == 1,
                zero64,
                tl.load(shift_b + ref_row, mask=(t_begin > 1) & live, other=0.0),
            )
            far_end = t_begin - GAP
            if REVERSE:
                far_row = L - (far_end - 1)
            else:
                far_row = far_end - 1
            r_far = tl.load(shift_b + far_row, mask=(NSPLIT > 0) & live, other=0.0)
            near_lo = tl.where(NSPLIT == 0, 0, far_end)
            farv_b = farv_ptr + b * S * NSPLIT * C
            fard_b = fard_ptr + b * S * NSPLIT * C
            DT = cum_ptr.dtype.element_ty
            for tau0 in range(t_begin, tl.minimum(t_begin + S, L + 1), BLOCK_P):
                # Rows written by the previous block (other threads) must be visible.
                tl.debug_barrier()
                taus = tau0 + offs_p
                pact = taus <= L
                if REVERSE:
                    rows_cur = L - taus
                else:
                    rows_cur = taus
                cumcur = tl.load(
                    cum_b + rows_cur[:, None] * C + offs_c[None, :],
                    mask=pact[:, None] & cmask[None, :],
                    other=0.0,
                )
                far_v, far_d = _far_merge(
                    farv_b, fard_b, taus - t_begin, NSPLIT, C, r_far - r_ref, pact, offs_c, cmask,
                    DT, MAXSR, BLOCK_C, BLOCK_P, BLOCK_K,
                )  # fmt: skip
                acc_v, acc_d = _scan_cc_window(
                    cum_b, win_b, shift_b, db_ptr, tl.maximum(tau0 - K, near_lo), tau0, L, K, C,
                    r_ref, taus, pact, cumcur, offs_c, cmask, far_v, far_d,
                    REVERSE, MAXSR, BLOCK_C, BLOCK_P, BLOCK_S,
                )  # fmt: skip
                r_ref, flags = _scan_cc_block(
                    cum_b, trans_ptr, MT, CM, LIVE, db_ptr, ps_b, pe_b, first_b, win_b, shift_b,
                    bpd_b, bpa_b, tau0, L, T, K, C, r_ref, acc_v, acc_d, cumcur, offs_c, cmask,
                    flags, REVERSE, MAXSR, HAS_PS, HAS_PE, STORE_BP, TRANS_REGS, RENORM_BLOCK,
                    EXP_TRANS, BLOCK_C, BLOCK_P, BLOCK_TC,
                )  # fmt: skip
        if not REVERSE:
            # (+)_c alpha[L, c], once, from the stored row L, by the super-block that holds L
            if (L >= t_begin) & (L < t_begin + S):
                tl.debug_barrier()
                _final_score(
                    first_b + L * C, shift_b + L, score_ptr + b, final_ptr + b, offs_c, cmask,
                    MAXSR,
                )  # fmt: skip
        return flags
