"""Triton sampling: the Triton forward scan, then one program per sample drawing backwards.

The forward kernel of :mod:`..logpartition.triton_scan` stores, per position, ``alpha[s] -
shift[s]`` and (with ``(C, C)`` transitions) the window ``A[s] + proj_start[s] - shift[s]``, with
a float64 ``shift`` per row. Each program of :func:`_sample_kernel` then draws one segmentation of
one sequence from its end backwards with the exact conditionals of
:mod:`.pytorch` (the module docstring there derives them): the duration from ``K`` logits
``G[t - d, c] + duration_bias[d - 1, c]`` with ``G = window + shift - cum``, then the previous
label from ``C`` logits ``alpha[s, c'] + transition[c', c]``: O(K + C) per segment; with
``(K, C, C)`` transitions ``(d, c')`` jointly, O(K C). Logits are formed in float64 (the shifts
are float64, far larger than the differences that matter) and, once their maximum is subtracted,
exponentiated and summed in float32: each probability carries a relative error of about 1e-7,
the size of the float32 rounding of the stored rows themselves (and float64 exponentials cost the
draws 0.5 ms of 5.8 at ``32 x 1000`` on an H100).
Uniforms come from ``tl.rand`` (Philox) seeded from the caller's ``torch.Generator``: samples are
reproducible on one device and agree with the PyTorch path in distribution, not draw by draw.
Each step also stores the segment's labels over its whole span and adds its score (the terms of
:func:`..segmentation_score.segment_values`, in float64), so the result needs no pass over the
``(num_samples, batch, T)`` tensors afterwards.
"""

from __future__ import annotations

import torch

from .._shared.inputs import prepare_inputs
from .._shared.logspace import safe_logsumexp
from .._shared.scan_launch import _cdiv, _check_triton, _next_pow2, run_forward_scan
from .._shared.split_launch import _pow2_floor, num_sms
from .._shared.triton_support import HAS_TRITON
from ..segmentation import Segmentation

__all__ = ["streaming_sample_triton"]

#: Philox offsets are 32-bit: a launch covers at most this many (row, step) uniforms.
_MAX_OFFSETS = 2**31 - 1

