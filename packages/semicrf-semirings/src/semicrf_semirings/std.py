"""The standard (real) semiring: ordinary sums and products of non-log potentials."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from .base import Semiring, align_channels, normalize_dim

__all__ = ["StdSemiring"]


class StdSemiring(Semiring):
    """Standard semiring `(R, +, *)` on potentials that are *not* in log space.

    * ssize 1; zero `0`, one `1`.
    * `sum` is `torch.sum`, `mul` is `*`, `prod` is `torch.prod`, `matmul` is `torch.matmul`.

    Use it for counting (potentials of 1 count structures), expectations of linear quantities, or
    checks against plain arithmetic. Products of many potentials overflow or underflow quickly, so
    prefer `LogSemiring` for partition functions of long sequences.
    """

    zero: ClassVar[Tensor] = torch.tensor([0.0])
    one: ClassVar[Tensor] = torch.tensor([1.0])

    @classmethod
    def sum(cls, xs: Tensor, dim: int = -1) -> Tensor:
        """Sum of the converted tensor `xs (1, *shape)` along `dim` (never 0)."""
        return xs.sum(normalize_dim(xs, dim))

    @classmethod
    def mul(cls, a: Tensor, b: Tensor) -> Tensor:
        """`a * b` (broadcast after aligning the channel dims)."""
        a, b = align_channels(a, b)
        return a * b

    @classmethod
    def prod(cls, a: Tensor, dim: int = -1) -> Tensor:
        """Product of the converted tensor `a (1, *shape)` along `dim` (never 0)."""
        return a.prod(normalize_dim(a, dim))

    @classmethod
    def matmul(cls, a: Tensor, b: Tensor) -> Tensor:
        """`torch.matmul` of converted `(1, *batch_a, n, k)` and `(1, *batch_b, k, m)`.

        Returns:
            Converted `(1, *batch, n, m)`.
        """
        a, b = cls.check_matmul(a, b)
        return torch.matmul(a, b)
