"""``torch.ops.semicrf_kernels.streaming_topk``: the k best segmentations as a custom operator.

One opaque node for ``torch.compile`` with a fake implementation; it dispatches on the device
like the public API (Triton where ``use_triton`` and the kernels can run, PyTorch otherwise).
Never differentiable. Only torch 2.4 APIs; real annotations (torch infers the schema from them).
"""

from typing import Optional  # torch 2.4 infers the schemas from typing.Optional

import torch
from torch import Tensor

from .._shared.inputs import compute_dtype
from .._shared.op_support import define_op, prepared, register_fake, uses_triton
from .pytorch import streaming_topk_pytorch

__all__ = ["fits_triton", "streaming_topk_op"]

#: Largest ``(K, C, C)`` step tile (``K C`` list heads, padded to powers of two) of the Triton scan.
MAX_TILE = 16384


def _pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def fits_triton(transition: Tensor, K: int) -> bool:
    """With ``(K, C, C)`` transitions a step's ``K C`` list heads form one Triton tile."""
    return transition.dim() == 2 or _pow2(K) * _pow2(transition.shape[-1]) <= MAX_TILE


@define_op("semicrf_kernels::streaming_topk")
def streaming_topk_op(
    cum_scores: Tensor,
    transition: Tensor,
    duration_bias: Tensor,
    lengths: Tensor,
    K: int,
    k: int,
    proj_start: Optional[Tensor],  # noqa: UP045
    proj_end: Optional[Tensor],  # noqa: UP045
    use_triton: bool,
    num_warps: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """The ``k`` best segmentations of every sequence; never differentiable.

    Args:
        cum_scores: ``(batch, T+1, C)`` float32/float64 cumulative scores (kernel form).
        transition: ``(C, C)`` or ``(K, C, C)``, forbidden entries ``-inf``.
        duration_bias: ``(K, C)``, forbidden entries ``-inf``.
        lengths: ``(batch,)`` int64 in ``[1, T]``.
        K: longest segment.
        k: how many segmentations.
        proj_start: ``(batch, T, C)`` or None.
        proj_end: ``(batch, T, C)`` or None.
        use_triton: run the Triton kernels where they can run (see :func:`uses_triton`).
        num_warps: warps per Triton program; 0 lets the launcher choose.

    Returns:
        The fields of :class:`~semicrf_kernels.Segmentation`: ``labels (k, batch, T)`` int64,
        ``starts (k, batch, T)`` bool, ``scores (k, batch)`` (compute dtype).
    """
    inp = prepared(cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end)
    with torch.no_grad():
        if uses_triton(inp.cum_scores, use_triton) and fits_triton(inp.transition, K):
            from .triton import streaming_topk_triton

            seg = streaming_topk_triton(*inp[:5], k, inp.proj_start, inp.proj_end, num_warps)
        else:
            seg = streaming_topk_pytorch(*inp[:5], k, inp.proj_start, inp.proj_end)
    return seg.labels, seg.starts, seg.scores


@register_fake("semicrf_kernels::streaming_topk")
def _streaming_topk_fake(
    cum_scores, transition, duration_bias, lengths, K, k, proj_start, proj_end, use_triton,
    num_warps,
):  # fmt: skip
    B, T1, _ = cum_scores.shape
    new = cum_scores.new_empty
    return (
        new((k, B, T1 - 1), dtype=torch.int64),
        new((k, B, T1 - 1), dtype=torch.bool),
        new((k, B), dtype=compute_dtype(cum_scores)),
    )
