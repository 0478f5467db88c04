"""From encoder outputs to the streaming model's inputs: projection, centering, cumulative
scores and boundary scores.

Every head method (partition, gold score, decoding, marginals, entropy) goes through
:func:`prepare_inputs`, so all of them see the same model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from semicrf_kernels import cumulative_scores as kernel_cumulative_scores

__all__ = [
    "ModelInputs",
    "center_scores",
    "compute_dtype",
    "cumulative_scores",
    "position_mask",
    "prepare_inputs",
    "sequence_boundary_scores",
]


def compute_dtype(hidden_states: torch.Tensor, parameter: torch.Tensor) -> torch.dtype:
    """float64 when the encoder output or the head's parameters are float64, else float32.

    bf16/fp16 encoder outputs therefore run in float32 (half precision is never accumulated).
    """
    if hidden_states.dtype == torch.float64 or parameter.dtype == torch.float64:
        return torch.float64
    return torch.float32


def position_mask(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """``(batch, T)`` bool, True at valid positions ``t < lengths[b]``."""
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]


def center_scores(scores: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Subtract each sequence's per-label mean over its valid positions; zero the padding.

    ``out[b, t, c] = scores[b, t, c] - mean_{t' < L_b} scores[b, t', c]`` for ``t < L_b``, 0 at
    padding. This is a model choice, not a no-op: a segmentation's score changes by minus the
    sum of its labels' means over its positions, so the distribution changes unless all labels
    have the same mean. It keeps cumulative sums near ``sqrt(T)`` in magnitude instead of
    ``T``. Gradients flow through the mean. Computed in float64.

    Args:
        scores: ``(batch, T, C)`` float per-position scores.
        lengths: ``(batch,)`` integer valid lengths (``>= 1``).

    Returns:
        ``(batch, T, C)`` float64 centered scores.
    """
    mask = position_mask(lengths, scores.shape[1])[..., None]
    x = torch.where(
        mask, scores.to(torch.float64), torch.zeros((), dtype=torch.float64, device=scores.device)
    )
    mean = x.sum(dim=1, keepdim=True) / lengths.to(torch.float64)[:, None, None]
    return torch.where(mask, x - mean, torch.zeros_like(x))