if HAS_TRITON:
    import triton
    import triton.language as tl

    @triton.jit
    def _draw(logits, valid, u):
        """Per row of ``logits (rows, n)`` (float64), an index drawn with probability softmax
        over the ``valid`` entries (inverse CDF with ``1 - u`` in (0, 1]; weights in float32
        after the float64 max subtraction); an entry of probability 0 is never drawn."""
        x = tl.where(valid, logits, float("-inf"))
        m = tl.max(x, axis=1)
        m = tl.where(m > float("-inf"), m, 0.0)
        w = tl.where(valid, tl.exp((x - m[:, None]).to(tl.float32)), 0.0)
        cdf = tl.cumsum(w, axis=1)
        target = (1.0 - u.to(tl.float32)) * tl.sum(w, axis=1)
        return tl.sum((cdf < target[:, None]).to(tl.int64), axis=1)

    @triton.jit
    def _segment_terms(
        cum_ptr, ps_ptr, pe_ptr, trans_ptr, bias_ptr, first_ptr, b, T, C, s, t, d, c, prev, on,
        PER_DURATION: tl.constexpr, HAS_PS: tl.constexpr, HAS_PE: tl.constexpr,
    ):  # fmt: skip
        """The terms of the score of the segments ``[s, t)`` with label ``c`` (one per row,
        ``(BLOCK_N,)`` each), as loaded: ``cum[t, c]``, ``cum[s, c]``, ``duration_bias[d - 1,
        c]``, ``proj_start[s, c]``, ``proj_end[t - 1, c]``, ``transition[prev, c]`` (``0`` where
        ``s = 0``) and the start score (``0`` where ``s > 0``); ``0`` where not ``on``. The caller
        adds them one step later (:func:`_add_terms`): a GPU thread waits for a load only where
        its value is used, so the sum must not sit between this step's draws and the next's."""
        rowc = b * (T + 1) * C
        ct = tl.load(cum_ptr + rowc + t * C + c, mask=on, other=0.0)
        cs = tl.load(cum_ptr + rowc + s * C + c, mask=on, other=0.0)
        bi = tl.load(bias_ptr + (d - 1) * C + c, mask=on, other=0.0)
        ps = tl.zeros_like(ct)
        pe = tl.zeros_like(ct)
        if HAS_PS:
            ps = tl.load(ps_ptr + b * T * C + s * C + c, mask=on, other=0.0)
        if HAS_PE:
            pe = tl.load(pe_ptr + b * T * C + (t - 1) * C + c, mask=on, other=0.0)
        if PER_DURATION:
            link = tl.load(trans_ptr + (d - 1) * C * C + prev * C + c, mask=on & (s > 0), other=0.0)
            start = tl.load(first_ptr + (d - 1) * C + c, mask=on & (s == 0), other=0.0)
        else:
            link = tl.load(trans_ptr + prev * C + c, mask=on & (s > 0), other=0.0)
            start = tl.load(first_ptr + c, mask=on & (s == 0), other=0.0)
        return ct, cs, bi, ps, pe, link, start

    @triton.jit
    def _add_terms(score, ct, cs, bi, ps, pe, link, start):
        """``score`` plus one segment's terms from :func:`_segment_terms`, in float64, in the
        order of ``segment_values``."""
        v = ct.to(tl.float64) - cs.to(tl.float64) + bi.to(tl.float64)
        v = v + ps.to(tl.float64) + pe.to(tl.float64)
        return score + (v + (link.to(tl.float64) + start))

    @triton.jit(do_not_specialize=["B", "T", "C", "K", "rows", "seed"])
    def _sample_kernel(
        alpha_ptr,  # (B, T+1, C) alpha - shift
        window_ptr,  # (B, T+1, C) A + proj_start - shift ((C, C) only)
        shift_ptr,  # (B, T+1) float64
        cum_ptr,  # (B, T+1, C)
        ps_ptr,  # (B, T, C) proj_start (with HAS_PS)
        pe_ptr,  # (B, T, C) proj_end (with HAS_PE)
        trans_ptr,  # (C, C) or (K, C, C), forbidden -inf
        bias_ptr,  # (K, C), forbidden -inf
        first_ptr,  # (C,) or (K, C) float64 start scores
        len_ptr,  # (B,) int64
        alive_ptr,  # (B,) int8: log Z finite
        starts_ptr,  # out (rows, T) int8, zero-initialised
        label_ptr,  # out (rows, T) int64, -1-initialised
        score_ptr,  # out (rows,) float64
        B,
        T,
        C,
        K,
        rows,
        seed,
        PER_DURATION: tl.constexpr,
        HAS_PS: tl.constexpr,
        HAS_PE: tl.constexpr,
        BLOCK_N: tl.constexpr,
        BLOCK_C: tl.constexpr,
        BLOCK_K: tl.constexpr,
    ):
        # BLOCK_N samples per program, all advancing one segment per step.
        row = tl.program_id(0).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
        rmask = row < rows
        b = row % B
        L = tl.load(len_ptr + b, mask=rmask, other=0)
        ok = (tl.load(alive_ptr + b, mask=rmask, other=0) != 0) & rmask
        offs_c = tl.arange(0, BLOCK_C)
        cm = offs_c < C
        offs_k = tl.arange(0, BLOCK_K)
        base = b * (T + 1) * C  # (BLOCK_N,)
        stride = 2 * T + 2  # uniforms per row: the final label, then two per segment
        m2 = rmask[:, None] & cm[None, :]
        final = tl.load(
            alpha_ptr + (base + L * C)[:, None] + offs_c[None, :], mask=m2, other=float("-inf")
        )
        u = tl.rand(seed, (row * stride).to(tl.int32))
        c = _draw(final.to(tl.float64), m2, u)
        t = tl.where(ok, L, 0)
        score = tl.zeros([BLOCK_N], dtype=tl.float64)
        # The last segment's score terms, added during the next step (see _segment_terms).
        ct = tl.zeros([BLOCK_N], dtype=cum_ptr.dtype.element_ty)
        cs, bi, ps, pe = ct, ct, ct, ct
        link = tl.zeros([BLOCK_N], dtype=trans_ptr.dtype.element_ty)
        start = tl.zeros([BLOCK_N], dtype=tl.float64)
        step = 1
        while tl.max(t, axis=0) > 0:
            active = t > 0
            u1 = tl.rand(seed, (row * stride + 2 * step - 1).to(tl.int32))
            u2 = tl.rand(seed, (row * stride + 2 * step).to(tl.int32))
            d = offs_k[None, :] + 1  # (1, BLOCK_K)
            s = t[:, None] - d  # (BLOCK_N, BLOCK_K)
            ok_d = active[:, None] & (d <= K) & (s >= 0)
            s_safe = tl.where(ok_d, s, 0)
            cc = c[:, None]
            bias = tl.load(bias_ptr + (d - 1) * C + cc, mask=ok_d, other=float("-inf"))
            side = bias.to(tl.float64) - tl.load(
                cum_ptr + base[:, None] + s_safe * C + cc, mask=ok_d, other=0.0
            ).to(tl.float64)
            sh = tl.load(shift_ptr + (b * (T + 1))[:, None] + s_safe, mask=ok_d, other=0.0)
            # The previous segment's terms: their loads were issued a step ago.
            score = _add_terms(score, ct, cs, bi, ps, pe, link, start)
            if PER_DURATION:
                # Joint (d, c') over (BLOCK_N, BLOCK_K, BLOCK_C), flattened for the draw.
                if HAS_PS:
                    side += tl.load(
                        ps_ptr + (b * T * C)[:, None] + s_safe * C + cc, mask=ok_d, other=0.0
                    ).to(tl.float64)
                s3 = s_safe[:, :, None]
                ok3 = ok_d[:, :, None] & cm[None, None, :]
                c3 = offs_c[None, None, :]
                a = tl.load(alpha_ptr + base[:, None, None] + s3 * C + c3, mask=ok3, other=0.0)
                tr = tl.load(
                    trans_ptr + (d[:, :, None] - 1) * C * C + c3 * C + cc[:, :, None],
                    mask=ok3, other=float("-inf"),
                )  # fmt: skip
                first = tl.load(first_ptr + (d - 1) * C + cc, mask=ok_d, other=float("-inf"))
                inner = a.to(tl.float64) + sh[:, :, None] + tr.to(tl.float64)
                first3 = tl.where(c3 == 0, first[:, :, None], float("-inf"))
                inner = tl.where(s3 == 0, first3, inner)
                joint = tl.reshape(inner + side[:, :, None], [BLOCK_N, BLOCK_K * BLOCK_C])
                valid = tl.reshape(ok3, [BLOCK_N, BLOCK_K * BLOCK_C])
                pick = _draw(joint, valid, u1)
                dd = pick // BLOCK_C + 1
                prev = pick % BLOCK_C
            else:
                w = tl.load(window_ptr + base[:, None] + s_safe * C + cc, mask=ok_d, other=0.0)
                g = w.to(tl.float64) + sh + side
                dd = _draw(g, ok_d, u1) + 1
                sp = tl.where(active, t - dd, 0)
                a = tl.load(
                    alpha_ptr + (base + sp * C)[:, None] + offs_c[None, :], mask=m2, other=0.0
                )
                tr = tl.load(trans_ptr + offs_c[None, :] * C + c[:, None], mask=m2, other=0.0)
                prev = _draw(a.to(tl.float64) + tr.to(tl.float64), m2 & (tr > float("-inf")), u2)
            s_new = tl.where(active, t - dd, 0)
            tl.store(starts_ptr + row * T + s_new, (s_new * 0 + 1).to(tl.int8), mask=active)
            # The whole segment's labels, so that no pass over (rows, T) fills them in later.
            span = active[:, None] & (offs_k[None, :] < dd[:, None])
            tl.store(
                label_ptr + (row * T + s_new)[:, None] + offs_k[None, :],
                cc + offs_k[None, :] * 0, mask=span,
            )  # fmt: skip
            ct, cs, bi, ps, pe, link, start = _segment_terms(
                cum_ptr, ps_ptr, pe_ptr, trans_ptr, bias_ptr, first_ptr, b, T, C, s_new, t, dd, c,
                prev, active, PER_DURATION, HAS_PS, HAS_PE,
            )  # fmt: skip
            c = tl.where(active, prev, c)
            t = s_new
            step += 1
        score = _add_terms(score, ct, cs, bi, ps, pe, link, start)
        tl.store(score_ptr + row, score, mask=rmask)


