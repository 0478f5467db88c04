"""Triton top-k: the k-best scan of :mod:`.pytorch`, one program per sequence, in float64.

Every ``(position, label)`` keeps its ``k`` best partial paths. A list is filled by ``k``
selection passes over its candidates, each taking the largest remaining value and, among equal
values, the smallest candidate index: exactly the order of the PyTorch path's stable descending
sort, since candidates are indexed the same way (duration, then previous label, then rank). The
scan works in float64 and adds in the PyTorch path's order, so both give the same results bit for
bit (the start scores are computed once, by the same torch function, and passed in). A traceback
kernel then follows the backpointers of every rank on the device.

Cost per position: O(C k K k) with ``(C, C)`` transitions (plus O(C k C k) for the start-side
lists), O(C k K C k) with ``(K, C, C)``; the selection passes make it slower than the PyTorch
path's sort for large ``k``. Memory O(k batch T C).
"""

from __future__ import annotations

import torch

from .._inputs import prepare_inputs
from .._logspace import safe_logsumexp
from .._triton_support import HAS_TRITON
from ..segmentation import Segmentation
from ..streaming.pytorch import _end_terms, _start_terms, _working_inputs
from ..streaming.triton_forward import _check_triton, _next_pow2

__all__ = ["streaming_topk_triton"]

