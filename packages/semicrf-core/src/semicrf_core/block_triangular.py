"""`BlockTriangularMatrix`: matrices over (duration, label) states keeping blocks `k1 + k2 < span`.

A state is a pair `(k, c)` with `k` in `[0, K)` and `c` in `[0, C)`, at index `k * C + c`, so a
dense matrix is `(K*C, K*C)` and its `(k1, k2)` block is the `C x C` tile at rows `k1*C ..` and
columns `k2*C ..`. Only the blocks with `k1 + k2 < span` are stored (conventions section 3): with
`span = K` that is `K (K + 1) / 2` of the `K^2` blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from semicrf_semirings import Semiring

__all__ = ["BlockTriangularMatrix", "block_triang_matmul", "triangular_blocks"]


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= {low}, got {type(value).__name__} {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return value


def triangular_blocks(
    K: int, span: int, duration_mask: Tensor | None = None, device: torch.device | None = None
) -> Tensor:
    """The kept blocks, row-major: every `(k1, k2)` in `[0, K)^2` with `k1 + k2 < span`.

    Args:
        K: number of duration states, `>= 1`.
        span: blocks with `k1 + k2 >= span` are dropped; `>= 1`.
        duration_mask: optional bool `(K, K)`; a block is also dropped where it is False.
        device: device of the result.

    Returns:
        `(num_blocks, 2)` int64: the `(k1, k2)` of each kept block.
    """
    K = _check_int("K", K, 1)
    span = _check_int("span", span, 1)
    k1, k2 = torch.meshgrid(torch.arange(K), torch.arange(K), indexing="ij")
    keep = (k1 + k2) < span
    if duration_mask is not None:
        if not isinstance(duration_mask, Tensor) or duration_mask.dtype != torch.bool:
            raise TypeError("duration_mask must be a bool tensor of shape (K, K)")
        if tuple(duration_mask.shape) != (K, K):
            raise ValueError(
                f"duration_mask must have shape (K, K) = ({K}, {K}), got "
                f"{tuple(duration_mask.shape)}"
            )
        keep = keep & duration_mask.cpu()
    return torch.stack([k1[keep], k2[keep]], dim=1).to(device)


@dataclass
class BlockTriangularMatrix:
    """Batched `(K*C, K*C)` matrices of which only some `C x C` blocks are stored.

    Attributes:
        values: `(*batch, num_blocks, C, C)`: block `i` is the tile `(k1, k2) =
            block_indices[i]`. Any leading dims are batch dims; for the converted tensors of a
            semiring the first one is the semiring channel dim `(ssize, ...)`.
        block_indices: `(num_blocks, 2)` int64, the `(k1, k2)` of each stored block, each in
            `[0, K)`, no repeats.
        K: number of duration states.
        C: number of labels.
    """

    values: Tensor
    block_indices: Tensor
    K: int
    C: int

    def __post_init__(self) -> None:
        if not isinstance(self.values, Tensor):
            raise TypeError(f"values must be a torch.Tensor, got {type(self.values).__name__}")
        if not isinstance(self.block_indices, Tensor):
            raise TypeError(
                f"block_indices must be a torch.Tensor, got {type(self.block_indices).__name__}"
            )
        _check_int("K", self.K, 1)
        _check_int("C", self.C, 1)
        if self.block_indices.dim() != 2 or self.block_indices.shape[1] != 2:
            raise ValueError(
                f"block_indices must be (num_blocks, 2), got {tuple(self.block_indices.shape)}"
            )
        nb = self.block_indices.shape[0]
        if self.values.dim() < 3 or tuple(self.values.shape[-3:]) != (nb, self.C, self.C):
            raise ValueError(
                f"values must be (*batch, num_blocks, C, C) = (..., {nb}, {self.C}, {self.C}), "
                f"got {tuple(self.values.shape)}"
            )
        if nb:
            outside = (self.block_indices < 0) | (self.block_indices >= self.K)
            if bool(outside.any()):
                row, col = (int(i) for i in outside.nonzero()[0])
                raise ValueError(
                    f"block_indices must lie in [0, K={self.K}), got "
                    f"{int(self.block_indices[row, col])} at block_indices[{row}, {col}]"
                )

    @property
    def num_blocks(self) -> int:
        """Number of stored blocks."""
        return self.block_indices.shape[0]

    @classmethod
    def from_dense(
        cls,
        dense: Tensor,
        K: int,
        C: int,
        span: int,
        duration_mask: Tensor | None = None,
    ) -> BlockTriangularMatrix:
        """Keep the blocks `(k1, k2)` with `k1 + k2 < span` (and `duration_mask[k1, k2]`).

        Args:
            dense: `(*batch, K*C, K*C)`, state index `k * C + c`.
            K: number of duration states, `>= 1`.
            C: number of labels, `>= 1`.
            span: `>= 1`; with `span >= 2K - 1` every block is kept.
            duration_mask: optional bool `(K, K)`, False drops a block.

        Returns:
            `BlockTriangularMatrix` with `values (*batch, num_blocks, C, C)`, blocks row-major.

        Raises:
            TypeError, ValueError: on wrong types, sizes or a `dense` that is not `(..., K*C, K*C)`.
        """
        if not isinstance(dense, Tensor):
            raise TypeError(f"dense must be a torch.Tensor, got {type(dense).__name__}")
        K = _check_int("K", K, 1)
        C = _check_int("C", C, 1)
        if dense.dim() < 2 or tuple(dense.shape[-2:]) != (K * C, K * C):
            raise ValueError(
                f"dense must be (*batch, K*C, K*C) = (..., {K * C}, {K * C}), got "
                f"{tuple(dense.shape)}"
            )
        blocks = triangular_blocks(K, span, duration_mask, dense.device)
        tiles = dense.reshape(*dense.shape[:-2], K, C, K, C).transpose(-3, -2)  # (.., K, K, C, C)
        values = tiles[..., blocks[:, 0], blocks[:, 1], :, :]
        return cls(values, blocks, K, C)

    def to_dense(self, semiring: type[Semiring] | None = None) -> Tensor:
        """Expand to `(*batch, K*C, K*C)`; absent blocks hold the semiring zero (0.0 without one).

        Args:
            semiring: optional semiring class. With one of `ssize > 1` the first batch dim of
                `values` must be the semiring channel dim, filled channel by channel.
        """
        K, C = self.K, self.C
        lead = self.values.shape[:-3]
        tiles = self.values.new_zeros((*lead, K, K, C, C))
        if semiring is not None:
            zero = semiring.zero.to(dtype=self.values.dtype, device=self.values.device)
            if zero.numel() == 1:
                tiles = torch.full_like(tiles, float(zero[0]))
            else:
                if not lead or lead[0] != zero.numel():
                    raise ValueError(
                        f"values' first dim must be the semiring channel dim of size "
                        f"{zero.numel()} for {semiring.__name__}, got values of shape "
                        f"{tuple(self.values.shape)}"
                    )
                tiles = zero.view(-1, *([1] * (tiles.dim() - 1))).expand_as(tiles).clone()
        bi = self.block_indices.to(self.values.device)
        tiles[..., bi[:, 0], bi[:, 1], :, :] = self.values
        return tiles.transpose(-3, -2).reshape(*lead, K * C, K * C)


def block_triang_matmul(
    left: BlockTriangularMatrix,
    right: BlockTriangularMatrix,
    semiring: type[Semiring],
    span: int,
) -> BlockTriangularMatrix:
    """Semiring product `left @ right` keeping the output blocks `k1 + k3 < span`.

    `out[k1, k3] = (+)_{k2} left[k1, k2] (x) right[k2, k3]` over the `k2` for which both blocks
    are stored (an absent block is the semiring zero), each term a semiring `C x C` matmul. Every
    output block with `k1 + k3 < span` is stored, also where no term exists (then it is zero).

    Args:
        left: converted values `(ssize, *batch_l, nl, C, C)`.
        right: converted values `(ssize, *batch_r, nr, C, C)`, same `K` and `C`; batch dims
            broadcast.
        semiring: the semiring class of both.
        span: `>= 1`, the output's block constraint.

    Returns:
        `BlockTriangularMatrix` with converted values `(ssize, *batch, n_out, C, C)`.

    Raises:
        TypeError: if an operand is not a `BlockTriangularMatrix`.
        ValueError: if `K` or `C` differ.
    """
    for name, m in (("left", left), ("right", right)):
        if not isinstance(m, BlockTriangularMatrix):
            raise TypeError(f"{name} must be a BlockTriangularMatrix, got {type(m).__name__}")
    if (left.K, left.C) != (right.K, right.C):
        raise ValueError(
            f"left and right must have the same K and C, got (K={left.K}, C={left.C}) and "
            f"(K={right.K}, C={right.C})"
        )
    K, C = left.K, left.C
    device = left.values.device
    out_blocks = triangular_blocks(K, span, device=device)
    # Position of each stored block, -1 where absent, to pair left (k1, k2) with right (k2, k3).
    lpos = torch.full((K, K), -1, dtype=torch.long)
    rpos = torch.full((K, K), -1, dtype=torch.long)
    lpos[left.block_indices[:, 0].cpu(), left.block_indices[:, 1].cpu()] = torch.arange(
        left.num_blocks
    )
    rpos[right.block_indices[:, 0].cpu(), right.block_indices[:, 1].cpu()] = torch.arange(
        right.num_blocks
    )
    terms: list[list[tuple[int, int]]] = []
    for k1, k3 in out_blocks.tolist():
        terms.append(
            [
                (int(lpos[k1, k2]), int(rpos[k2, k3]))
                for k2 in range(K)
                if lpos[k1, k2] >= 0 and rpos[k2, k3] >= 0
            ]
        )
    width = max((len(t) for t in terms), default=0)
    pairs = [p for t in terms for p in t]
    lv, rv = left.values, right.values
    if width == 0 or not pairs:
        shape = torch.broadcast_shapes(lv.shape[1:-3], rv.shape[1:-3])
        values = semiring.zeros((*shape, len(terms), C, C), dtype=lv.dtype, device=device)
        return BlockTriangularMatrix(values, out_blocks, K, C)
    li = torch.tensor([p[0] for p in pairs], device=device)
    ri = torch.tensor([p[1] for p in pairs], device=device)
    prods = semiring.matmul(lv[..., li, :, :], rv[..., ri, :, :])  # (ssize, *batch, P, C, C)
    # One extra zero term pads every output block to `width` terms before the (+)-reduction.
    zero = semiring.zeros((*prods.shape[1:-3], 1, C, C), dtype=prods.dtype, device=device)
    prods = torch.cat([prods, zero], dim=-3)
    pad = len(pairs)
    table = torch.full((len(terms), width), pad, dtype=torch.long)
    at = 0
    for o, t in enumerate(terms):
        table[o, : len(t)] = torch.arange(at, at + len(t))
        at += len(t)
    table = table.to(device)
    gathered = prods[..., table.reshape(-1), :, :]
    gathered = gathered.reshape(*prods.shape[:-3], len(terms), width, C, C)
    values = semiring.sum(gathered, dim=-3)
    return BlockTriangularMatrix(values, out_blocks, K, C)
