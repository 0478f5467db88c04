"""One ``(start, duration)`` block of edge potentials, computed on the fly from ``cum_scores``."""

from __future__ import annotations

import numbers

import torch

from ._shared.inputs import compute_dtype, mask_forbidden
from .validation import check_log_weights, validate_streaming_inputs, value_checks_enabled

__all__ = ["compute_edge_block_streaming"]


def compute_edge_block_streaming(
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    start: int,
    k: int,
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
) -> torch.Tensor:
    """Edge potentials of the segments ``[start, start + k)``: ``seg + transition``.

    ``edge[b, c_dst, c_src] = seg(start, k, c_dst) + transition_k[c_src, c_dst]`` with
    ``seg(s, d, c) = cum[s+d, c] - cum[s, c] + duration_bias[d-1, c] (+ proj_start[s, c]
    + proj_end[s+d-1, c])`` and ``transition_k`` the ``(C, C)`` matrix or ``transition[k-1]``.
    The block describes a segment preceded by a segment with label ``c_src``, so it does **not**
    include the first segment's start score: for ``start == 0`` the caller adds
    ``logsumexp_{c'} transition_k[c', c_dst]`` instead of the transition. Differentiable;
    forbidden entries (``<= NEG_INF / 2``) become ``-inf``.

    Args:
        cum_scores: ``(batch, T+1, C)`` cumulative scores.
        transition: ``(C, C)`` or ``(K, C, C)``, ``transition[c_prev, c]``.
        duration_bias: ``(K, C)``; ``K`` is read from its first dim.
        start: first position of the segment, ``0 <= start <= T - k``.
        k: duration of the segment, ``1 <= k <= K``.
        proj_start: optional ``(batch, T, C)``.
        proj_end: optional ``(batch, T, C)``.

    Returns:
        ``(batch, C_dst, C_src)`` float32 (float64 for float64 ``cum_scores``).

    Raises:
        TypeError, ValueError: wrong types, shapes, devices, ``start`` or ``k``; in eager mode
            also NaN/Inf in the ``cum_scores`` rows ``start..start+k`` the segment spans or in
            the projections it reads, and NaN/``+inf`` in ``transition`` / ``duration_bias``
            (``-inf`` forbids). The value checks are skipped under ``torch.compile``.
    """
    for name, x, dims, meaning in (
        ("cum_scores", cum_scores, 3, "(batch, T+1, C)"),
        ("duration_bias", duration_bias, 2, "(K, C)"),
    ):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
        if x.dim() != dims:
            raise ValueError(f"{name}: expected shape {meaning}, got {tuple(x.shape)}")
    K = duration_bias.shape[0]
    # The block reads no lengths; a dummy keeps the shared shape/dtype/device checks.
    dummy_lengths = torch.ones(cum_scores.shape[0], dtype=torch.int64, device=cum_scores.device)
    validate_streaming_inputs(
        cum_scores, transition, duration_bias, dummy_lengths, K, proj_start, proj_end,
        validate=False,
    )  # fmt: skip
    T = cum_scores.shape[1] - 1
    for name, value in (("start", start), ("k", k)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name}: expected an int, got {type(value).__name__} {value!r}")
    if not 1 <= k <= K:
        raise ValueError(f"k: expected a duration in [1, K] = [1, {K}], got {k}")
    if not 0 <= start <= T - k:
        raise ValueError(f"start: expected a position in [0, T - k] = [0, {T - k}], got {start}")
    if value_checks_enabled(cum_scores):
        _check_block_values(cum_scores, transition, duration_bias, start, k, proj_start, proj_end)
    dtype = compute_dtype(cum_scores)
    cum = cum_scores.to(dtype)
    seg = cum[:, start + k] - cum[:, start] + mask_forbidden(duration_bias.to(dtype))[k - 1]
    if proj_start is not None:
        seg = seg + proj_start[:, start].to(dtype)
    if proj_end is not None:
        seg = seg + proj_end[:, start + k - 1].to(dtype)
    trans = mask_forbidden(transition.to(dtype))
    trans_k = trans[k - 1] if trans.dim() == 3 else trans
    return seg[:, :, None] + trans_k.transpose(0, 1)[None]


def _check_block_values(
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    start: int,
    k: int,
    proj_start: torch.Tensor | None,
    proj_end: torch.Tensor | None,
) -> None:
    """Value checks of what one block depends on (the rows of its segment, not all of T)."""
    rows = cum_scores[:, start : start + k + 1]
    finite = torch.isfinite(rows).all(dim=-1)
    if not bool(finite.all()):
        b, t = (~finite).nonzero()[0].tolist()
        raise ValueError(
            f"cum_scores: expected finite values in the rows [start, start + k] = "
            f"[{start}, {start + k}] of the segment, got NaN/Inf at batch {b}, row {start + t}"
        )
    for name, proj, position in (
        ("proj_start", proj_start, start),
        ("proj_end", proj_end, start + k - 1),
    ):
        if proj is None:
            continue
        finite = torch.isfinite(proj[:, position]).all(dim=-1)
        if not bool(finite.all()):
            b = int((~finite).nonzero()[0, 0])
            raise ValueError(
                f"{name}: expected finite values at the segment's position {position}, got "
                f"NaN/Inf at batch {b}"
            )
    check_log_weights(transition, "transition")
    check_log_weights(duration_bias, "duration_bias")
