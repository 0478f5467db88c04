"""The k-max semiring: the k best scores (k-best Viterbi)."""

from __future__ import annotations

import functools
import math
import numbers

import torch
from torch import Tensor

from .base import LogSpaceSemiring, align_channels, normalize_dim

__all__ = ["KMaxSemiring"]


class _KMaxBase(LogSpaceSemiring):
    """Shared body of the classes returned by `KMaxSemiring(k)`; `k` is set by the factory."""

    k: int = 1

    @classmethod
    def size(cls) -> int:
        """`k`: the channels hold the k best scores, sorted descending."""
        return cls.k

    @classmethod
    def _mul_channels(cls) -> int:
        # mul materialises all k * k pairwise sums before keeping the best k.
        return cls.k * cls.k

    @classmethod
    def convert(cls, x: Tensor) -> Tensor:
        """`(k, *x.shape)`: `x` in channel 0, the zero `-inf` in channels 1..k-1."""
        rest = torch.full((cls.k - 1, *x.shape), -math.inf, dtype=x.dtype, device=x.device)
        return torch.cat([x.unsqueeze(0), rest], dim=0)

    @classmethod
    def unconvert(cls, v: Tensor) -> Tensor:
        """The best score: channel 0 of `v (k, *shape)`."""
        return v[0]

    @classmethod
    def sum(cls, xs: Tensor, dim: int = -1) -> Tensor:
        """The k best of `xs (k, *shape)` over the channels and `dim` jointly, sorted descending.

        Returns:
            `(k, *shape without dim)`.
        """
        return cls.sparse_sum(xs, dim)[0]

    @classmethod
    def sparse_sum(cls, xs: Tensor, dim: int = -1) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """`sum` together with where each kept score came from.

        Args:
            xs: converted `(k, *shape)`.
            dim: the reduced dim (never 0).

        Returns:
            `(values, (channel, position))`: `values (k, *rest)` as `sum`; `channel` and `position`
            (int64, same shape) give, for each kept score, its channel in `xs` and its index along
            `dim`. Candidates that do not exist (fewer than k of them) are the zero `-inf`, with
            channel and position 0.
        """
        k = cls.k
        d = normalize_dim(xs, dim)
        x = xs.movedim(d, -1).movedim(0, -1)  # (*rest, n, k): candidates position-major
        flat = x.flatten(-2)
        if flat.shape[-1] < k:  # an empty reduced dim: pad with zeros
            pad = flat.new_full((*flat.shape[:-1], k - flat.shape[-1]), -math.inf)
            flat = torch.cat([flat, pad], dim=-1)
        values, idx = flat.topk(k, dim=-1, largest=True, sorted=True)
        n = max(x.shape[-2], 1)
        idx = idx.clamp(max=n * k - 1)
        return values.movedim(-1, 0), ((idx % k).movedim(-1, 0), (idx // k).movedim(-1, 0))

    @classmethod
    def mul(cls, a: Tensor, b: Tensor) -> Tensor:
        """The k best of all k*k pairwise sums `a[i] + b[j]`, sorted descending.

        Args:
            a: converted `(k, *sa)`; b: converted `(k, *sb)` (broadcast).

        Returns:
            `(k, *broadcast(sa, sb))`.
        """
        a, b = align_channels(a, b)
        pairs = (a.unsqueeze(1) + b.unsqueeze(0)).flatten(0, 1)  # (k*k, ...)
        return pairs.topk(cls.k, dim=0, largest=True, sorted=True).values

    @classmethod
    def prod(cls, a: Tensor, dim: int = -1) -> Tensor:
        """(x)-reduce `a (k, *shape)` along `dim`: the k best sums choosing one channel per entry."""
        d = normalize_dim(a, dim)
        parts = list(a.unbind(d))
        if not parts:
            return cls.ones(a.shape[1:d] + a.shape[d + 1 :], dtype=a.dtype, device=a.device)
        # Pairwise tree: depth log2(n) instead of a chain of n folds.
        while len(parts) > 1:
            nxt = [cls.mul(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]
            if len(parts) % 2:
                nxt.append(parts[-1])
            parts = nxt
        return parts[0]


@functools.cache
def _make_kmax(k: int) -> type[_KMaxBase]:
    zero = torch.full((k,), -math.inf)
    one = torch.full((k,), -math.inf)
    one[0] = 0.0
    doc = (
        f"K-max semiring with k={k}: channels hold the {k} best scores, sorted descending. "
        "See `KMaxSemiring`."
    )
    return type(
        f"KMaxSemiring{k}", (_KMaxBase,), {"k": k, "zero": zero, "one": one, "__doc__": doc}
    )


def KMaxSemiring(k: int) -> type[_KMaxBase]:
    """Return the k-max semiring class for `k` (cached: equal `k` gives the same class).

    The channels of a converted tensor are the k best log-space scores, sorted descending:

    * ssize `k`; zero `[-inf] * k`; one `[0, -inf, ..., -inf]`.
    * `convert(x)`: `x` in channel 0, zero elsewhere; `unconvert(v)`: the best, `v[0]`.
    * `sum(xs, dim)`: the k best over the channels and `dim` together.
    * `mul(a, b)`: the k best of the k*k sums `a[i] + b[j]`.
    * `matmul(a, b)[i, j]`: the k best of `a[c, i, l] + b[c', l, j]` over `c, c', l`.

    Use it for the k best structure scores (k-best Viterbi). `KMaxSemiring(1)` computes what
    `MaxSemiring` computes. Any `dim` except the channel dim 0 may be reduced.

    Raises:
        TypeError: if `k` is not an int (bool is refused).
        ValueError: if `k < 1`.
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"KMaxSemiring: k must be an int >= 1, got {type(k).__name__} {k!r}")
    if k < 1:
        raise ValueError(f"KMaxSemiring: k must be >= 1, got {k}")
    return _make_kmax(int(k))
