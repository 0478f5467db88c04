"""Viterbi decoding in PyTorch: the max-semiring scan with backpointers, then a traceback.

The scan is the streaming forward of :mod:`semicrf_kernels.logpartition.pytorch` in the max
semiring (the first segment's start score stays a log-sum-exp, as in every semiring), recording
``(batch, T, C)`` int32 backpointers: the best duration for each end position and label (ties: the
smaller duration) and the best previous label (ties: the smaller label), per start position with
``(C, C)`` transitions and per end position (for the chosen duration) with ``(K, C, C)``. The
traceback is vectorised over the batch and loops over segments; segment scores come from
:func:`score_path_segments`.
"""

from __future__ import annotations

import torch

from .._shared.inputs import KernelInputs, prepare_inputs
from ..logpartition.pytorch import _forward_scan, _working_inputs
from .path import ViterbiPath, score_path_segments

__all__ = ["streaming_viterbi_pytorch"]


def _traceback(
    inp: KernelInputs,
    bp_duration: torch.Tensor,
    bp_label: torch.Tensor,
    final_label: torch.Tensor,
    alive: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Follow the backpointers from each sequence's end; returns starts, durations, labels
    (``(batch, T)`` int64, -1 after the count) and the counts ``(batch,)``."""
    lengths = inp.lengths
    per_duration = inp.transition.dim() == 3
    B, T, C = bp_duration.shape
    device = lengths.device
    # Flat (end or start) * C + label indexing: one gather per lookup.
    bp_duration = bp_duration.reshape(B, T * C).long()
    bp_label = bp_label.reshape(B, T * C).long()
    t = torch.where(alive, lengths, torch.zeros_like(lengths))  # end of the current segment
    c = final_label
    rec_start, rec_duration, rec_label = [], [], []
    count = torch.zeros(B, dtype=torch.int64, device=device)
    for i in range(int(lengths.max())):
        active = t > 0
        if i % 64 == 0 and not bool(active.any()):
            break
        end = (t - 1).clamp(min=0)
        d = bp_duration.gather(1, (end * C + c)[:, None]).squeeze(1)
        s = (t - d).clamp(min=0)  # finished sequences stay at 0
        rec_start.append(s)
        rec_duration.append(d)
        rec_label.append(c)
        count += active
        # Previous label: stored per start (C, C) or per end for the chosen duration (K, C, C).
        c = bp_label.gather(1, ((end if per_duration else s) * C + c)[:, None]).squeeze(1)
        t = s
    if not rec_start:  # no sequence has a segment
        rec_start = rec_duration = rec_label = [torch.zeros_like(lengths)]
    width = len(rec_start)
    # Reverse the first `count` entries of each row so segments run from position 0.
    slot = torch.arange(T, device=device)[None, :]
    source = (count[:, None] - 1 - slot).clamp(0, width - 1)
    inside = slot < count[:, None]

    def reorder(recorded: list[torch.Tensor]) -> torch.Tensor:
        return torch.where(inside, torch.stack(recorded, dim=1).gather(1, source), -1)

    return reorder(rec_start), reorder(rec_duration), reorder(rec_label), count


def streaming_viterbi_pytorch(
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    lengths: torch.Tensor,
    K: int,
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
) -> ViterbiPath:
    """Best segmentation of every sequence (PyTorch, any device; not validated).

    Args:
        cum_scores: ``(batch, T+1, C)`` cumulative scores.
        transition: ``(C, C)`` or ``(K, C, C)``, ``transition[c_prev, c]``.
        duration_bias: ``(K, C)``; row ``d - 1`` scores duration ``d``.
        lengths: ``(batch,)`` integer lengths in ``[1, T]``.
        K: longest segment.
        proj_start: optional ``(batch, T, C)``.
        proj_end: optional ``(batch, T, C)``.

    Returns:
        :class:`ViterbiPath` with ``T`` segment slots; scores in float32 (float64 for float64
        inputs), ``-inf`` and no segment for a sequence with no allowed segmentation.
    """
    with torch.no_grad():
        prepared = prepare_inputs(
            cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end
        )
        dtype = prepared.cum_scores.dtype
        inp = _working_inputs(prepared)
        state = _forward_scan(inp, "max", backpointers=True)
        alive = torch.isfinite(state.log_z)
        batch = torch.arange(lengths.shape[0], device=inp.lengths.device)
        final_label = state.alpha[batch, inp.lengths].argmax(dim=-1)  # ties: the smaller label
        starts, durations, labels, count = _traceback(
            inp, state.bp_duration, state.bp_label, final_label, alive
        )
        segment_scores = score_path_segments(
            inp.cum_scores, inp.transition, inp.duration_bias, starts, durations, labels, count,
            proj_start=inp.proj_start, proj_end=inp.proj_end,
        ).to(dtype)  # fmt: skip
        return ViterbiPath(state.log_z.to(dtype), starts, durations, labels, segment_scores, count)
