"""Small semiring helpers shared by the dynamic programs (constants, masks, matrix chains)."""

from __future__ import annotations

import torch
from torch import Tensor

from semicrf_semirings import Semiring


def const(semiring: type[Semiring], which: Tensor, like: Tensor) -> Tensor:
    """`which (ssize,)` (the semiring's `zero` or `one`) as `like`'s dtype/device, shaped
    `(ssize, 1, ..., 1)` to broadcast against the converted tensor `like`."""
    return which.to(dtype=like.dtype, device=like.device).view(-1, *([1] * (like.dim() - 1)))


def where_const(semiring: type[Semiring], mask: Tensor, which: Tensor, x: Tensor) -> Tensor:
    """Out of place: `x (ssize, *shape)` with the constant `which` wherever `mask` is True.

    `mask` is bool and broadcasts against `shape` (it has no channel dim).
    """
    return torch.where(mask.unsqueeze(0), const(semiring, which, x), x)


def identity(semiring: type[Semiring], n: int, like: Tensor) -> Tensor:
    """The semiring identity matrix `(ssize, n, n)`: one on the diagonal, zero elsewhere."""
    eye = torch.eye(n, dtype=torch.bool, device=like.device)
    base = like.new_empty((semiring.size(), n, n))
    zero = const(semiring, semiring.zero, base).expand_as(base)
    return where_const(semiring, eye, semiring.one, zero)


def chain_product(
    semiring: type[Semiring], mats: Tensor, matmul_semiring: type[Semiring] | None = None
) -> Tensor:
    """Product of a chain of matrices in time order, by a balanced binary tree.

    Args:
        semiring: the semiring class.
        mats: converted `(ssize, batch, L, n, n)`, `mats[:, :, t]` the step-`t` matrix (dst, src).
        matmul_semiring: the class whose `matmul` is used (e.g. a checkpointed wrapper of
            `semiring`); defaults to `semiring`.

    Returns:
        Converted `(ssize, batch, n, n)`: `mats[L-1] @ ... @ mats[0]`, in `ceil(log2 L)` rounds.
    """
    mm = matmul_semiring or semiring
    n = mats.shape[-1]
    while mats.shape[2] > 1:
        if mats.shape[2] % 2:
            # An identity appended after the last step keeps the pairs aligned.
            eye = identity(semiring, n, mats)
            eye = eye.view(eye.shape[0], 1, 1, n, n).expand(-1, mats.shape[1], 1, n, n)
            mats = torch.cat([mats, eye], dim=2)
        mats = mm.matmul(mats[:, :, 1::2], mats[:, :, 0::2])
    return mats[:, :, 0]


def extend_to_positions(
    semiring: type[Semiring], edge: Tensor, lengths: Tensor, positions: int
) -> Tensor:
    """Rewrite the edges so that every sequence runs over `positions` positions, value unchanged.

    For sequence `b` with last fence `e = lengths[b] - 1`: a segment `(s, d)` with `s + d <= e`
    keeps its potential; one that would cross `e` gets the semiring zero; after `e`, only
    duration-1 segments that keep the label are allowed, with potential one. Each structure of
    the sequence then has exactly one continuation, of score one, so every semiring value (sum,
    max, k-best, entropy, ...) is the sequence's own. Edges beyond `e` get zero gradient.

    Args:
        semiring: the semiring class.
        edge: converted `(ssize, batch, N-1, K, C, C)`.
        lengths: `(batch,)` int64 in `[2, N]`, on `edge`'s device.
        positions: `>= N - 1`.

    Returns:
        Converted `(ssize, batch, positions, K, C, C)`.
    """
    _, B, T, K, C, _ = edge.shape
    if positions > T:
        pad = semiring.zeros((B, positions - T, K, C, C), dtype=edge.dtype, device=edge.device)
        edge = torch.cat([edge, pad], dim=2)
    s = torch.arange(positions, device=edge.device).view(1, -1, 1)
    d = torch.arange(K, device=edge.device).view(1, 1, -1)
    last = (lengths - 1).view(-1, 1, 1)
    inside = (d >= 1) & (s + d <= last)  # (B, P, K)
    cont = (d == 1) & (s >= last)
    eye = torch.eye(C, dtype=torch.bool, device=edge.device)
    out = where_const(semiring, ~inside[..., None, None], semiring.zero, edge)
    return where_const(semiring, cont[..., None, None] & eye, semiring.one, out)
