"""Triton Viterbi: max-semiring scan with backpointers, and a traceback kernel on the device.

The scans (:func:`_viterbi_scan_cc_kernel`, :func:`_viterbi_scan_kcc_kernel`) run the loop bodies
of the forward scan (:mod:`semicrf_kernels._shared.triton_scan`) in the max semiring (the
first segment still sums its virtual start label out with a log-sum-exp). It records, for every
end position ``t - 1`` and label ``c``, the best duration (ties: the smaller) and the best
previous label (ties: the smaller; ``-1`` for the first segment). The traceback runs one
program per sequence walking these backpointers from the best final label (ties: the smaller),
so decoding needs no host synchronisation and no Python loop per segment. The score of every
segment is then computed by one more kernel (:func:`segment_scores_triton`, the Triton twin of
:func:`.path.score_path_segments`): the thirty small PyTorch operations of the reference cost
more host time than the scan itself at ``T = 1000``.
"""

from __future__ import annotations

import torch

from .._shared.inputs import prepare_inputs
from .._shared.scan_launch import _cdiv, _check_triton, run_forward_scan
from .._shared.triton_support import HAS_TRITON
from ..constants import NEG_INF
from .path import ViterbiPath

__all__ = [
    "launch_streaming_triton_kernel_max_bp",
    "segment_scores_triton",
    "semi_crf_streaming_viterbi_triton",
]

