"""The reduction over the previous label of a ``(C, C)`` scan step, shared by the scan bodies
(:mod:`.triton_scan`, :mod:`.triton_scan_ring`): with the transition in registers, or streamed
in tiles for transitions too large to keep there (``C > 64``)."""

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
