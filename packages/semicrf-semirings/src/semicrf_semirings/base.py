"""The `Semiring` base class, the shared log-space base and NaN-free log-space reductions.

A semiring is a stateless class used as a namespace: every member is a class method (or a class
attribute), nothing is instantiated. Values live in *converted* tensors whose leading dim holds the
semiring's `ssize = S.size()` channels, so a converted tensor has shape `(ssize, *shape)`.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor

#: A large finite negative score (`-1e9`) that callers may use to forbid a choice. It is not the
#: semirings' zero: that is `-inf`, which stays absorbing whatever the magnitude of the other
#: scores (a finite zero plus a score of 1e10 would look like a real structure); every reduction
#: here is NaN-safe on `-inf` (docs/conventions.md section 3).
NEG_INF: float = -1e9

__all__ = [
    "NEG_INF",
    "LogSpaceSemiring",
    "Semiring",
    "align_channels",
    "log_softmax",
    "logsumexp",
    "normalize_dim",
]


class _LogSumExp(torch.autograd.Function):
    """`torch.logsumexp` whose gradient is 0 (not NaN) where every reduced input is `-inf`."""

    # forward/setup_context kept apart (and a generated vmap rule) so that torch.func
    # transforms (grad, vmap) and torch.compile can trace through it.
    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor, dim: int) -> Tensor:  # type: ignore[override]
        return torch.logsumexp(x, dim)

    @staticmethod
    def setup_context(ctx, inputs: tuple[Tensor, int], output: Tensor) -> None:  # type: ignore[override]
        x, dim = inputs
        ctx.dim = dim
        ctx.save_for_backward(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        # softmax(x) from the max-shifted exponentials rather than exp(x - out): in float32,
        # out = -1e9 + log(n) rounds to -1e9, and exp(x - out) would give weights summing to n.
        m = x.detach().amax(ctx.dim, keepdim=True)
        # m is -inf only when every input is -inf; shifting by 0 there makes every weight 0
        # (exp(-inf) / 1) instead of NaN.
        m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
        e = torch.exp(x - m)
        s = e.sum(ctx.dim, keepdim=True)
        s = torch.where(s > 0, s, torch.ones_like(s))
        return grad.unsqueeze(ctx.dim) * (e / s), None


def logsumexp(x: Tensor, dim: int) -> Tensor:
    """Log-sum-exp over `dim` with finite gradients.

    Args:
        x: any shape, floating point. Entries may be `-inf` (the zero) or `NEG_INF`.
        dim: the dim to reduce.

    Returns:
        `x.shape` without `dim`: `log(sum(exp(x), dim))`; `-inf` where every entry is `-inf`. Its
        gradient is `softmax(x, dim)`, and 0 where every entry is `-inf` (never NaN).
    """
    return _LogSumExp.apply(x, dim)


def log_softmax(x: Tensor, dim: int) -> Tensor:
    """`x - logsumexp(x, dim)` computed without NaN.

    Args:
        x: any shape, floating point; may hold `NEG_INF` or `-inf`.
        dim: the normalised dim.

    Returns:
        `x.shape`: log-probabilities along `dim`. Where every entry is `-inf` the result is `-inf`
        (probability 0) and the gradient is 0. Where every entry is the same very negative finite
        value the result is exactly `-log(n)` (the max is subtracted first, so no precision is lost).
    """
    # The shift cancels mathematically, so it needs no gradient.
    m = x.detach().amax(dim, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    shifted = x - m
    s = torch.exp(shifted).sum(dim, keepdim=True)
    # s == 0 only when every entry is -inf; log(1) = 0 keeps the result -inf there, not NaN.
    s = torch.where(s > 0, s, torch.ones_like(s))
    return shifted - torch.log(s)


def normalize_dim(xs: Tensor, dim: int) -> int:
    """Return `dim` as a non-negative index of the converted tensor `xs`, refusing dim 0.

    Raises:
        ValueError: if `dim` is out of range or names the semiring-channel dim 0.
    """
    nd = xs.dim()
    if not -nd <= dim < nd:
        raise ValueError(
            f"dim must be in [-{nd}, {nd}) for a converted tensor of shape {tuple(xs.shape)}, "
            f"got {dim}"
        )
    d = dim % nd
    if d == 0:
        raise ValueError(
            f"dim must not be the semiring-channel dim 0 of a converted tensor of shape "
            f"{tuple(xs.shape)}, got dim={dim}"
        )
    return d


def align_channels(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Give two converted tensors the same number of dims by inserting singleton dims after dim 0.

    Plain broadcasting aligns dims from the right and would pair one tensor's channel dim with the
    other's batch dim; here the channel dims stay paired and the remaining dims broadcast.

    Args:
        a: `(ssize, *sa)`, b: `(ssize, *sb)`.

    Returns:
        Views `(ssize, 1.., *sa)` and `(ssize, 1.., *sb)` of equal dimensionality.
    """
    nd = max(a.dim(), b.dim())
    if a.dim() < nd:
        a = a.reshape(a.shape[0], *([1] * (nd - a.dim())), *a.shape[1:])
    if b.dim() < nd:
        b = b.reshape(b.shape[0], *([1] * (nd - b.dim())), *b.shape[1:])
    return a, b


