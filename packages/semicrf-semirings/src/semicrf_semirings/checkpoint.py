"""Memory-saving wrappers of a semiring's `matmul`: checkpointed and sharded (chunked) products.

Both factories return a subclass of the given semiring whose `matmul` has the same values and
gradients but keeps less memory: the broadcast intermediate `(ssize, *batch, n, k, m)` of the
generic product is never saved for backward (only the operands are), and it is recomputed in
backward. The sharded version also computes it in chunks so that at most about `max_size` of its
elements exist at a time, in forward and in backward.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Iterator

import torch
from torch import Tensor

from .base import Semiring

__all__ = ["CheckpointSemiring", "CheckpointShardSemiring", "matmul_size"]


def matmul_size(semiring: type[Semiring], a: Tensor, b: Tensor) -> int:
    """Elements of the broadcast intermediate that `semiring.matmul(a, b)` materialises.

    Args:
        semiring: the semiring class.
        a: converted `(ssize, *batch_a, n, k)`; b: converted `(ssize, *batch_b, k, m)`.

    Returns:
        `mul_channels * prod(batch) * n * k * m`, where `mul_channels` is `ssize` (`k*k` for k-max).
    """
    a, b = semiring.check_matmul(a, b)
    batch = torch.broadcast_shapes(a.shape[1:-2], b.shape[1:-2])
    n, k, m = a.shape[-2], a.shape[-1], b.shape[-1]
    return semiring._mul_channels() * math.prod(batch) * n * k * m


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {low}, got {type(value).__name__} {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def _check_semiring(cls: object) -> type[Semiring]:
    if not (isinstance(cls, type) and issubclass(cls, Semiring)):
        raise TypeError(f"cls must be a Semiring subclass, got {cls!r}")
    return cls


def _needs_grad(a: Tensor, b: Tensor) -> bool:
    return torch.is_grad_enabled() and (a.requires_grad or b.requires_grad)


def _recompute_grads(
    base: type[Semiring], a: Tensor, b: Tensor, grad: Tensor, need: tuple[bool, bool]
) -> tuple[Tensor | None, Tensor | None]:
    """Gradients of `<grad, base.matmul(a, b)>` with respect to `a` and `b` (those in `need`)."""
    with torch.enable_grad():
        a_ = a.detach().requires_grad_(need[0])
        b_ = b.detach().requires_grad_(need[1])
        out = base.matmul(a_, b_)
        inputs = [t for t, n in zip((a_, b_), need) if n]
        grads = iter(torch.autograd.grad(out, inputs, grad, allow_unused=True))
    ga = next(grads) if need[0] else None
    gb = next(grads) if need[1] else None
    return (
        torch.zeros_like(a) if need[0] and ga is None else ga,
        torch.zeros_like(b) if need[1] and gb is None else gb,
    )


class _CheckpointMatmul(torch.autograd.Function):
    """`base.matmul(a, b)` that saves only `a` and `b` and recomputes the product in backward."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, base: type[Semiring]) -> Tensor:  # type: ignore[override]
        ctx.base = base
        ctx.save_for_backward(a, b)
        return base.matmul(a, b)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        a, b = ctx.saved_tensors
        ga, gb = _recompute_grads(ctx.base, a, b, grad, tuple(ctx.needs_input_grad[:2]))
        return ga, gb, None


