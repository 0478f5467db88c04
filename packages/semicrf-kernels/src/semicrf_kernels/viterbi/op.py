"""``torch.ops.semicrf_kernels.streaming_viterbi``: the best segmentation as a custom operator.

One opaque node for ``torch.compile`` with a fake implementation; it dispatches on the device
like the public API (Triton where ``use_triton`` and the kernels can run; otherwise the compiled CPU decoder
where it applies, else PyTorch).
Never differentiable. Only torch 2.4 APIs; real annotations (torch infers the schema from them).
"""

from typing import Optional  # torch 2.4 infers the schemas from typing.Optional

import torch
from torch import Tensor

from .._shared.inputs import compute_dtype
from .._shared.numba_support import cpu_viterbi
from .._shared.op_support import define_op, prepared, register_fake, uses_triton

__all__ = ["streaming_viterbi_op"]


@define_op("semicrf_kernels::streaming_viterbi")
def streaming_viterbi_op(
    cum_scores: Tensor,
    transition: Tensor,
    duration_bias: Tensor,
    lengths: Tensor,
    K: int,
    proj_start: Optional[Tensor],  # noqa: UP045
    proj_end: Optional[Tensor],  # noqa: UP045
    use_triton: bool,
    num_warps: int,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Best segmentation of every sequence; never differentiable.

    Args:
        cum_scores: ``(batch, T+1, C)`` float32/float64 cumulative scores (kernel form).
        transition: ``(C, C)`` or ``(K, C, C)``, forbidden entries ``-inf``.
        duration_bias: ``(K, C)``, forbidden entries ``-inf``.
        lengths: ``(batch,)`` int64 in ``[1, T]``.
        K: longest segment.
        proj_start: ``(batch, T, C)`` or None.
        proj_end: ``(batch, T, C)`` or None.
        use_triton: run the Triton kernels where they can run (see :func:`uses_triton`).
        num_warps: warps per Triton program.

    Returns:
        The fields of :class:`~semicrf_kernels.ViterbiPath` in order: ``scores (batch,)``
        (compute dtype), ``starts``, ``durations``, ``labels`` ``(batch, T)`` int64 (-1 after
        the count), ``segment_scores (batch, T)`` (compute dtype), ``num_segments (batch,)``
        int64.
    """
    inp = prepared(cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end)
    with torch.no_grad():
        if uses_triton(inp.cum_scores, use_triton):
            from .triton import semi_crf_streaming_viterbi_triton

            path = semi_crf_streaming_viterbi_triton(*inp, num_warps=num_warps)
        else:
            path = cpu_viterbi(inp)
    return tuple(path)


@register_fake("semicrf_kernels::streaming_viterbi")
def _streaming_viterbi_fake(
    cum_scores,
    transition,
    duration_bias,
    lengths,
    K,
    proj_start,
    proj_end,
    use_triton,
    num_warps,
):
    B, T1, _ = cum_scores.shape
    dtype = compute_dtype(cum_scores)
    new = cum_scores.new_empty
    index = [new((B, T1 - 1), dtype=torch.int64) for _ in range(3)]
    return (
        new((B,), dtype=dtype),
        *index,
        new((B, T1 - 1), dtype=dtype),
        new((B,), dtype=torch.int64),
    )
