"""``cumulative_scores``: the float64 prefix sums the kernels read, as custom operators.

``torch.ops.semicrf_kernels.cumulative_scores`` and ``cumulative_scores_backward`` (its
gradient, tied to it by ``register_autograd``). Only torch 2.4 APIs; real annotations (torch
infers the schema from them).
"""

import torch
from torch import Tensor

from .._shared.op_support import F64, define_op, register_autograd, register_fake

__all__ = ["cumulative_scores", "cumulative_scores_backward_op", "cumulative_scores_op"]


# ---------------------------------------------------------------------------- cumulative scores
# The prefix sum over positions is an operator too: Inductor's CUDA code generation of a float64
# cumsum along a long axis (a split scan) fails on torch 2.11, and an opaque node keeps it out of
# Inductor's hands in the forward and, through the backward operator, in the backward as well.
@define_op("semicrf_kernels::cumulative_scores")
def cumulative_scores_op(scores: Tensor) -> Tensor:
    """Prefix sums over positions, accumulated in float64, with a leading zero row.

    Args:
        scores: ``(batch, T, C)`` floating per-position scores (not validated here).

    Returns:
        ``(batch, T+1, C)`` float64: ``cum[:, 0] = 0``, ``cum[:, t] = sum_{t' < t} scores[:, t']``.
    """
    csum = torch.cumsum(scores.to(F64), dim=1)
    return torch.nn.functional.pad(csum, (0, 0, 1, 0))


@register_fake("semicrf_kernels::cumulative_scores")
def _cumulative_scores_fake(scores):
    B, T, C = scores.shape
    return scores.new_empty((B, T + 1, C), dtype=F64)


@define_op("semicrf_kernels::cumulative_scores_backward")
def cumulative_scores_backward_op(grad_cum: Tensor, dtype: torch.dtype) -> Tensor:
    """Gradient of :func:`cumulative_scores_op` with respect to its scores.

    ``grad_scores[:, t] = sum_{t' > t} grad_cum[:, t']``: the reversed cumulative sum of rows
    ``1..T`` (row 0 is a constant), accumulated in float64.

    Args:
        grad_cum: ``(batch, T+1, C)`` floating gradient of the cumulative scores.
        dtype: dtype of the scores, and of the result.

    Returns:
        ``(batch, T, C)`` in ``dtype``.
    """
    g = grad_cum[:, 1:].to(F64)
    out = torch.flip(torch.cumsum(torch.flip(g, (1,)), dim=1), (1,)).to(dtype)
    return out.clone() if out.data_ptr() == grad_cum.data_ptr() else out


@register_fake("semicrf_kernels::cumulative_scores_backward")
def _cumulative_scores_backward_fake(grad_cum, dtype):
    B, T1, C = grad_cum.shape
    return grad_cum.new_empty((B, T1 - 1, C), dtype=dtype)


def _setup_cumulative_context(ctx, inputs, output) -> None:
    (scores,) = inputs
    ctx.dtype = scores.dtype


def _cumulative_backward(ctx, grad_cum):
    return torch.ops.semicrf_kernels.cumulative_scores_backward.default(grad_cum, ctx.dtype)


def _setup_cumulative_backward_context(ctx, inputs, output) -> None:
    grad_cum, _dtype = inputs
    ctx.dtype = grad_cum.dtype


def _cumulative_backward_backward(ctx, grad_grad):
    # The backward is linear in grad_cum, and its adjoint is the forward prefix sum again.
    cum = torch.ops.semicrf_kernels.cumulative_scores.default(grad_grad)
    return cum.to(ctx.dtype), None


register_autograd(
    "semicrf_kernels::cumulative_scores",
    _cumulative_backward,
    setup_context=_setup_cumulative_context,
)
register_autograd(
    "semicrf_kernels::cumulative_scores_backward",
    _cumulative_backward_backward,
    setup_context=_setup_cumulative_backward_context,
)


def cumulative_scores(scores: Tensor) -> Tensor:
    """Cumulative scores for the streaming kernels, as one ``torch.compile``-opaque operator.

    ``cum[:, 0] = 0`` and ``cum[:, t] = sum_{t' < t} scores[:, t']``, accumulated in float64
    whatever the input dtype (the kernels read differences of it at distances up to ``K``, and
    a float32 prefix sum over ``T`` positions would lose them). Differentiable: the gradient is
    the reversed cumulative sum of rows ``1..T`` of the upstream gradient, in ``scores``' dtype.
    Eager results are those of ``torch.cumsum(scores.double(), 1)`` with a zero row prepended.

    Args:
        scores: ``(batch, T, C)`` floating per-position scores (padding should be 0).

    Returns:
        ``(batch, T+1, C)`` float64 cumulative scores.

    Raises:
        TypeError: ``scores`` is not a tensor.
        ValueError: ``scores`` is not 3-D or not floating point.
    """
    if not isinstance(scores, Tensor):
        raise TypeError(f"scores: expected a torch.Tensor, got {type(scores).__name__}")
    if scores.dim() != 3:
        raise ValueError(
            f"scores: expected shape (batch, T, C), got {tuple(scores.shape)} ({scores.dim()}-D)"
        )
    if not scores.is_floating_point():
        raise ValueError(f"scores: expected a floating dtype, got {scores.dtype}")
    return torch.ops.semicrf_kernels.cumulative_scores.default(scores)