def _chunks(batch: int, n: int, unit: int, max_size: int) -> Iterator[tuple[int, int, int, int]]:
    """Split `batch` entries of `n` output rows (each costing `unit` elements) into chunks.

    Yields `(b0, b1, r0, r1)`: batch entries `[b0, b1)`, rows `[r0, r1)` of each. A chunk holds at
    most `max(max_size, unit)` elements: whole batch entries when one fits, else rows.
    """
    rows = max(1, max_size // max(unit, 1))
    if rows >= n:
        step = max(1, rows // max(n, 1))
        for b0 in range(0, batch, step):
            yield b0, min(b0 + step, batch), 0, n
    else:
        for b0 in range(batch):
            for r0 in range(0, n, rows):
                yield b0, b0 + 1, r0, min(r0 + rows, n)


class _ShardMatmul(torch.autograd.Function):
    """`base.matmul(a, b)` computed chunk by chunk, recomputed chunk by chunk in backward."""

    @staticmethod
    def _flat(base: type[Semiring], a: Tensor, b: Tensor):
        a, b = base.check_matmul(a, b)
        batch = torch.broadcast_shapes(a.shape[1:-2], b.shape[1:-2])
        s, n, k, m = a.shape[0], a.shape[-2], a.shape[-1], b.shape[-1]
        bsz = math.prod(batch)
        af = a.expand(s, *batch, n, k).reshape(s, bsz, n, k)
        bf = b.expand(s, *batch, k, m).reshape(s, bsz, k, m)
        return a, b, batch, af, bf

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, base: type[Semiring], max_size: int) -> Tensor:  # type: ignore[override]
        ctx.base, ctx.max_size = base, max_size
        ctx.save_for_backward(a, b)
        _, _, batch, af, bf = _ShardMatmul._flat(base, a, b)
        s, bsz, n, k = af.shape
        m = bf.shape[-1]
        out = af.new_empty((s, bsz, n, m))
        unit = base._mul_channels() * k * m
        for b0, b1, r0, r1 in _chunks(bsz, n, unit, max_size):
            out[:, b0:b1, r0:r1] = base.matmul(af[:, b0:b1, r0:r1], bf[:, b0:b1])
        return out.reshape(s, *batch, n, m)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        a, b = ctx.saved_tensors
        base, max_size = ctx.base, ctx.max_size
        need = tuple(ctx.needs_input_grad[:2])
        a2, b2, batch, af, bf = _ShardMatmul._flat(base, a, b)
        s, bsz, n, k = af.shape
        m = bf.shape[-1]
        gflat = grad.reshape(s, bsz, n, m)
        ga = torch.zeros_like(af) if need[0] else None
        gb = torch.zeros_like(bf) if need[1] else None
        unit = base._mul_channels() * k * m
        for b0, b1, r0, r1 in _chunks(bsz, n, unit, max_size):
            g_a, g_b = _recompute_grads(
                base, af[:, b0:b1, r0:r1], bf[:, b0:b1], gflat[:, b0:b1, r0:r1], need
            )
            if ga is not None:
                ga[:, b0:b1, r0:r1] = g_a
            if gb is not None:
                gb[:, b0:b1] += g_b
        # Undo the broadcasting: sum over expanded dims, back to the caller's shapes.
        if ga is not None:
            ga = ga.reshape(s, *batch, n, k).sum_to_size(a2.shape).reshape(a.shape)
        if gb is not None:
            gb = gb.reshape(s, *batch, k, m).sum_to_size(b2.shape).reshape(b.shape)
        return ga, gb, None, None


@functools.cache
def _make_checkpoint(cls: type[Semiring], min_size: int) -> type[Semiring]:
    def matmul(kls: type[Semiring], a: Tensor, b: Tensor) -> Tensor:
        if not _needs_grad(a, b) or matmul_size(cls, a, b) <= min_size:
            return cls.matmul(a, b)
        return _CheckpointMatmul.apply(a, b, cls)

    matmul.__doc__ = (
        f"`{cls.__name__}.matmul` that saves only its operands for backward and recomputes the "
        f"product there (when the intermediate has more than {min_size} elements)."
    )
    return type(
        f"Checkpoint{cls.__name__}",
        (cls,),
        {"matmul": classmethod(matmul), "__doc__": f"{cls.__name__} with checkpointed matmul."},
    )


@functools.cache
def _make_shard(cls: type[Semiring], max_size: int, min_size: int) -> type[Semiring]:
    def matmul(kls: type[Semiring], a: Tensor, b: Tensor) -> Tensor:
        if matmul_size(cls, a, b) <= min_size:
            return cls.matmul(a, b)
        return _ShardMatmul.apply(a, b, cls, max_size)

    matmul.__doc__ = (
        f"`{cls.__name__}.matmul` computed in chunks of at most {max_size} intermediate elements "
        f"(when it has more than {min_size}), saving only its operands for backward."
    )
    return type(
        f"CheckpointShard{cls.__name__}",
        (cls,),
        {"matmul": classmethod(matmul), "__doc__": f"{cls.__name__} with sharded matmul."},
    )


def CheckpointSemiring(cls: type[Semiring], min_size: int = 0) -> type[Semiring]:
    """Return a subclass of `cls` whose `matmul` is checkpointed.

    The product has the same values and gradients as `cls.matmul`, but only the operands `a` and
    `b` are saved for backward; the broadcast intermediate (`matmul_size` elements: `n * k * m` per
    batch entry and channel) is recomputed during backward. Products whose intermediate has at most
    `min_size` elements, and products needing no gradient, use `cls.matmul` unchanged. Gradients
    of gradients are not supported through the checkpointed product.

    Args:
        cls: a semiring class (e.g. `LogSemiring`, `KMaxSemiring(3)`).
        min_size: int >= 0.

    Raises:
        TypeError: if `cls` is not a `Semiring` subclass or `min_size` is not an int.
        ValueError: if `min_size < 0`.
    """
    return _make_checkpoint(_check_semiring(cls), _check_int("min_size", min_size, 0))


def CheckpointShardSemiring(
    cls: type[Semiring], max_size: int, min_size: int = 0
) -> type[Semiring]:
    """Return a subclass of `cls` whose `matmul` is sharded and checkpointed.

    The batch dims of the operands are broadcast and flattened; the product is computed over chunks
    of whole batch entries, or of output rows of one entry when a whole entry is too large, so that
    each chunk's intermediate holds at most `max_size` elements (at least one output row: `ssize *
    k * m` elements, `k*k * k_inner * m` for k-max). Only the operands are saved for backward,
    which recomputes chunk by chunk. Values and gradients equal those of `cls.matmul`. Products
    whose intermediate has at most `min_size` elements use `cls.matmul` unchanged.

    Args:
        cls: a semiring class.
        max_size: int >= 1, the largest intermediate (in elements) of one chunk.
        min_size: int >= 0.

    Raises:
        TypeError: if `cls` is not a `Semiring` subclass or a size is not an int.
        ValueError: if `max_size < 1` or `min_size < 0`.
    """
    return _make_shard(
        _check_semiring(cls),
        _check_int("max_size", max_size, 1),
        _check_int("min_size", min_size, 0),
    )