if HAS_TRITON:
    import triton
    import triton.language as tl

    from .._shared.triton_scan import _scan_cc_body
    from .._shared.triton_scan_kcc import _scan_kcc_body

    @triton.jit(do_not_specialize=["T", "K", "t_begin", "S", "NSPLIT", "GAP"])
    def _viterbi_scan_cc_kernel(
        cum_ptr,  # (B, T+1, C)
        trans_ptr,  # (C, C)
        db_ptr,  # (K, C)
        len_ptr,  # (B,) int64
        ps_ptr,  # (B, T, C) or dummy
        pe_ptr,  # (B, T, C) or dummy
        alpha_ptr,  # out (B, T+1, C) max-semiring alpha_n
        win_ptr,  # out (B, T+1, C) window values
        shift_ptr,  # out (B, T+1) float64
        score_ptr,  # out (B,) float64 best score
        final_ptr,  # out (B,) int64 best final label
        bpd_ptr,  # out (B, T, C) int32 best duration per end t-1 (STORE_BP)
        bpa_ptr,  # out (B, T, C) int32 best previous label per start s (STORE_BP)
        T, K, C,
        farv_ptr, fard_ptr, t_begin, S, NSPLIT, GAP,  # the split scan's super-block (split_launch)
        HAS_PS: tl.constexpr, HAS_PE: tl.constexpr, STORE_BP: tl.constexpr,
        TRANS_REGS: tl.constexpr, RENORM_BLOCK: tl.constexpr,
        BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr,
        BLOCK_S: tl.constexpr, BLOCK_TC: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_R: tl.constexpr,
    ):  # fmt: skip
        """Viterbi scan, ``(C, C)`` transitions: best score, final label and backpointers."""
        _scan_cc_body(
            cum_ptr, trans_ptr, db_ptr, len_ptr, ps_ptr, pe_ptr,
            alpha_ptr, win_ptr, shift_ptr, score_ptr, final_ptr, bpd_ptr, bpa_ptr,
            T, K, C, farv_ptr, fard_ptr, t_begin, S, NSPLIT, GAP,
            False, True, HAS_PS, HAS_PE, STORE_BP, TRANS_REGS, RENORM_BLOCK,
            BLOCK_C, BLOCK_P, BLOCK_S, BLOCK_TC, BLOCK_K, BLOCK_R,
        )  # fmt: skip

    @triton.jit(do_not_specialize=["T", "K"])
    def _viterbi_scan_kcc_kernel(
        cum_ptr,  # (B, T+1, C)
        trans_ptr,  # (K, C, C)
        db_ptr,  # (K, C)
        start_ptr,  # (K, C) logsumexp_c' trans[d, c', c]: the first segment's start score
        len_ptr,  # (B,) int64
        ps_ptr,
        pe_ptr,
        alpha_ptr,  # out (B, T+1, C) max-semiring alpha_n
        shift_ptr,  # out (B, T+1) float64
        score_ptr,  # out (B,) float64 best score
        final_ptr,  # out (B,) int64 best final label
        bpd_ptr,  # out (B, T, C) int32 best duration per end t-1
        bpl_ptr,  # out (B, T, C) int32 best previous label per end t-1
        T, K, C,
        HAS_PS: tl.constexpr, HAS_PE: tl.constexpr, STORE_BP: tl.constexpr,
        BLOCK_C: tl.constexpr, BLOCK_D: tl.constexpr,
    ):  # fmt: skip
        """Viterbi scan, ``(K, C, C)`` transitions: best score, final label and backpointers."""
        _scan_kcc_body(
            cum_ptr, trans_ptr, db_ptr, start_ptr, len_ptr, ps_ptr, pe_ptr,
            alpha_ptr, shift_ptr, score_ptr, final_ptr, bpd_ptr, bpl_ptr,
            T, K, C,
            True, HAS_PS, HAS_PE, STORE_BP, BLOCK_C, BLOCK_D,
        )  # fmt: skip

    @triton.jit(do_not_specialize=["B", "T"])
    def _traceback_kernel(
        bpd_ptr,  # (B, T, C) int32 best duration of the segment ending at t-1 with label c
        bpl_ptr,  # (B, T, C) int32 its previous label (-1: first segment)
        final_ptr,  # (B,) int64 best last label
        len_ptr,  # (B,) int64
        score_ptr,  # (B,) Viterbi score (-inf: no path)
        tmp_ptr,  # (3, B, T) int64 scratch: segments in reverse order
        starts_ptr,  # out (B, T) int64
        durs_ptr,  # out (B, T) int64
        labels_ptr,  # out (B, T) int64
        num_ptr,  # out (B,) int64
        B,
        T,
        C,
        BLOCK: tl.constexpr,
    ):
        b = tl.program_id(0).to(tl.int64)
        L = tl.load(len_ptr + b)
        ok = tl.load(score_ptr + b) > float("-inf")
        c = tl.load(final_ptr + b)
        t = tl.where(ok, L, 0)
        n = L * 0
        tmp_s = tmp_ptr + b * T
        tmp_d = tmp_ptr + (B + b) * T
        tmp_l = tmp_ptr + (2 * B + b) * T
        while t > 0:
            o = b * T * C + (t - 1) * C + c
            d = tl.load(bpd_ptr + o).to(tl.int64)
            prev = tl.load(bpl_ptr + o).to(tl.int64)
            d = tl.where(d < 1, t, d)  # never loops on a corrupted backpointer
            tl.store(tmp_s + n, t - d)
            tl.store(tmp_d + n, d)
            tl.store(tmp_l + n, c)
            n += 1
            t -= d
            c = prev
        tl.debug_barrier()
        offs = tl.arange(0, BLOCK)
        for i0 in range(0, T, BLOCK):
            i = i0 + offs
            inr = i < T
            v = i < n
            src = n - 1 - i
            s = tl.load(tmp_s + src, mask=v, other=-1)
            d = tl.load(tmp_d + src, mask=v, other=-1)
            lab = tl.load(tmp_l + src, mask=v, other=-1)
            tl.store(starts_ptr + b * T + i, s, mask=inr)
            tl.store(durs_ptr + b * T + i, d, mask=inr)
            tl.store(labels_ptr + b * T + i, lab, mask=inr)
        tl.store(num_ptr + b, n)

    @triton.jit(do_not_specialize=["T", "N", "K"])
    def _segment_scores_kernel(
        cum_ptr,  # (B, T+1, C)
        trans_ptr,  # (C, C) or (K, C, C)
        db_ptr,  # (K, C)
        ps_ptr,  # (B, T, C) or dummy
        pe_ptr,  # (B, T, C) or dummy
        starts_ptr,  # (B, N) int64
        durs_ptr,  # (B, N) int64
        labels_ptr,  # (B, N) int64
        num_ptr,  # (B,) int64
        out_ptr,  # out (B, N)
        T,
        N,
        K,
        C,
        FORBIDDEN: tl.constexpr,
        HAS_PS: tl.constexpr,
        HAS_PE: tl.constexpr,
        PER_DURATION: tl.constexpr,
        BLOCK_N: tl.constexpr,
        BLOCK_C: tl.constexpr,
    ):
        NEG: tl.constexpr = float("-inf")
        b = tl.program_id(0).to(tl.int64)
        i = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
        inr = i < N
        valid = inr & (i < tl.load(num_ptr + b))
        row = b * N + i
        # Padding entries are clamped into range (and masked at the end), as in the reference.
        s = tl.minimum(tl.maximum(tl.load(starts_ptr + row, mask=valid, other=0), 0), T - 1)
        d = tl.minimum(tl.maximum(tl.load(durs_ptr + row, mask=valid, other=1), 1), K)
        c = tl.minimum(tl.maximum(tl.load(labels_ptr + row, mask=valid, other=0), 0), C - 1)
        end = tl.minimum(s + d, T)
        cum_b = cum_ptr + b * (T + 1) * C
        score = tl.load(cum_b + end * C + c, mask=valid, other=0.0) - tl.load(
            cum_b + s * C + c, mask=valid, other=0.0
        )
        bias = tl.load(db_ptr + (d - 1) * C + c, mask=valid, other=0.0)
        score += tl.where(bias <= FORBIDDEN, NEG, bias)
        if HAS_PS:
            score += tl.load(ps_ptr + b * T * C + s * C + c, mask=valid, other=0.0)
        if HAS_PE:
            score += tl.load(pe_ptr + b * T * C + (end - 1) * C + c, mask=valid, other=0.0)
        if PER_DURATION:
            tbase = (d - 1) * C * C
        else:
            tbase = d * 0
        # Transition from the previous segment's label...
        later = valid & (i > 0)
        prev = tl.load(labels_ptr + row - 1, mask=later, other=0)
        prev = tl.minimum(tl.maximum(prev, 0), C - 1)
        link = tl.load(trans_ptr + tbase + prev * C + c, mask=later, other=0.0)
        link = tl.where(link <= FORBIDDEN, NEG, link)
        # ... or, for the first segment, the start score logsumexp_{c'} transition[c', c].
        first = valid & (i == 0)
        offs_c = tl.arange(0, BLOCK_C)
        fm = first[:, None] & (offs_c < C)[None, :]
        col = tl.load(
            trans_ptr + tbase[:, None] + offs_c[None, :] * C + c[:, None], mask=fm, other=NEG
        )
        col = tl.where(col <= FORBIDDEN, NEG, col)
        m = tl.max(col, axis=1)
        m = tl.where(m == NEG, 0.0, m)
        total = tl.sum(tl.exp(col - m[:, None]), axis=1)
        start = tl.where(total > 0, m + tl.log(tl.where(total > 0, total, 1.0)), NEG)
        score += tl.where(i == 0, start, link)
        tl.store(out_ptr + row, tl.where(valid, score, 0.0), mask=inr)


