"""Triton top-k: the k-best scan of :mod:`.pytorch`, one program per sequence, in float64.

Every ``(position, label)`` keeps its ``k`` best partial paths. The candidates of a list come in
sorted runs (one per duration, or per duration and previous label: a run is an earlier list plus
terms shared by the whole run), so a list is filled by a k-way merge of the runs' heads, taking
the largest head and, among equal values, the run that comes first: exactly the order of the
PyTorch path's stable descending sort, since candidates are indexed the same way (duration, then
previous label, then rank). The
scan works in float64 and adds in the PyTorch path's order, so both give the same results bit for
bit (the start scores are computed once, on the CPU by :func:`.pytorch.start_scores_on_cpu`, and passed
in: ``exp`` and ``log`` round differently on a GPU). A traceback kernel then follows the
backpointers of every rank on the device.

Cost per position: O(C k K) with ``(C, C)`` transitions (plus O(C k C) for the start-side
lists), O(C k K C) with ``(K, C, C)``. Memory O(k batch T C). With ``(C, C)`` transitions the
merges of a group of labels run together, one per row of a ``[labels, lists]`` tile: a position
takes ``k`` merge steps per group instead of ``k`` per label (the merge steps are serial
reductions, the scan's latency). A merge step is one reduction (the maximum with its first
index), and only the list it popped reloads its next entry.
"""

from __future__ import annotations

import torch

from .._shared.inputs import prepare_inputs
from .._shared.scan_launch import _check_triton, _next_pow2
from .._shared.triton_support import HAS_TRITON
from ..logpartition.pytorch import _end_terms, _start_terms, _working_inputs
from ..segmentation import Segmentation
from .pytorch import start_scores_on_cpu

__all__ = ["streaming_topk_triton"]

#: Largest ``[labels, lists]`` tile of the ``(C, C)`` scan's merges (a power of two): labels are
#: merged in groups of ``_GROUP_TILE // max(next_pow2(K), next_pow2(C))`` (at least 1, at most
#: ``next_pow2(C)``), each group's k merges at once.
_GROUP_TILE = 4096

