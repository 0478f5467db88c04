"""The O(N) linear scan over fences with an O(KC) ring buffer of past forward values."""

from __future__ import annotations

import torch
from torch import Tensor

from semicrf_semirings import Semiring


def linear_scan(semiring: type[Semiring], edge: Tensor, lengths: Tensor) -> Tensor:
    """Forward recursion over fences, keeping only the last `K-1` forward vectors.

    `beta[0][c] = one` for every start label `c`, and for fence `f >= 1`
    `beta[f][c] = (+)_{d=1..min(K-1, f)} (+)_{c'} beta[f-d][c'] (x) edge[f-d, d, c, c']`.
    The result of sequence `b` is `(+)_c beta[lengths[b]-1][c]`, captured when the scan passes
    that fence, so sequences of any lengths share one pass over `N-1` steps.

    Args:
        semiring: the semiring class.
        edge: converted `(ssize, batch, N-1, K, C, C)`, index `d` = duration (0 unused).
        lengths: `(batch,)` int64 fences in `[2, N]`, on `edge`'s device.

    Returns:
        Converted `(ssize, batch)`.

    Cost: `O(N K C^2)` time; working state `(ssize, batch, K-1, C)` (the ring buffer) plus one
    step's `(ssize, batch, C, K-1, C)` products; autograd keeps each step's products.
    """
    S, B, T, K, C, _ = edge.shape
    D = K - 1
    dtype, device = edge.dtype, edge.device
    durations = torch.arange(1, K, device=device)
    # (ssize, B, C_dst, N-1, K, C_src): gathering (start, duration) pairs from this view yields
    # (C_dst, pairs, C_src), so a step's products reshape into one reduced dim without a copy.
    by_dst = edge.permute(0, 1, 4, 2, 3, 5)
    # ring[:, :, j] is beta at fence f-1-j; fences before 0 hold zero (no such structure).
    ring = torch.cat(
        [
            semiring.ones((B, 1, C), dtype=dtype, device=device),
            semiring.zeros((B, D - 1, C), dtype=dtype, device=device),
        ],
        dim=2,
    )
    final = semiring.zeros((B, C), dtype=dtype, device=device)
    last = (lengths - 1).view(1, B, 1)
    for f in range(1, T + 1):
        nd = min(D, f)  # durations reaching back past fence 0 do not exist
        dur = durations[:nd]
        e = by_dst[:, :, :, f - dur, dur]  # (S, B, C_dst, nd, C_src)
        prod = semiring.mul(ring[:, :, None, :nd], e)
        new = semiring.sum(prod.reshape(S, B, C, nd * C), dim=-1)  # (S, B, C)
        ring = torch.cat([new.unsqueeze(2), ring[:, :, : D - 1]], dim=2)
        final = torch.where(last == f, new, final)
    return semiring.sum(final, dim=-1)
