"""``SemiCRFStreamingTriton``: the streaming log partition as a differentiable op (Triton)."""

from __future__ import annotations

import torch

from .._inputs import prepare_inputs
from .triton_backward import launch_scans, launch_streaming_triton_backward
from .triton_forward import StreamingForwardState

__all__ = ["SemiCRFStreamingTriton"]


class SemiCRFStreamingTriton(torch.autograd.Function):
    """Streaming log partition with Triton forward and backward kernels.

    ``SemiCRFStreamingTriton.apply(cum_scores, transition, duration_bias, lengths, K,
    proj_start, proj_end, num_warps) -> (batch,)`` log Z in the compute dtype (float32, float64
    for float64 ``cum_scores``). Differentiable with respect to ``cum_scores (batch, T+1, C)``,
    ``transition ((C, C) or (K, C, C))``, ``duration_bias (K, C)`` and the optional
    ``proj_start`` / ``proj_end (batch, T, C)``; gradients come back in each input's dtype.
    The forward keeps O(batch T C) rows for the backward; gradients are bitwise deterministic;
    a sequence with ``log Z = -inf`` gets zero gradients and padding gets exact zeros. Inputs
    are converted with ``prepare_inputs`` but not validated (the dispatcher validates).
    """

    @staticmethod
    def forward(
        ctx,
        cum_scores: torch.Tensor,
        transition: torch.Tensor,
        duration_bias: torch.Tensor,
        lengths: torch.Tensor,
        K: int,
        proj_start: torch.Tensor | None = None,
        proj_end: torch.Tensor | None = None,
        num_warps: int | None = 4,
    ) -> torch.Tensor:
        originals = (cum_scores, transition, duration_bias, proj_start, proj_end)
        ctx.dtypes = tuple(None if x is None else x.dtype for x in originals)
        inp = prepare_inputs(
            cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end
        )
        # Gradients ahead: with (C, C) transitions the backward scan runs alongside the forward.
        wanted = any(ctx.needs_input_grad[i] for i in (0, 1, 2, 5, 6))
        state, rows = launch_scans(inp, "log", num_warps, with_backward=wanted)
        ctx.K = inp.K
        ctx.num_warps = num_warps
        ctx.save_for_backward(
            inp.cum_scores, inp.transition, inp.duration_bias, inp.lengths, inp.proj_start,
            inp.proj_end, state.partition, state.log_z, state.alpha, state.window, state.shift,
            *(rows if rows is not None else ()),
        )  # fmt: skip
        return state.partition

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        cum, trans, bias, lengths, ps, pe, partition, log_z, alpha, window, shift, *rows = (
            ctx.saved_tensors
        )
        state = StreamingForwardState(partition, log_z, alpha, window, shift)
        gcum, gtrans, gbias, gps, gpe = launch_streaming_triton_backward(
            cum, trans, bias, lengths, ctx.K, state, grad_output, ps, pe, num_warps=ctx.num_warps,
            backward_rows=rows or None,
        )  # fmt: skip
        grads = [gcum, gtrans, gbias, None, None, gps, gpe, None]
        for i, j in ((0, 0), (1, 1), (2, 2), (5, 3), (6, 4)):
            if grads[i] is not None:
                grads[i] = grads[i].to(ctx.dtypes[j]) if ctx.needs_input_grad[i] else None
        return tuple(grads)