class Semiring:
    """Base class of all semirings: (+) `sum`/`plus`, (x) `mul`/`times`/`prod`, `dot`, `matmul`.

    Subclasses define `size`, `zero`, `one`, `sum` and `mul`; everything else is derived from them.
    A converted tensor has shape `(ssize, *shape)`; every `dim` argument indexes the converted
    tensor (negative dims count from the end) and may never be the channel dim 0.
    """

    #: Identity of (+), shape `(ssize,)`.
    zero: ClassVar[Tensor]
    #: Identity of (x), shape `(ssize,)`.
    one: ClassVar[Tensor]

    @classmethod
    def size(cls) -> int:
        """Number of semiring channels `ssize` (the leading dim of a converted tensor)."""
        return 1

    @classmethod
    def convert(cls, x: Tensor) -> Tensor:
        """Lift potentials `x` of any shape to a converted tensor `(ssize, *x.shape)`."""
        return x.unsqueeze(0)

    @classmethod
    def unconvert(cls, v: Tensor) -> Tensor:
        """Drop the channel dim of a converted tensor `(ssize, *shape)`, giving `shape`."""
        return v[0]

    @classmethod
    def sum(cls, xs: Tensor, dim: int = -1) -> Tensor:
        """(+)-reduce the converted tensor `xs (ssize, *shape)` along `dim` (never 0)."""
        raise NotImplementedError(f"{cls.__name__}.sum")

    @classmethod
    def mul(cls, a: Tensor, b: Tensor) -> Tensor:
        """Elementwise (x) of converted tensors `(ssize, *sa)` and `(ssize, *sb)` (broadcast)."""
        raise NotImplementedError(f"{cls.__name__}.mul")

    @classmethod
    def plus(cls, a: Tensor, b: Tensor) -> Tensor:
        """Elementwise (+) of converted tensors `(ssize, *sa)` and `(ssize, *sb)` (broadcast)."""
        a, b = torch.broadcast_tensors(*align_channels(a, b))
        return cls.sum(torch.stack([a, b], dim=-1), dim=-1)

    @classmethod
    def times(cls, *ts: Tensor) -> Tensor:
        """(x) of one or more converted tensors, folded left to right."""
        if not ts:
            raise ValueError("times needs at least one tensor, got none")
        out = ts[0]
        for t in ts[1:]:
            out = cls.mul(out, t)
        return out

    @classmethod
    def prod(cls, a: Tensor, dim: int = -1) -> Tensor:
        """(x)-reduce the converted tensor `a (ssize, *shape)` along `dim` (never 0)."""
        d = normalize_dim(a, dim)
        return cls.times(*a.unbind(d))

    @classmethod
    def dot(cls, a: Tensor, b: Tensor) -> Tensor:
        """`(+)_i a[..., i] (x) b[..., i]`: converted `(ssize, ..., n)` twice -> `(ssize, ...)`."""
        return cls.sum(cls.mul(a, b), dim=-1)

    @classmethod
    def check_matmul(cls, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        """Validate matmul operands and align their batch dims (see `matmul`).

        Raises:
            ValueError: naming both shapes, if a channel dim is not `ssize`, an operand has fewer
                than 3 dims, the inner sizes differ or the batch dims do not broadcast.
        """
        s = cls.size()
        shapes = f"a {tuple(a.shape)} and b {tuple(b.shape)}"
        if a.dim() < 3 or b.dim() < 3:
            raise ValueError(
                f"{cls.__name__}.matmul expects converted tensors (ssize={s}, ..., n, k) and "
                f"(ssize={s}, ..., k, m) with at least 3 dims, got {shapes}"
            )
        if a.shape[0] != s or b.shape[0] != s:
            raise ValueError(
                f"{cls.__name__}.matmul expects a leading channel dim of size ssize={s}, got {shapes}"
            )
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(
                f"{cls.__name__}.matmul inner sizes differ: a.shape[-1]={a.shape[-1]} != "
                f"b.shape[-2]={b.shape[-2]} ({shapes})"
            )
        a, b = align_channels(a, b)
        try:
            torch.broadcast_shapes(a.shape[1:-2], b.shape[1:-2])
        except RuntimeError as err:
            raise ValueError(
                f"{cls.__name__}.matmul batch dims do not broadcast: {shapes}"
            ) from err
        return a, b

    @classmethod
    def matmul(cls, a: Tensor, b: Tensor) -> Tensor:
        """Semiring matrix product over the last two dims.

        `out[..., i, j] = (+)_l a[..., i, l] (x) b[..., l, j]`, computed by broadcasting
        `a[..., i, l, None]` against `b[..., None, l, j]` (an intermediate of `n * k * m` elements
        per batch entry and channel) and (+)-reducing `l`.

        Args:
            a: converted `(ssize, *batch_a, n, k)`.
            b: converted `(ssize, *batch_b, k, m)`; `batch_a` and `batch_b` broadcast (aligned
                after the channel dim).

        Returns:
            Converted `(ssize, *batch, n, m)`.
        """
        a, b = cls.check_matmul(a, b)
        return cls.sum(cls.mul(a.unsqueeze(-1), b.unsqueeze(-3)), dim=-2)

    @classmethod
    def _mul_channels(cls) -> int:
        """Channels materialised per element by `mul` (ssize; k*k for k-max). Used for sharding."""
        return cls.size()

    @classmethod
    def _fill_value(cls, which: Tensor, x: Tensor) -> Tensor:
        """`which (ssize,)` as `x`'s dtype/device, shaped to broadcast against `x (ssize, ...)`."""
        return which.to(dtype=x.dtype, device=x.device).view(-1, *([1] * (x.dim() - 1)))

    @classmethod
    def zeros(
        cls,
        shape: tuple[int, ...] | list[int] | torch.Size,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """A new converted tensor `(ssize, *shape)` filled with the semiring zero."""
        x = torch.empty((cls.size(), *shape), dtype=dtype, device=device)
        return cls.zero_(x)

    @classmethod
    def ones(
        cls,
        shape: tuple[int, ...] | list[int] | torch.Size,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """A new converted tensor `(ssize, *shape)` filled with the semiring one."""
        x = torch.empty((cls.size(), *shape), dtype=dtype, device=device)
        return cls.one_(x)

    @classmethod
    def zero_(cls, x: Tensor) -> Tensor:
        """Fill the converted tensor `x (ssize, ...)` with zero in place and return it."""
        return x.copy_(cls._fill_value(cls.zero, x).expand_as(x))

    @classmethod
    def one_(cls, x: Tensor) -> Tensor:
        """Fill the converted tensor `x (ssize, ...)` with one in place and return it."""
        return x.copy_(cls._fill_value(cls.one, x).expand_as(x))

    @classmethod
    def fill(cls, c: Tensor, mask: Tensor, v: Tensor | float) -> Tensor:
        """`torch.where(mask, v, c)` with `v` broadcast over the channel dim (pytorch-struct's).

        Args:
            c: converted tensor `(ssize, *shape)`.
            mask: bool, broadcastable to `c`'s shape (e.g. `shape`, or `(ssize, *shape)`).
            v: `(ssize,)` one value per channel (e.g. `cls.zero` or `cls.one`), or a number
                used in every channel.

        Returns:
            A new converted tensor `(ssize, *shape)`: `v[k]` in channel `k` where `mask`, `c`
            elsewhere. Differentiable in `c` (and in `v` where it is a tensor that requires grad).
        """
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
            what = f"dtype {mask.dtype}" if isinstance(mask, Tensor) else type(mask).__name__
            raise TypeError(f"mask must be a bool tensor, got {what}")
        if isinstance(v, Tensor):
            if v.dim() > 1 or v.numel() not in (1, c.shape[0]):
                raise ValueError(
                    f"v must have shape (ssize,) = ({c.shape[0]},) or be a number, got shape "
                    f"{tuple(v.shape)}"
                )
            fill = v.to(dtype=c.dtype, device=c.device).reshape(-1, *([1] * (c.dim() - 1)))
        else:
            fill = torch.tensor(float(v), dtype=c.dtype, device=c.device)
        try:
            torch.broadcast_shapes(mask.shape, c.shape)
        except RuntimeError as err:
            raise ValueError(
                f"mask of shape {tuple(mask.shape)} does not broadcast to c's shape "
                f"{tuple(c.shape)}"
            ) from err
        return torch.where(mask, fill, c)

    @classmethod
    def zero_mask_(cls, x: Tensor, mask: Tensor) -> Tensor:
        """In place: set `x (ssize, *shape)` to zero where `mask` is True, and return `x`.

        Args:
            x: converted tensor `(ssize, *shape)`.
            mask: bool, broadcastable to `shape` (= `x.shape[1:]`).
        """
        if mask.dtype != torch.bool:
            raise TypeError(f"mask must be a bool tensor, got dtype {mask.dtype}")
        try:
            m = torch.broadcast_to(mask, x.shape[1:])
        except RuntimeError as err:
            raise ValueError(
                f"mask of shape {tuple(mask.shape)} does not broadcast to x.shape[1:] = "
                f"{tuple(x.shape[1:])}"
            ) from err
        return x.copy_(torch.where(m.unsqueeze(0), cls._fill_value(cls.zero, x), x))


class LogSpaceSemiring(Semiring):
    """Shared base of the semirings whose channels are log-space scores.

    (x) is channel-wise addition and the (x)-reduction is a sum; zero is `-inf` (absorbing at any
    magnitude of the potentials; every reduction is NaN-safe on it)
    and one is `0`. Subclasses define `sum` (and, for several channels, `convert`, `zero`, `one`).
    """

    zero: ClassVar[Tensor] = torch.tensor([-math.inf])
    one: ClassVar[Tensor] = torch.tensor([0.0])

    @classmethod
    def mul(cls, a: Tensor, b: Tensor) -> Tensor:
        """`a + b`, channel by channel (broadcast after aligning channel dims)."""
        a, b = align_channels(a, b)
        return a + b

    @classmethod
    def prod(cls, a: Tensor, dim: int = -1) -> Tensor:
        """`sum` of `a (ssize, *shape)` along `dim` (never 0), channel by channel."""
        return a.sum(normalize_dim(a, dim))
