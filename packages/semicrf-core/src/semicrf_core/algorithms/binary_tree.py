"""The O(log N)-depth binary tree: a chain of per-step transfer matrices multiplied pairwise."""

from __future__ import annotations

import torch
from torch import Tensor

from semicrf_semirings import Semiring

from ._common import chain_product, identity, where_const


def step_matrices(semiring: type[Semiring], edge: Tensor, lengths: Tensor) -> Tensor:
    """One transfer matrix per step (fence `f` to `f+1`) over "remaining length" states.

    A state at fence `f` is `(r, c)` at index `r * C + c`, `r` in `[0, K-2]`: the latest segment
    has label `c` and ends `r` positions after fence `f` (`r = 0`: it ends at `f`; at fence 0 the
    "segment" is the start label). The step matrix `M_f` (dst, src) holds

    * `M_f[(d-1, c), (0, c')] = edge[f, d, c, c']`: a segment of duration `d` and label `c` starts
      at fence `f` after one of label `c'` ended there, and has `d-1` positions left at `f+1`;
    * `M_f[(r-1, c), (r, c)] = one` for `r >= 1`: the current segment goes on;
    * at steps `f >= lengths[b] - 1` the identity, so each sequence stops at its own last fence.

    The start state at fence 0 is `(0, c0)` for each start label `c0`, the end state at the last
    fence `(0, c)` for any `c`, and each (start label, segmentation) is exactly one path.

    Args:
        semiring: the semiring class.
        edge: converted `(ssize, batch, N-1, K, C, C)`.
        lengths: `(batch,)` int64 in `[2, N]`.

    Returns:
        Converted `(ssize, batch, N-1, (K-1)*C, (K-1)*C)`.
    """
    S, B, T, K, C, _ = edge.shape
    D = K - 1
    n = D * C
    device = edge.device
    m = semiring.zeros((B, T, D, C, D, C), dtype=edge.dtype, device=device)
    m[:, :, :, :, :, 0, :] = edge[:, :, :, 1:]  # (S, B, T, d-1, c, c') into column block r = 0
    r = torch.arange(D, device=device)
    countdown = (r.view(D, 1, 1, 1) == r.view(1, 1, D, 1) - 1) & torch.eye(
        C, dtype=torch.bool, device=device
    ).view(1, C, 1, C)
    m = where_const(semiring, countdown, semiring.one, m).reshape(S, B, T, n, n)
    done = torch.arange(T, device=device).view(1, T) >= (lengths - 1).view(B, 1)
    eye = identity(semiring, n, m).view(-1, 1, 1, n, n)
    return torch.where(done.view(1, B, T, 1, 1), eye, m)


def read_out(semiring: type[Semiring], product: Tensor, C: int) -> Tensor:
    """`(+)_{c, c0}` of the product's `((0, c), (0, c0))` block: end and start with nothing left.

    Args:
        product: converted `(ssize, batch, (K-1)*C, (K-1)*C)`.

    Returns:
        Converted `(ssize, batch)`.
    """
    block = product[:, :, :C, :C]
    return semiring.sum(semiring.sum(block, dim=-1), dim=-1)


def binary_tree(
    semiring: type[Semiring],
    edge: Tensor,
    lengths: Tensor,
    matmul_semiring: type[Semiring] | None = None,
) -> Tensor:
    """Multiply the `N-1` step matrices of `step_matrices` pairwise in `ceil(log2(N-1))` rounds.

    Args:
        semiring: the semiring class.
        edge: converted `(ssize, batch, N-1, K, C, C)`, index `d` = duration (0 unused).
        lengths: `(batch,)` int64 fences in `[2, N]`.
        matmul_semiring: class whose `matmul` multiplies the matrices, e.g.
            `CheckpointShardSemiring(semiring, max_size)` for the sharded-checkpoint tree.

    Returns:
        Converted `(ssize, batch)`.

    Cost: `O(N ((K-1) C)^3)` time, `O(log N)` sequential rounds; the first round's semiring
    matmul broadcasts `(ssize, batch, N/2, n, n, n)` with `n = (K-1) C` (checkpoint sharding
    caps that per chunk).
    """
    C = edge.shape[-1]
    product = chain_product(semiring, step_matrices(semiring, edge, lengths), matmul_semiring)
    return read_out(semiring, product, C)