def streaming_sample_triton(
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    lengths: torch.Tensor,
    K: int,
    num_samples: int,
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    num_warps: int = 4,
) -> Segmentation:
    """``num_samples`` exact samples per sequence with the Triton kernels (not validated).

    Arguments and result as :func:`semicrf_kernels.sampling.pytorch.streaming_sample_pytorch`.
    """
    inp = prepare_inputs(cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end)
    _check_triton(inp.cum_scores)
    cum, trans, bias, lens = inp.cum_scores, inp.transition, inp.duration_bias, inp.lengths
    B, T1, C = cum.shape
    T = T1 - 1
    with torch.no_grad():
        score, _final, alpha, window, shift, _, _ = run_forward_scan(
            cum, trans, bias, lens, K, inp.proj_start, inp.proj_end,
            maxsr=False, backpointers=False, num_warps=num_warps,
        )  # fmt: skip
        alive = torch.isfinite(score)
        per_duration = trans.dim() == 3
        first = safe_logsumexp(trans.to(torch.float64), dim=-2)
        first = first.expand(K, C).contiguous() if per_duration else first
        rows = num_samples * B
        starts = torch.zeros(rows, T, dtype=torch.int8, device=cum.device)
        labels = torch.full((rows, T), -1, dtype=torch.int64, device=cum.device)
        score = torch.empty(rows, dtype=torch.float64, device=cum.device)
        ps = inp.proj_start if inp.proj_start is not None else cum
        pe = inp.proj_end if inp.proj_end is not None else cum
        per_launch = max(1, _MAX_OFFSETS // (2 * T + 2))
        block_c, block_k = _next_pow2(C), _next_pow2(K)
        # Rows per program: a (BLOCK_N, BLOCK_K) tile per step, (BLOCK_N, BLOCK_K, BLOCK_C) with
        # (K, C, C) transitions; keep each tile within 4096 elements, and no more rows than
        # fill every multiprocessor: a draw is a serial chain of steps, so with few rows (100
        # samples of one sequence) one row a program puts the chains on 100 multiprocessors
        # instead of 7. The draws do not depend on it (uniforms are numbered by row and step).
        tile = block_k * (block_c if per_duration else 1)
        fill = _pow2_floor(-(-rows // num_sms(cum.device)))
        block_n = max(1, min(16, 4096 // tile, fill))
        for row0 in range(0, rows, per_launch):
            n = min(per_launch, rows - row0)
            seed = int(
                torch.randint(0, 2**31 - 1, (1,), generator=generator, device=cum.device).item()
            )
            # Output row row0 + i samples sequence (row0 + i) % B: the kernel numbers its rows
            # from 0, so a launch not starting at a multiple of B sees the batch rotated.
            seq = (alpha, window if window is not None else alpha, shift, cum, ps, pe, lens, alive)
            if row0 % B:
                order = (torch.arange(B, device=cum.device) + row0 % B) % B
                seq = tuple(x[order] for x in seq)
            a_, w_, sh_, cum_, ps_, pe_, lens_, alive_ = seq
            _sample_kernel[(_cdiv(n, block_n),)](
                a_, w_, sh_, cum_, ps_, pe_, trans, bias, first, lens_, alive_.to(torch.int8),
                starts[row0:], labels[row0:], score[row0:],
                B, T, C, K, n, seed,
                PER_DURATION=per_duration, HAS_PS=inp.proj_start is not None,
                HAS_PE=inp.proj_end is not None,
                BLOCK_N=block_n, BLOCK_C=block_c, BLOCK_K=block_k, num_warps=num_warps,
            )  # fmt: skip
        # The kernel wrote every segment's labels and its float64 score: no pass over the
        # (num_samples, batch, T) result is left but these reshapes.
        segmentation = Segmentation(
            labels.reshape(num_samples, B, T), starts.bool().reshape(num_samples, B, T), None
        )
        scores = torch.where(alive, score.reshape(num_samples, B), -torch.inf).to(cum.dtype)
        return segmentation._replace(scores=scores)
