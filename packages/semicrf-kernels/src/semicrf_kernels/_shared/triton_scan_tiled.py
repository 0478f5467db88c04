"""The reduction over the previous label of a ``(C, C)`` scan step, shared by the scan bodies
(:mod:`.triton_scan`, :mod:`.triton_scan_ring`): with the transition in registers, or streamed
in tiles for transitions too large to keep there (``C > 64``), or (``ScanConfig.exp_trans``,
log semiring, transition in registers) in exponential space.

In exponential space the step computes ``sec[c] = cm[c] + log(sum_{c_in} exp(fn[c_in])
E[c, c_in])`` with ``E = exp(M^T - cm)`` and ``cm[c]`` the column maximum of the transition,
both made once per program (:func:`_exp_transition`): ``C`` exponentials and ``C^2``
multiply-adds a step instead of ``C^2`` exponentials and a maximum pass. ``fn`` is a row
normalised to maximum 0, so no term overflows; a term can underflow, which loses nothing
measurable while the column's sum stays above ``2^-60`` (what is lost is below ``C e^-87``
against a sum of at least ``2^-60``). A column whose sum falls below that, in a live row, is
*flagged*; the scan body then redoes the whole scan in log space
(:func:`.triton_scan._scan_cc_body`), so results never depend on the flag's cause."""

from __future__ import annotations

from .triton_support import HAS_TRITON

__all__: list[str] = []  # jitted helpers only (private)

if HAS_TRITON:
    import triton
    import triton.language as tl
else:  # pragma: no cover - exercised only where triton is absent
    triton = None
    tl = None


if HAS_TRITON:

    @triton.jit
    def _second_tiled(
        row_ptr, trans_ptr, C, n_in, offs_c, cmask,
        USE_MAX: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_TC: tl.constexpr,
    ):  # fmt: skip
        """``out[c] = (+)_{c'} first[c'] + M[c', c]`` (and the smallest best ``c'`` with the max),
        streaming ``M`` and ``first`` (read back from ``row_ptr``) in tiles of ``BLOCK_TC``
        previous labels: for ``C`` too large to keep ``M`` in registers."""
        offs_tc = tl.arange(0, BLOCK_TC)
        acc_v = tl.full([BLOCK_C], float("-inf"), row_ptr.dtype.element_ty)
        acc_s = tl.zeros([BLOCK_C], row_ptr.dtype.element_ty)
        acc_a = tl.zeros([BLOCK_C], tl.int32)
        for k0 in range(0, n_in, BLOCK_TC):
            cin = k0 + offs_tc
            inm = cin < C
            f = tl.load(row_ptr + cin, mask=inm, other=float("-inf"))
            Mk = tl.load(
                trans_ptr + cin[:, None] * C + offs_c[None, :],
                mask=inm[:, None] & cmask[None, :],
                other=float("-inf"),
            )
            x = f[:, None] + Mk
            if USE_MAX:
                tv = tl.max(x, axis=0)
                ta = tl.min(tl.where(x == tv[None, :], cin[:, None], 1073741824), axis=0)
                # tiles come in increasing label order: ties keep the earlier (smaller) label
                better = tv > acc_v
                acc_a = tl.where(better, ta, acc_a)
                acc_v = tl.where(better, tv, acc_v)
            else:
                tm = tl.max(x, axis=0)
                nm = tl.maximum(acc_v, tm)
                safe = tl.where(nm == float("-inf"), 0.0, nm)
                acc_s = acc_s * tl.exp(acc_v - safe) + tl.sum(tl.exp(x - safe[None, :]), axis=0)
                acc_v = nm
        if USE_MAX:
            out = acc_v
        else:
            safe = tl.where(acc_v == float("-inf"), 0.0, acc_v)
            out = safe + tl.log(acc_s)
        return out, acc_a

    @triton.jit
    def _exp_transition(MT, cmask):
        """``(E (BLOCK_C, BLOCK_C), cm (BLOCK_C,), live (BLOCK_C,))`` from the transition held
        transposed, ``MT[c, c_in]``: ``E = exp(MT - cm)`` with ``cm[c]`` the column's maximum
        (0 where the whole column is ``-inf``, whose ``E`` is then 0 and its ``live`` false)."""
        cm = tl.max(MT, axis=1)
        live = (cm > float("-inf")) & cmask
        cms = tl.where(live, cm, 0.0)
        return tl.exp(MT - cms[:, None]), cms, live

    @triton.jit
    def _exp_window_value(fn, E, cm, live, row_live):
        """The log semiring's window value in exponential space: ``(sec (BLOCK_C,), flag
        (BLOCK_C,) int32)``; ``flag`` marks live columns of a live row (``row_live``: a
        row with a finite maximum, normalised to 0) whose sum fell below ``2^-60``."""
        s = tl.sum(tl.exp(fn)[None, :] * E, axis=1)
        sec = tl.where(live, cm + tl.log(s), float("-inf"))
        # (an int product with the scalar: the interpreter mistypes scalar & tensor masks)
        flag = ((s < 8.673617379884035e-19) & live).to(tl.int32) * row_live.to(tl.int32)
        return sec, flag

    @triton.jit
    def _window_value(
        fn, MT, row_ptr, trans_ptr, C, n_in, offs_c, cmask,
        MAXSR: tl.constexpr, TRANS_REGS: tl.constexpr, BLOCK_C: tl.constexpr,
        BLOCK_TC: tl.constexpr,
    ):  # fmt: skip
        """A stored row's window value before its projection, ``(sec (BLOCK_C,), arg
        (BLOCK_C,))``: ``sec[c] = (+)_{c_in} fn[c_in] + M[c_in, c]`` and, for the max, ``arg``
        the smallest best ``c_in`` (unused otherwise). ``fn`` is the row (already stored at
        ``row_ptr``, read back only by the tiled form, after a barrier); ``MT`` the transition
        held transposed in registers (``TRANS_REGS``), ``MT[c, c_in]``; ``n_in`` the labels the
        tiled form reads (0 for an inactive step, whose row was never written)."""
        BIG: tl.constexpr = 1073741824
        if TRANS_REGS:
            xs = fn[None, :] + MT
            if MAXSR:
                sec = tl.max(xs, axis=1)
                arg = tl.min(tl.where(xs == sec[:, None], offs_c[None, :], BIG), axis=1)
            else:
                ms = tl.max(xs, axis=1)
                ms = tl.where(ms == float("-inf"), 0.0, ms)
                sec = ms + tl.log(tl.sum(tl.exp(xs - ms[:, None]), axis=1))
                arg = offs_c
        else:
            tl.debug_barrier()
            sec, arg = _second_tiled(
                row_ptr, trans_ptr, C, n_in, offs_c, cmask, MAXSR, BLOCK_C, BLOCK_TC
            )
        return sec, arg
