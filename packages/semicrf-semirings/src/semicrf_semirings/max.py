"""The max (Viterbi) semiring: best scores, and through gradients or `sparse_sum`, best structures."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .base import LogSpaceSemiring, normalize_dim

__all__ = ["MaxSemiring"]


class MaxSemiring(LogSpaceSemiring):
    """Max semiring (max-plus): `a (+) b = max(a, b)`, `a (x) b = a + b`.

    * ssize 1; zero `-inf`, one `0`.
    * `sum(xs, dim)` is the max along `dim` (values); `prod` is the sum.
    * `matmul(a, b)[i, j] = max_l a[i, l] + b[l, j]`.

    Use it for Viterbi scores. The gradient of `sum` flows to one arg-max per reduction (the first,
    i.e. smallest, index on ties), so the gradient of a Viterbi score is the indicator of one best
    structure (0 where every candidate is `-inf`: no structure). `sparse_sum` also returns the
    arg-max indices, for explicit back-pointers.
    """

    @classmethod
    def sum(cls, xs: Tensor, dim: int = -1) -> Tensor:
        """Max of the converted tensor `xs (1, *shape)` along `dim` (never 0)."""
        return cls.sparse_sum(xs, dim)[0]

    @classmethod
    def sparse_sum(cls, xs: Tensor, dim: int = -1) -> tuple[Tensor, Tensor]:
        """Max along `dim` and where it is.

        Args:
            xs: converted `(1, *shape)`, floating point.
            dim: the reduced dim of `xs` (never 0).

        Returns:
            `(values, indices)`, both `(1, *shape without dim)`: the maxima (float, same dtype as
            `xs`) and their positions along `dim` (int64). Ties go to the smallest index.
        """
        d = normalize_dim(xs, dim)
        # argmax documents "first maximal index" on ties; gather keeps the gradient on that one.
        idx = xs.argmax(d, keepdim=True)
        values = xs.gather(d, idx).squeeze(d)
        # Where every entry is -inf there is no best structure: its gradient (its "indicator")
        # is 0, not a 1 on an arbitrary -inf entry.
        values = torch.where(values > -math.inf, values, values.detach())
        return values, idx.squeeze(d)