if HAS_TRITON:
    import triton
    import triton.language as tl

    @triton.jit
    def _pop_rows(val, lane, head, out_v, out_i, extra, keep, KK: tl.constexpr):
        """One step of a k-way merge per row of ``[rows, lists]`` tiles (the merges of several
        labels at once). ``val``: each list's current head (``-inf`` where a list is exhausted
        or absent), ``lane`` its list number (its column), ``head`` its next rank. Stores per
        row the largest head plus ``extra`` at ``out_v`` and, from the one lane that holds it,
        its candidate index ``list * KK + rank`` at ``out_i``; among equal heads the smallest
        list number wins (the stable order). Returns the popped lanes (one per row)."""
        v, j = tl.max(val, axis=1, return_indices=True, return_indices_tie_break_left=True)
        popped = lane == j[:, None]
        keep = keep != 0  # a bool mask under the interpreter too
        tl.store(out_v, v + extra, mask=keep)
        idx = (lane * KK + head).to(tl.int32)
        tl.store(out_i[:, None] + lane * 0, idx, mask=popped & keep[:, None])
        return popped

    @triton.jit
    def _merge_runs(base, add, lane, ok_l, k, out_v, out_i, extra, keep, KK: tl.constexpr):
        """The ``k`` steps of one merge per row of a ``[rows, runs]`` tile: run ``lane`` of a row
        is the sorted list at ``base`` (``KK`` entries) plus ``add``; only the popped run reloads
        its next entry. Stores rank ``r`` at ``out_v + r`` / ``out_i + r`` (see
        :func:`_pop_rows`)."""
        head = tl.zeros(lane.shape, dtype=tl.int32)
        val = tl.load(base, mask=ok_l, other=float("-inf")) + add
        for r in range(k):
            popped = _pop_rows(val, lane, head, out_v + r, out_i + r, extra, keep, KK)
            head += popped.to(tl.int32)
            more = popped & ok_l & (head < k)
            fresh = tl.load(base + head, mask=more, other=float("-inf")) + add
            val = tl.where(popped, fresh, val)

    @triton.jit
    def _pop_grid(
        val, offs_d, offs_c, head, out_v, out_i, extra, KK: tl.constexpr, BLOCK_C: tl.constexpr,
    ):  # fmt: skip
        """As :func:`_pop_rows` for one merge over a ``[durations, labels]`` grid of lists,
        numbered ``d * BLOCK_C + c'`` (always stored: one merge per program): the row-wise
        winners, then the first row that holds the maximum, so ties go to the smallest number."""
        v1, j1 = tl.max(val, axis=1, return_indices=True, return_indices_tie_break_left=True)
        v, dj = tl.max(v1, axis=0, return_indices=True, return_indices_tie_break_left=True)
        popped = (offs_d[:, None] == dj) & (offs_c[None, :] == j1[:, None])
        tl.store(out_v, v + extra)
        idx = ((offs_d[:, None] * BLOCK_C + offs_c[None, :]) * KK + head).to(tl.int32)
        tl.store(out_i + idx * 0, idx, mask=popped)
        return popped

    @triton.jit
    def _kcc_heads(abase, head, ok, s2, c2, tr, fst, st, bs, k):
        """The ``(K, C, C)`` lists' entries at rank ``head``: ``alpha[s, c'][head] + trans[d, c',
        c]`` (the start score ``fst`` for a segment that starts the sequence, one entry, at
        ``c' = 0``), plus the start-side and bias terms, in the PyTorch path's order; ``abase``
        points at each list's rank 0."""
        live = ok & (head < k)
        a = tl.load(abase + head, mask=live & (s2 > 0), other=float("-inf"))
        pair = a + tr
        at0 = tl.where((c2 == 0) & (head == 0), fst, float("-inf"))
        pair = tl.where(s2 == 0, at0, pair)
        return tl.where(live, (pair + st) + bs, float("-inf"))

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
        GROUP: tl.constexpr,
    ):
        # Every list is sorted (value descending, ties in candidate order), and a candidate's
        # value is its list entry plus terms shared by the whole list, so the k best are a
        # k-way merge of the lists' heads: O(lists) per step instead of O(lists * k).
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
            tl.debug_barrier()  # step 1 reads these rows from other threads
        if PER_DURATION:
            for t in range(1, L + 1):
                dmax = tl.minimum(K, t)
                for c in range(C):
                    e = tl.load(ends_ptr + b * rows + t * C + c)
                    out = (b * rows + t * C + c) * KK
                    bp = ((b * T + t - 1) * C + c) * KK
                    # Lists (d, c'), numbered (d - 1) * BLOCK_C + c'; entries i.
                    d2 = offs_d[:, None] + 1 + offs_c[None, :] * 0
                    c2 = offs_c[None, :] + offs_d[:, None] * 0
                    s2 = t - d2
                    ok_l = (d2 <= dmax) & (c2 < C)
                    s_safe = tl.where(ok_l, s2, 0)
                    tr = tl.load(trans_ptr + ((d2 - 1) * C + c2) * C + c, mask=ok_l, other=0.0)
                    fst = tl.load(first_ptr + (d2 - 1) * C + c, mask=ok_l, other=float("-inf"))
                    st = tl.load(starts_ptr + b * rows + s_safe * C + c, mask=ok_l, other=0.0)
                    bs = tl.load(bias_ptr + (d2 - 1) * C + c, mask=ok_l, other=0.0)
                    abase = alpha_ptr + (b * rows + s_safe * C + c2) * KK
                    head = tl.zeros([BLOCK_D, BLOCK_C], dtype=tl.int32)
                    val = _kcc_heads(abase, head, ok_l, s2, c2, tr, fst, st, bs, k)
                    for r in range(k):
                        # Only the popped list moves on: one entry reloaded a step.
                        popped = _pop_grid(
                            val, offs_d, offs_c, head, alpha_ptr + out + r, end_ptr + bp + r, e,
                            KK, BLOCK_C,
                        )  # fmt: skip
                        head += popped.to(tl.int32)
                        fresh = _kcc_heads(abase, head, ok_l & popped, s2, c2, tr, fst, st, bs, k)
                        val = tl.where(popped, fresh, val)
                tl.debug_barrier()
        else:
            # (C, C): the lists of GROUP labels at once, one merge per row of a [GROUP, lists]
            # tile, so a step runs k merges per group of labels instead of k per label.
            offs_g = tl.arange(0, GROUP)
            for t in range(1, L + 1):
                dmax = tl.minimum(K, t)
                # End lists (t, c): lists d (start-side lists G[t - d, c]), numbered d - 1;
                # entries j.
                for c0 in range(0, C, GROUP):
                    cg = c0 + offs_g
                    c_ok = cg < C
                    e = tl.load(ends_ptr + b * rows + t * C + cg, mask=c_ok, other=0.0)
                    out = (b * rows + t * C + cg) * KK
                    bp = ((b * T + t - 1) * C + cg) * KK
                    d2 = offs_d[None, :] + 1 + cg[:, None] * 0
                    s2 = t - d2
                    ok_l = (d2 <= dmax) & c_ok[:, None]
                    s_safe = tl.where(ok_l, s2, 0)
                    bs = tl.load(bias_ptr + (d2 - 1) * C + cg[:, None], mask=ok_l, other=0.0)
                    gbase = g_ptr + (b * rows + s_safe * C + cg[:, None]) * KK
                    _merge_runs(
                        gbase, bs, d2 - 1, ok_l, k, alpha_ptr + out, end_ptr + bp, e, c_ok, KK
                    )
                tl.debug_barrier()
                # Start-side lists G[t, c]: lists c' (alpha[t, c']), entries i.
                for c0 in range(0, C, GROUP):
                    cg = c0 + offs_g
                    c_ok = cg < C
                    src = offs_c[None, :] + cg[:, None] * 0
                    ok_l = (src < C) & c_ok[:, None]
                    tr = tl.load(trans_ptr + src * C + cg[:, None], mask=ok_l, other=0.0)
                    st = tl.load(starts_ptr + b * rows + t * C + cg, mask=c_ok, other=0.0)
                    out = (b * rows + t * C + cg) * KK
                    bp = ((b * T + t) * C + cg) * KK
                    abase = alpha_ptr + (b * rows + t * C + src) * KK
                    _merge_runs(
                        abase, tr, src, ok_l, k, g_ptr + out, start_ptr + bp, st, c_ok & (t < L),
                        KK,
                    )  # fmt: skip
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
    num_warps: int | None = None,
) -> Segmentation:
    """The ``k`` best segmentations with the Triton kernels (not validated); the same result,
    bit for bit, as :func:`semicrf_kernels.topk.pytorch.streaming_topk_pytorch`.

    ``num_warps`` of the scan: None (or 0) picks 8 when a merge step's tile holds at least
    ``_GROUP_TILE`` list heads, else 4. Measured on the H100 (``(C, C)``, k = 10): at
    ``1x100000x200x24`` (16 x 256 tiles) 3.94 s with 8 warps against 5.37 s with 4 and 30.5 s
    with 2; at ``32x1000x32x24`` (32 x 32 tiles) 14.5 ms with 4 against 15.5 ms with 8."""
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
        first = start_scores_on_cpu(trans)
        first = (first if per_duration else first[None].expand(K, C)).contiguous()
        starts_t = _start_terms(inp).contiguous()
        ends_t = _end_terms(inp).contiguous()
        KK = _next_pow2(k)
        block_c, block_d = _next_pow2(C), _next_pow2(K)
        group = min(block_c, max(1, _GROUP_TILE // max(block_d, block_c)))
        tile = block_d * block_c if per_duration else group * max(block_d, block_c)
        num_warps = num_warps or (8 if tile >= _GROUP_TILE else 4)
        alpha = torch.full((B, T1, C, KK), -torch.inf, dtype=torch.float64, device=dev)
        g = torch.full_like(alpha, -torch.inf)
        end_bp = torch.zeros(B, T, C, KK, dtype=torch.int32, device=dev)
        start_bp = torch.zeros_like(end_bp)
        _topk_scan_kernel[(B,)](
            starts_t, ends_t, trans.contiguous(), bias.contiguous(), first, lens, alpha, g,
            end_bp, start_bp, T, C, K, k,
            KK=KK, PER_DURATION=per_duration, BLOCK_C=block_c, BLOCK_D=block_d, GROUP=group,
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