def launch_streaming_triton_kernel_max_bp(
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    lengths: torch.Tensor,
    K: int,
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
    num_warps: int | None = 4,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Viterbi scores and backpointers (Triton), inputs as ``launch_streaming_triton_kernel``.

    Returns:
        ``(scores, bp_duration, bp_label, final_label)``. ``scores`` ``(batch,)`` compute dtype,
        ``-inf`` where no segmentation is allowed. ``bp_duration`` ``(batch, T, C)`` int32:
        ``bp_duration[b, t-1, c]`` is the duration of the best segment with label ``c`` ending at
        position ``t-1`` (inclusive), ties to the smaller; ``-1`` at padding (``t > L``).
        ``bp_label`` ``(batch, T, C)`` int32: that segment's previous label, ties to the smaller;
        ``-1`` when it is the first segment, and at padding. ``final_label`` ``(batch,)`` int64:
        best last label (ties: the smaller), ``-1`` when no segmentation is allowed.
    """
    inp = prepare_inputs(cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end)
    _check_triton(inp.cum_scores)
    score, final, _alpha, _window, _shift, bpd, bpa = run_forward_scan(
        inp.cum_scores, inp.transition, inp.duration_bias, inp.lengths, inp.K,
        inp.proj_start, inp.proj_end,
        maxsr=True, backpointers=True, num_warps=num_warps,
    )  # fmt: skip
    if inp.transition.dim() == 2:
        # bpa holds the best previous label per *start*; move it to the segment's end.
        T = bpd.shape[1]
        end = torch.arange(1, T + 1, device=bpd.device)[None, :, None]
        start = (end - bpd.long()).clamp(0, T - 1)
        bp_label = torch.where(bpd >= 1, bpa.gather(1, start), torch.full_like(bpa, -1))
    else:
        bp_label = bpa
    alive = score > float("-inf")
    final = torch.where(alive, final, torch.full_like(final, -1))
    return score.to(inp.cum_scores.dtype), bpd, bp_label, final


def segment_scores_triton(
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    starts: torch.Tensor,
    durations: torch.Tensor,
    labels: torch.Tensor,
    num_segments: torch.Tensor,
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
) -> torch.Tensor:
    """:func:`.path.score_path_segments` in one Triton kernel (same arguments, same result).

    Args:
        cum_scores: ``(batch, T+1, C)`` float32 or float64 cumulative scores.
        transition: ``(C, C)`` or ``(K, C, C)``, ``cum_scores``' dtype; entries
            ``<= NEG_INF / 2`` count as ``-inf``.
        duration_bias: ``(K, C)``, same dtype and convention.
        starts, durations, labels: ``(batch, N)`` int64 segments (any value after the count).
        num_segments: ``(batch,)`` int64.
        proj_start, proj_end: optional ``(batch, T, C)``, ``cum_scores``' dtype.

    Returns:
        ``(batch, N)`` segment scores in ``cum_scores``' dtype, 0 after each sequence's count.
    """
    B, N = starts.shape
    T, C = cum_scores.shape[1] - 1, cum_scores.shape[2]
    K = duration_bias.shape[0]
    out = torch.empty((B, N), dtype=cum_scores.dtype, device=cum_scores.device)
    if B == 0 or N == 0:
        return out
    dummy = cum_scores
    block_n = max(16, min(256, 1 << max(0, N - 1).bit_length()))
    block_c = max(2, 1 << max(0, C - 1).bit_length())
    grid = (B, _cdiv(N, block_n))
    _segment_scores_kernel[grid](
        cum_scores, transition, duration_bias,
        dummy if proj_start is None else proj_start, dummy if proj_end is None else proj_end,
        starts.long().contiguous(), durations.long().contiguous(), labels.long().contiguous(),
        num_segments.long().contiguous(), out,
        T, N, K, C,
        FORBIDDEN=NEG_INF / 2, HAS_PS=proj_start is not None, HAS_PE=proj_end is not None,
        PER_DURATION=transition.dim() == 3, BLOCK_N=block_n, BLOCK_C=block_c, num_warps=4,
    )  # fmt: skip
    return out


def semi_crf_streaming_viterbi_triton(
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    lengths: torch.Tensor,
    K: int,
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
    num_warps: int | None = 4,
) -> ViterbiPath:
    """Best segmentation of every sequence, decoded entirely on the device (Triton).

    Inputs are those of ``launch_streaming_triton_kernel`` (prepared, not validated).

    Returns:
        :class:`ViterbiPath` with ``N = T`` segment slots: ``scores (batch,)``, ``starts``,
        ``durations``, ``labels`` ``(batch, T)`` int64 padded with -1 after
        ``num_segments[b]``, ``segment_scores (batch, T)`` (0-padded, summing to the score, the
        first one including the start score) and ``num_segments (batch,)`` int64 (0 when no
        segmentation is allowed).
    """
    inp = prepare_inputs(cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end)
    scores, bpd, bpl, final = launch_streaming_triton_kernel_max_bp(*inp, num_warps=num_warps)
    B, T, _C = bpd.shape
    dev = bpd.device
    tmp = torch.empty((3, B, T), dtype=torch.int64, device=dev)
    starts = torch.empty((B, T), dtype=torch.int64, device=dev)
    durations = torch.empty((B, T), dtype=torch.int64, device=dev)
    labels = torch.empty((B, T), dtype=torch.int64, device=dev)
    num = torch.empty((B,), dtype=torch.int64, device=dev)
    block = max(2, min(1024, 1 << max(0, T - 1).bit_length()))
    _traceback_kernel[(B,)](
        bpd, bpl, final, inp.lengths, scores, tmp, starts, durations, labels, num,
        B, T, _C, BLOCK=block, num_warps=4,
    )  # fmt: skip
    seg_scores = segment_scores_triton(
        inp.cum_scores, inp.transition, inp.duration_bias, starts, durations, labels, num,
        inp.proj_start, inp.proj_end,
    )  # fmt: skip
    return ViterbiPath(scores, starts, durations, labels, seg_scores, num)
