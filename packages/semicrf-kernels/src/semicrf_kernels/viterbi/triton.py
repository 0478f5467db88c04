"""Triton Viterbi: max-semiring scan with backpointers, and a traceback kernel on the device.

The scan is the forward kernel of :mod:`..streaming.triton_forward` in the max semiring (the
first segment still sums its virtual start label out with a log-sum-exp). It records, for every
end position ``t - 1`` and label ``c``, the best duration (ties: the smaller) and the best
previous label (ties: the smaller; ``-1`` for the first segment). The traceback runs one
program per sequence walking these backpointers from the best final label (ties: the smaller),
so decoding needs no host synchronisation and no Python loop per segment.
"""

from __future__ import annotations

import torch

from .._inputs import prepare_inputs
from .._triton_support import HAS_TRITON
from ..streaming.triton_forward import _check_triton, run_forward_scan
from .path import ViterbiPath, score_path_segments

__all__ = ["launch_streaming_triton_kernel_max_bp", "semi_crf_streaming_viterbi_triton"]

if HAS_TRITON:
    import triton
    import triton.language as tl

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
    seg_scores = score_path_segments(
        inp.cum_scores, inp.transition, inp.duration_bias, starts, durations, labels, num,
        inp.proj_start, inp.proj_end,
    )  # fmt: skip
    return ViterbiPath(scores, starts, durations, labels, seg_scores, num)