if HAS_TRITON:
    import triton
    import triton.language as tl

    @triton.jit
    def _select(cand, avail, index, r, k, out_v, out_i, extra, pos_ok):
        """Pass ``r`` of the k-best selection: store the largest available candidate (smallest
        index among ties) plus ``extra`` at ``out_v`` and its index at ``out_i``; return the
        availability without it."""
        key = tl.where(avail, cand, float("-inf"))
        v = tl.max(key, axis=0)
        pick = tl.min(tl.where(avail & (cand == v), index, 1 << 30), axis=0)
        keep = pos_ok & (r < k)
        tl.store(out_v, v + extra, mask=keep)
        tl.store(out_i, pick, mask=keep)
        return avail & (index != pick)

    @triton.jit(do_not_specialize=["T", "C", "K", "k"])
    def _topk_scan_kernel(
        starts_ptr,  # (B, T+1, C) float64 proj_start - cum
        ends_ptr,  # (B, T+1, C) float64 cum + proj_end
        trans_ptr,  # (C, C) or (K, C, C) float64
        bias_ptr,  # (K, C) float64
        first_ptr,  # (K, C) float64 start scores
        len_ptr,  # (B,) int64
        alpha_ptr,  # (B, T+1, C, KK) float64 out
        g_ptr,  # (B, T+1, C, KK) float64 scratch: start-side lists ((C, C))
        end_ptr,  # (B, T, C, KK) int32 out: candidate index of each end-list entry
        start_ptr,  # (B, T, C, KK) int32 out: candidate index of each start-list entry
        T,
        C,
        K,
        k,
        KK: tl.constexpr,
        PER_DURATION: tl.constexpr,
        BLOCK_C: tl.constexpr,
        BLOCK_D: tl.constexpr,
    ):
        b = tl.program_id(0).to(tl.int64)
        L = tl.load(len_ptr + b)
        rows = (T + 1) * C
        offs_j = tl.arange(0, KK)
        offs_c = tl.arange(0, BLOCK_C)
        offs_d = tl.arange(0, BLOCK_D)
        if not PER_DURATION:
            # G[0, c] = [start[c] + starts[0, c], -inf, ...].
            for c in range(C):
                v0 = tl.load(first_ptr + c) + tl.load(starts_ptr + b * rows + c)
                g0 = tl.where(offs_j == 0, v0, float("-inf"))
                tl.store(g_ptr + (b * rows + c) * KK + offs_j, g0)
        for t in range(1, L + 1):
            dmax = tl.minimum(K, t)
            for c in range(C):
                e = tl.load(ends_ptr + b * rows + t * C + c)
                out = (b * rows + t * C + c) * KK
                bp = ((b * T + t - 1) * C + c) * KK
                if PER_DURATION:
                    # Candidates (d, c', i), index ((d-1) * BLOCK_C + c') * KK + i.
                    d3 = offs_d[:, None, None] + 1
                    c3 = offs_c[None, :, None]
                    j3 = offs_j[None, None, :]
                    z3 = d3 * 0 + c3 * 0 + j3 * 0  # full-shape offsets for every load
                    d3 = d3 + z3
                    s3 = t - d3
                    ok = (d3 <= dmax) & (c3 < C) & (j3 < k)
                    s_safe = tl.where(ok, s3, 0)
                    a = tl.load(
                        alpha_ptr + ((b * rows + s_safe * C + c3) * KK + j3), mask=ok & (s3 > 0),
                        other=float("-inf"),
                    )  # fmt: skip
                    tr = tl.load(trans_ptr + ((d3 - 1) * C + c3) * C + c, mask=ok, other=0.0)
                    pair = a + tr
                    fst = tl.load(first_ptr + (d3 - 1) * C + c, mask=ok, other=float("-inf"))
                    pair = tl.where(
                        s3 == 0, tl.where((c3 == 0) & (j3 == 0), fst, float("-inf")), pair
                    )
                    st = tl.load(starts_ptr + b * rows + s_safe * C + c, mask=ok, other=0.0)
                    bs = tl.load(bias_ptr + (d3 - 1) * C + c, mask=ok, other=0.0)
                    cand = tl.reshape((pair + st) + bs, [BLOCK_D * BLOCK_C * KK])
                    avail = tl.reshape(ok, [BLOCK_D * BLOCK_C * KK])
                    index = tl.arange(0, BLOCK_D * BLOCK_C * KK)
                else:
                    # Candidates (d, j), index (d-1) * KK + j.
                    j2 = offs_j[None, :]
                    d2 = offs_d[:, None] + 1 + j2 * 0
                    s2 = t - d2
                    ok = (d2 <= dmax) & (j2 < k)
                    s_safe = tl.where(ok, s2, 0)
                    g = tl.load(g_ptr + (b * rows + s_safe * C + c) * KK + j2, mask=ok, other=0.0)
                    bs = tl.load(bias_ptr + (d2 - 1) * C + c, mask=ok, other=0.0)
                    cand = tl.reshape(g + bs, [BLOCK_D * KK])
                    avail = tl.reshape(ok, [BLOCK_D * KK])
                    index = tl.arange(0, BLOCK_D * KK)
                for r in range(KK):
                    avail = _select(
                        cand, avail, index, r, k, alpha_ptr + out + r, end_ptr + bp + r, e, True
                    )
            if not PER_DURATION:
                tl.debug_barrier()
                # Start-side lists G[t, c]: candidates (c', i), index c' * KK + i.
                for c in range(C):
                    j2 = offs_j[None, :]
                    c2 = offs_c[:, None] + j2 * 0
                    ok = (c2 < C) & (j2 < k)
                    a = tl.load(alpha_ptr + (b * rows + t * C + c2) * KK + j2, mask=ok, other=0.0)
                    tr = tl.load(trans_ptr + c2 * C + c, mask=ok, other=0.0)
                    cand = tl.reshape(a + tr, [BLOCK_C * KK])
                    avail = tl.reshape(ok, [BLOCK_C * KK])
                    index = tl.arange(0, BLOCK_C * KK)
                    st = tl.load(starts_ptr + b * rows + t * C + c)
                    out = (b * rows + t * C + c) * KK
                    bp = ((b * T + t) * C + c) * KK
                    for r in range(KK):
                        avail = _select(
                            cand, avail, index, r, k, g_ptr + out + r, start_ptr + bp + r, st, t < L
                        )
            tl.debug_barrier()

    @triton.jit(do_not_specialize=["B", "T", "C", "k"])
    def _topk_traceback_kernel(
        alpha_ptr,  # (B, T+1, C, KK) float64
        end_ptr,  # (B, T, C, KK) int32
        start_ptr,  # (B, T, C, KK) int32
        len_ptr,  # (B,) int64
        score_ptr,  # out (k, B) float64
        starts_out,  # out (k, B, T) int8, zero-initialised
        label_out,  # out (k, B, T) int64
        B,
        T,
        C,
        k,
        KK: tl.constexpr,
        PER_DURATION: tl.constexpr,
        BLOCK_C: tl.constexpr,
        BLOCK_D: tl.constexpr,
    ):
        # Program (b): rank r of sequence b; the final candidates (c, i), index c * KK + i.
        b = tl.program_id(0).to(tl.int64)
        L = tl.load(len_ptr + b)
        rows = (T + 1) * C
        offs = tl.arange(0, BLOCK_C * KK)
        c_of = offs // KK
        i_of = offs % KK
        ok = (c_of < C) & (i_of < k)
        cand = tl.load(alpha_ptr + (b * rows + L * C + c_of) * KK + i_of, mask=ok, other=0.0)
        avail = ok
        for r in range(k):
            key = tl.where(avail, cand, float("-inf"))
            v = tl.max(key, axis=0)
            pick = tl.min(tl.where(avail & (cand == v), offs, 1 << 30), axis=0)
            avail = avail & (offs != pick)
            tl.store(score_ptr + r * B + b, v)
            c = (pick // KK).to(tl.int64)
            i = (pick % KK).to(tl.int64)
            t = tl.where(v > float("-inf"), L, 0)
            row = (r * B + b) * T
            while t > 0:
                f = tl.load(end_ptr + ((b * T + t - 1) * C + c) * KK + i).to(tl.int64)
                if PER_DURATION:
                    d = f // (BLOCK_C * KK) + 1
                    prev = (f // KK) % BLOCK_C
                    prank = f % KK
                else:
                    d = f // KK + 1
                    j = f % KK
                s = t - d
                tl.store(starts_out + row + s, (s * 0 + 1).to(tl.int8))
                tl.store(label_out + row + s, c)
                if not PER_DURATION:
                    g = tl.load(start_ptr + ((b * T + s) * C + c) * KK + j, mask=s > 0, other=0)
                    prev = (g // KK).to(tl.int64)
                    prank = (g % KK).to(tl.int64)
                c = prev
                i = prank
                t = s


def streaming_topk_triton(
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    lengths: torch.Tensor,
    K: int,
    k: int,
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
    num_warps: int = 4,
) -> Segmentation:
    """The ``k`` best segmentations with the Triton kernels (not validated); the same result,
    bit for bit, as :func:`semicrf_kernels.topk.pytorch.streaming_topk_pytorch`."""
    prepared = prepare_inputs(
        cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end
    )
    _check_triton(prepared.cum_scores)
    with torch.no_grad():
        inp = _working_inputs(prepared)
        cum, trans, bias, lens = inp.cum_scores, inp.transition, inp.duration_bias, inp.lengths
        B, T1, C = cum.shape
        T = T1 - 1
        dev = cum.device
        per_duration = trans.dim() == 3
        first = safe_logsumexp(trans, dim=-2)
        first = (first if per_duration else first[None].expand(K, C)).contiguous()
        starts_t = _start_terms(inp).contiguous()
        ends_t = _end_terms(inp).contiguous()
        KK = _next_pow2(k)
        block_c, block_d = _next_pow2(C), _next_pow2(K)
        alpha = torch.full((B, T1, C, KK), -torch.inf, dtype=torch.float64, device=dev)
        g = torch.full_like(alpha, -torch.inf)
        end_bp = torch.zeros(B, T, C, KK, dtype=torch.int32, device=dev)
        start_bp = torch.zeros_like(end_bp)
        _topk_scan_kernel[(B,)](
            starts_t, ends_t, trans.contiguous(), bias.contiguous(), first, lens, alpha, g,
            end_bp, start_bp, T, C, K, k,
            KK=KK, PER_DURATION=per_duration, BLOCK_C=block_c, BLOCK_D=block_d,
            num_warps=num_warps,
        )  # fmt: skip
        scores = torch.empty(k, B, dtype=torch.float64, device=dev)
        starts = torch.zeros(k, B, T, dtype=torch.int8, device=dev)
        label_at = torch.zeros(k, B, T, dtype=torch.int64, device=dev)
        _topk_traceback_kernel[(B,)](
            alpha, end_bp, start_bp, lens, scores, starts, label_at, B, T, C, k,
            KK=KK, PER_DURATION=per_duration, BLOCK_C=block_c, BLOCK_D=block_d, num_warps=1,
        )  # fmt: skip
        starts = starts.bool()
        t = torch.arange(T, device=dev).expand(starts.shape)
        owner = torch.cummax(torch.where(starts, t, torch.zeros_like(t)), dim=-1).values
        valid = (t < lens[:, None]) & torch.isfinite(scores)[..., None]
        labels = torch.where(valid, label_at.gather(-1, owner), -1)
        return Segmentation(labels, starts, scores.to(prepared.cum_scores.dtype))
