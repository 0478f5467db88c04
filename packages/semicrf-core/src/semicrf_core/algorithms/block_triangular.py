"""The block-triangular tree: blocks of K-1 positions joined at junctions stored block-triangular.

The positions are cut into blocks of `W = K-1`. A segment has at most `K-1` positions, so it
either lies inside one block or crosses exactly one junction (block boundary). A state at a
junction is `(k, c)`, `k` in `[0, K-2]`, index `k * C + c`:

* the block matrix `B_j[(k_out, c_out), (k_in, c_in)]` is the semiring total of the segmentations
  of block `j` without its first `k_in` and last `k_out` positions (those belong to segments
  crossing its junctions), the first one following label `c_in` and the last one labelled
  `c_out` (the identity in labels when nothing is left, zero when `k_in + k_out > W`);
* the junction matrix `J_g[(k1, c), (k2, c')] = edge[g - k2, k1 + k2, c, c']` is the segment of
  duration `k1 + k2` crossing junction `g` with `k2` positions before it and `k1` after
  (`k1, k2 >= 1`), and the identity at `(0, 0)` (a segment boundary exactly at `g`).

Both are block-triangular with `span = K` (`k_in + k_out <= K-1`, `k1 + k2 <= K-1`), stored as
`BlockTriangularMatrix`, and the whole partition function is
`B_{m-1} J B_{m-2} ... J B_0` read at `((0, c), (0, c0))`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from semicrf_semirings import Semiring

from ..block_triangular import BlockTriangularMatrix, block_triang_matmul, triangular_blocks
from ._common import chain_product, extend_to_positions, where_const
from .binary_tree import read_out


def _block_matrices(semiring: type[Semiring], edge: Tensor, m: int) -> Tensor:
    """`B_j` for every block, by a scan of `W` steps batched over blocks, `k_in` and `c_in`.

    Args:
        edge: converted `(ssize, batch, m*W, K, C, C)` covering whole blocks.

    Returns:
        Converted `(ssize, batch, m, W*C, W*C)`, state index `k * C + c`.
    """
    S, B, _, K, C, _ = edge.shape
    W = K - 1
    device, dtype = edge.device, edge.dtype
    # beta[t][..., j, k_in, c, c_in]: segmentations of block j from local fence k_in (after
    # label c_in) up to local fence t, ending with label c.
    eye = torch.eye(C, dtype=torch.bool, device=device)
    k_in = torch.arange(W, device=device).view(W, 1, 1)
    zero = semiring.zeros((B, m, W, C, C), dtype=dtype, device=device)
    unit = where_const(semiring, eye, semiring.one, zero)  # identity in labels, every k_in
    blocks = edge.view(S, B, m, W, K, C, C)
    betas: list[Tensor] = []
    for t in range(W + 1):
        if t == 0:
            rec = zero
        else:
            # (+)_{d, c'} edge[t-d, d][c, c'] (x) beta[t-d][c', c_in], as one matmul over (d, c').
            dur = torch.arange(1, t + 1, device=device)
            e = blocks[:, :, :, t - dur, dur]  # (S, B, m, t, C, C'): d-major
            e = e.permute(0, 1, 2, 4, 3, 5).reshape(S, B, m, 1, C, t * C)
            prev = torch.stack([betas[t - d] for d in range(1, t + 1)], dim=4)  # (S,B,m,W,t,C',C)
            rec = semiring.matmul(e, prev.reshape(S, B, m, W, t * C, C))
        cur = torch.where((k_in == t).view(1, 1, 1, W, 1, 1), unit, rec)
        cur = where_const(semiring, (k_in > t).view(1, 1, W, 1, 1), semiring.zero, cur)
        betas.append(cur)
    # B_j[(k_out, c_out), (k_in, c_in)] = beta[W - k_out][k_in, c_out, c_in]
    out = torch.stack([betas[W - k] for k in range(W)], dim=3)  # (S,B,m,k_out,k_in,C,C_in)
    return out.permute(0, 1, 2, 3, 5, 4, 6).reshape(S, B, m, W * C, W * C)


def _junctions(semiring: type[Semiring], edge: Tensor, m: int) -> BlockTriangularMatrix:
    """`J_g` for the junctions `g = W, 2W, ..., (m-1)W`, block-triangular with `span = K`.

    Returns:
        `BlockTriangularMatrix` with converted values `(ssize, batch, m-1, num_blocks, C, C)`.
    """
    K, C = edge.shape[3], edge.shape[4]
    W = K - 1
    device = edge.device
    bi = triangular_blocks(W, K, device=device)  # (k1, k2) with k1 + k2 <= K-1
    k1, k2 = bi[:, 0], bi[:, 1]
    g = torch.arange(1, m, device=device).view(-1, 1) * W  # (m-1, 1)
    start = (g - k2).clamp(min=0)
    dur = (k1 + k2).clamp(max=K - 1).expand_as(start)
    vals = edge[:, :, start, dur]  # (S, B, m-1, nb, C, C)
    crossing = (k1 >= 1) & (k2 >= 1)
    vals = where_const(semiring, ~crossing.view(1, 1, -1, 1, 1), semiring.zero, vals)
    both0 = ((k1 == 0) & (k2 == 0)).view(1, 1, -1, 1, 1)
    eye = torch.eye(C, dtype=torch.bool, device=device)
    vals = where_const(semiring, both0 & eye, semiring.one, vals)
    return BlockTriangularMatrix(vals, bi, W, C)


def block_triangular_tree(semiring: type[Semiring], edge: Tensor, lengths: Tensor) -> Tensor:
    """Partition function from `K-1`-position blocks and block-triangular junctions.

    Sequences shorter than the padded length are continued by `extend_to_positions` (a unique
    continuation of score one), so every sequence runs over whole blocks without changing its
    value. Each `J_g` is multiplied into the block after it with `block_triang_matmul` (only the
    `K (K-1) / 2`-ish stored blocks take part); the resulting chain is multiplied by a binary tree.

    Args:
        semiring: the semiring class.
        edge: converted `(ssize, batch, N-1, K, C, C)`, index `d` = duration (0 unused).
        lengths: `(batch,)` int64 fences in `[2, N]`.

    Returns:
        Converted `(ssize, batch)`.

    Cost: `O(N K^2 C^3)` time (a factor `K` below `binary_tree`), `O(log(N/K))` rounds for the
    chain; memory dominated by the first chain round, `(ssize, batch, N/(2K), n, n, n)` with
    `n = (K-1) C` elements.
    """
    T, K, C = edge.shape[2], edge.shape[3], edge.shape[4]
    W = K - 1
    m = -(-T // W)
    edge = extend_to_positions(semiring, edge, lengths, m * W)
    blocks = _block_matrices(semiring, edge, m)  # (S, B, m, n, n)
    if m == 1:
        return read_out(semiring, blocks[:, :, 0], C)
    junctions = _junctions(semiring, edge, m)
    after = BlockTriangularMatrix.from_dense(blocks[:, :, 1:], W, C, span=K)
    # Every (k_out, k2) pair is reachable through a junction, so the product is kept whole.
    joined = block_triang_matmul(after, junctions, semiring, span=2 * W - 1)
    chain = torch.cat([blocks[:, :, :1], joined.to_dense(semiring)], dim=2)
    return read_out(semiring, chain_product(semiring, chain), C)
