"""``semi_crf_streaming_viterbi``: validation, then dispatch to Triton or PyTorch."""

from __future__ import annotations

import torch

from .._shared.inputs import prepare_inputs
from ..validation import check_num_warps, validate_streaming_inputs
from . import op as _op  # noqa: F401 - registers torch.ops.semicrf_kernels.*
from .path import ViterbiPath

__all__ = ["semi_crf_streaming_viterbi"]


def semi_crf_streaming_viterbi(
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    lengths: torch.Tensor,
    K: int,
    use_triton: bool = True,
    num_warps: int = 4,
    *,
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
    validate: bool = True,
) -> ViterbiPath:
    """Most probable segmentation of each sequence (the max of the model that log Z sums).

    The first segment keeps the start score ``logsumexp_{c'} transition[c', c]``, exactly as in
    the log partition, so the path is the mode of the segmentation distribution. Ties go to the
    smaller duration, then the smaller (previous or final) label. Arguments are those of
    :func:`semicrf_kernels.semi_crf_streaming_forward` (without ``semiring``). Never
    differentiable.

    Returns:
        :class:`ViterbiPath`: ``scores (batch,)`` (float32, float64 for float64 inputs; ``-inf``
        with no segment when no segmentation is allowed) and ``(batch, T)`` int64 ``starts``,
        ``durations``, ``labels`` (-1 after ``num_segments``), ``segment_scores`` summing to the
        score (the first including the start score), ``num_segments (batch,)``.
    """
    check_num_warps(num_warps)
    validate_streaming_inputs(
        cum_scores,
        transition,
        duration_bias,
        lengths,
        K,
        proj_start,
        proj_end,
        validate=validate,
        use_triton=use_triton,
    )
    with torch.no_grad():
        inp = prepare_inputs(
            cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end
        )
        # The custom operator dispatches to Triton or PyTorch (see op.py); under
        # torch.compile it is one opaque node.
        fields = torch.ops.semicrf_kernels.streaming_viterbi.default(
            *inp, bool(use_triton), int(num_warps)
        )
    return ViterbiPath(*fields)