def cumulative_scores(scores: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Prefix sums ``cum[:, 0] = 0``, ``cum[:, t] = sum_{t' < t} scores[:, t']``.

    Computed by the ``semicrf_kernels::cumulative_scores`` custom operator, so that
    ``torch.compile`` sees one opaque node (Inductor's CUDA code generation of a float64 cumsum
    over positions fails on torch 2.11); eagerly it is the same float64 ``torch.cumsum``.

    Args:
        scores: ``(batch, T, C)`` float per-position scores (padding should be 0).
        dtype: dtype of the result (the sum itself is accumulated in float64).

    Returns:
        ``(batch, T+1, C)`` cumulative scores.
    """
    return kernel_cumulative_scores(scores).to(dtype)


def sequence_boundary_scores(
    pi_start: torch.Tensor, pi_end: torch.Tensor, lengths: torch.Tensor, T: int, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Place sequence-boundary scores as per-position boundary scores.

    ``pi_start[c]`` goes to position 0 (read by the first segment) and ``pi_end[c]`` to position
    ``L_b - 1`` (read by the last segment), so every segmentation gains
    ``pi_start[c_first] + pi_end[c_last]``.

    Returns:
        ``(start, end)``, each ``(batch, T, C)`` in ``dtype``.
    """
    t = torch.arange(T, device=lengths.device)[None, :].expand(lengths.shape[0], T)
    first = (t == 0).to(dtype)[..., None]
    last = (t == lengths[:, None] - 1).to(dtype)[..., None]
    return first * pi_start.to(dtype), last * pi_end.to(dtype)


@dataclass
class ModelInputs:
    """Everything the streaming model reads for one batch.

    Attributes:
        scores: ``(batch, T, C)`` per-position scores the model uses (after centering when on;
            0 at padding), in the compute dtype.
        cum_scores: ``(batch, T+1, C)`` their prefix sums (accumulated in float64).
        transition: ``(C, C)`` or ``(K, C, C)``, masked (``-inf`` = forbidden).
        duration_bias: ``(K, C)``.
        proj_start, proj_end: ``(batch, T, C)`` boundary scores (boundary projections and/or
            sequence-boundary scores), or None when the head has neither.
    """

    scores: torch.Tensor
    cum_scores: torch.Tensor
    transition: torch.Tensor
    duration_bias: torch.Tensor
    proj_start: torch.Tensor | None
    proj_end: torch.Tensor | None


def _linear(layer: nn.Linear, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    if torch.is_autocast_enabled():
        return layer(x)  # autocast chooses the matmul dtype
    bias = None if layer.bias is None else layer.bias.to(dtype)
    return F.linear(x.to(dtype), layer.weight.to(dtype), bias)


def prepare_inputs(
    hidden_states: torch.Tensor,
    lengths: torch.Tensor,
    *,
    projection: nn.Linear | None,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    center: bool,
    proj_start_layer: nn.Linear | None = None,
    proj_end_layer: nn.Linear | None = None,
    pi_start: torch.Tensor | None = None,
    pi_end: torch.Tensor | None = None,
) -> ModelInputs:
    """Project, center and accumulate encoder outputs; collect boundary scores.

    Args:
        hidden_states: ``(batch, T, hidden_dim)`` (or ``(batch, T, C)`` without projection), any
            floating dtype.
        lengths: ``(batch,)`` integer valid lengths.
        projection: emission layer ``hidden_dim -> C`` or None.
        transition: ``(C, C)``/``(K, C, C)`` masked transitions.
        duration_bias: ``(K, C)``.
        center: whether to zero-center the emissions (:func:`center_scores`).
        proj_start_layer, proj_end_layer: boundary projections ``hidden_dim -> C`` or None.
        pi_start, pi_end: ``(C,)`` sequence-boundary scores or None.

    Returns:
        :class:`ModelInputs` in the compute dtype (:func:`compute_dtype`). Nothing depends on
        ``hidden_states`` at padding positions (``t >= lengths[b]``): they are set to 0 before
        the projections, so their values (even NaN) change neither results nor gradients.
    """
    dtype = compute_dtype(hidden_states, transition)
    T = hidden_states.shape[1]
    # Padding is zeroed before any projection: whatever the encoder left there (NaN from a
    # fully masked attention row, say) would otherwise reach the weight gradient as 0 * NaN.
    valid = position_mask(lengths, T)[..., None]
    hidden_states = torch.where(
        valid, hidden_states, torch.zeros((), dtype=hidden_states.dtype, device=valid.device)
    )
    raw = hidden_states if projection is None else _linear(projection, hidden_states, dtype)
    if center:
        scores = center_scores(raw, lengths).to(dtype)
    else:
        mask = position_mask(lengths, T)[..., None]
        scores = torch.where(mask, raw.to(dtype), torch.zeros((), dtype=dtype, device=raw.device))
    cum = cumulative_scores(scores, dtype)

    proj_start = proj_end = None
    if proj_start_layer is not None and proj_end_layer is not None:
        mask = position_mask(lengths, T)[..., None]
        zero = torch.zeros((), dtype=dtype, device=hidden_states.device)
        proj_start = torch.where(
            mask, _linear(proj_start_layer, hidden_states, dtype).to(dtype), zero
        )
        proj_end = torch.where(mask, _linear(proj_end_layer, hidden_states, dtype).to(dtype), zero)
    if pi_start is not None and pi_end is not None:
        start, end = sequence_boundary_scores(pi_start, pi_end, lengths, T, dtype)
        proj_start = start if proj_start is None else proj_start + start
        proj_end = end if proj_end is None else proj_end + end
    return ModelInputs(
        scores=scores,
        cum_scores=cum,
        transition=transition.to(dtype),
        duration_bias=duration_bias.to(dtype),
        proj_start=proj_start,
        proj_end=proj_end,
    )
