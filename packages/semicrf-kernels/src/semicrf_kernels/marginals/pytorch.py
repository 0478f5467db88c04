"""Posterior marginals and entropy of the streaming model by the PyTorch scans (the CPU path).

One forward and one backward scan of :mod:`semicrf_kernels.logpartition.pytorch`, then the
boundary, position and segment marginals and the exact entropy, all in float64; no ``T K C``
tensor is built.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .._shared.inputs import KernelInputs, prepare_inputs
from .._shared.logspace import safe_logsumexp
from ..logpartition.pytorch import (
    _backward_scan,
    _BackwardResult,
    _forward_scan,
    _ForwardState,
    _working_inputs,
)
from ..validation import validate_streaming_inputs

__all__ = ["StreamingMarginals", "streaming_marginals_pytorch"]


class StreamingMarginals(NamedTuple):
    """Posterior marginals of the streaming model, from one forward and one backward scan.

    Attributes:
        log_partition: ``(batch,)`` log Z.
        boundary: ``(batch, T)`` P(a segment starts at ``t``); 1 at ``t = 0``, 0 at padding.
        position: ``(batch, T, C)`` P(position ``t`` has label ``c``); rows sum to 1 at valid
            positions, 0 at padding.
        segment_start: ``(batch, T, C)`` P(a segment with label ``c`` starts at ``t``).
        segment_end: ``(batch, T, C)`` P(a segment with label ``c`` ends at ``t``, inclusive).
        entropy: ``(batch,)`` Shannon entropy (nats) of the segmentation distribution, exact:
            ``log Z - E[score]`` with the start score as its own input.

    All float32 (float64 for float64 inputs); a sequence with ``log Z = -inf`` has zero
    marginals and entropy.
    """

    log_partition: torch.Tensor
    boundary: torch.Tensor
    position: torch.Tensor
    segment_start: torch.Tensor
    segment_end: torch.Tensor
    entropy: torch.Tensor


def streaming_marginals_pytorch(
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    lengths: torch.Tensor,
    K: int,
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
    *,
    validate: bool = True,
) -> StreamingMarginals:
    """Boundary and position marginals and the entropy, without any ``T K C`` tensor.

    Position marginals come from the segment start/end probabilities by a float64 cumulative
    sum: ``P(t covered by label c) = sum_{s <= t} P_start[s, c] - sum_{e < t} P_end[e, c]``.
    Not differentiable (computed under ``no_grad``).

    Args:
        cum_scores: ``(batch, T+1, C)`` cumulative scores.
        transition: ``(C, C)`` or ``(K, C, C)``.
        duration_bias: ``(K, C)``.
        lengths: ``(batch,)`` integer lengths in ``[1, T]``.
        K: longest segment.
        proj_start: optional ``(batch, T, C)``.
        proj_end: optional ``(batch, T, C)``.
        validate: run the value checks of :func:`validate_streaming_inputs`.

    Returns:
        :class:`StreamingMarginals`.
    """
    validate_streaming_inputs(
        cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end, validate=validate
    )
    with torch.no_grad():
        prepared = prepare_inputs(
            cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end
        )
        inp = _working_inputs(prepared)
        state = _forward_scan(inp, "log")
        res = _backward_scan(inp, state)
        return _marginals(inp, state, res, prepared.cum_scores.dtype)


def _marginals(
    inp: KernelInputs, state: _ForwardState, res: _BackwardResult, dtype: torch.dtype
) -> StreamingMarginals:
    cum, trans, bias, _, _, ps, pe = inp
    T = cum.shape[1] - 1
    f64 = torch.float64
    alive = res.alive
    zero = torch.zeros((), dtype=f64, device=cum.device)
    p_start = torch.where(alive[:, None, None], res.p_start[:, :T].to(f64), zero)
    p_end = torch.where(alive[:, None, None], res.p_end[:, 1:].to(f64), zero)
    position = (p_start.cumsum(dim=1) - p_end.cumsum(dim=1) + p_end).clamp(min=0.0)

    def expect(theta: torch.Tensor, marg: torch.Tensor) -> torch.Tensor:
        # sum(theta * marginal) per sequence, with forbidden (-inf) choices contributing 0.
        product = torch.where(marg > 0, theta.to(f64) * marg, zero)
        return product.reshape(product.shape[0], -1).sum(dim=1)

    emissions = cum[:, 1:] - cum[:, :-1]
    score = expect(emissions, position) + expect(bias[None], res.bias_marg)
    score = score + expect(trans[None], res.trans_marg)
    start = safe_logsumexp(trans, dim=-2)  # (C,) or (K, C): the start score, its own input
    if trans.dim() == 3:
        score = score + expect(start[None], res.first_mu)
    else:
        score = score + expect(start[None], p_start[:, 0])
    if ps is not None:
        score = score + expect(ps, p_start)
    if pe is not None:
        score = score + expect(pe, p_end)
    entropy = torch.where(alive, state.log_z - score, zero)
    return StreamingMarginals(
        log_partition=state.log_z.to(dtype),
        boundary=p_start.sum(dim=-1).to(dtype),
        position=position.to(dtype),
        segment_start=p_start.to(dtype),
        segment_end=p_end.to(dtype),
        entropy=entropy.to(dtype),
    )
