"""Argument checks for `SemiMarkov`: clear `ValueError`/`TypeError`s instead of wrong answers.

Type, dtype and shape checks read metadata and always run. Checks that read values (NaN/+inf
potentials, the range of `lengths`) synchronise with the device: they run in eager mode and are
skipped while tracing for `torch.compile` or capturing a CUDA graph (`value_checks_enabled`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from semicrf_semirings import Semiring

__all__ = [
    "check_edge",
    "check_lengths",
    "check_potentials",
    "check_semiring",
    "check_values",
    "value_checks_enabled",
]


def value_checks_enabled(tensor: Tensor) -> bool:
    """False while tracing for `torch.compile` or capturing a CUDA graph (no host syncs there)."""
    compiler = getattr(torch, "compiler", None)
    is_compiling = getattr(compiler, "is_compiling", None)
    if is_compiling is not None and is_compiling():
        return False
    if tensor.is_cuda and torch.cuda.is_current_stream_capturing():
        return False
    return True


def check_values(x: Tensor, name: str = "log_potentials") -> None:
    """Reject NaN and `+inf` in log-space potentials `x` (any shape); `-inf` forbids and is fine.

    Eager mode only (see `value_checks_enabled`).

    Raises:
        ValueError: naming `name`, the bad value and the index of its first occurrence.
    """
    if not value_checks_enabled(x):
        return
    bad = torch.isnan(x) | (x == float("inf"))
    if bool(bad.any()):
        index = tuple(int(i) for i in bad.nonzero()[0])
        value = x[index].item()
        raise ValueError(
            f"{name} must not contain NaN or +inf (use -inf, or a value <= -1e9, to forbid a "
            f"segment), got {value} at index {index} of shape {tuple(x.shape)}"
        )


def check_semiring(semiring: object) -> type[Semiring]:
    """Return `semiring` if it is a `Semiring` subclass (the class, not an instance).

    Raises:
        TypeError: otherwise.
    """
    if not (isinstance(semiring, type) and issubclass(semiring, Semiring)):
        raise TypeError(
            f"semiring must be a Semiring class such as LogSemiring, got {semiring!r} "
            f"of type {type(semiring).__name__}"
        )
    return semiring


def check_edge(edge: object, name: str = "log_potentials") -> tuple[int, int, int, int]:
    """Check one edge tensor `(batch, N-1, K, C, C)` and return `(batch, N, K, C)`.

    Raises:
        TypeError: if `edge` is not a floating-point tensor.
        ValueError: on a wrong number of dims, `C_dst != C_src`, `K < 2` or `N - 1 < 1`.
    """
    if not isinstance(edge, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(edge).__name__}")
    if not edge.dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {edge.dtype}")
    if edge.dim() != 5:
        raise ValueError(
            f"{name} must be 5D (batch, N-1, K, C, C), got {edge.dim()}D with shape "
            f"{tuple(edge.shape)}"
        )
    B, T, K, C, C2 = edge.shape
    if C != C2:
        raise ValueError(
            f"{name} must be (batch, N-1, K, C, C) with equal label dims, got "
            f"shape {tuple(edge.shape)} (C_dst={C}, C_src={C2})"
        )
    if K < 2:
        raise ValueError(
            f"{name}.shape[2] (K) must be >= 2: index d is the duration and index 0 is unused, "
            f"got K={K} (shape {tuple(edge.shape)})"
        )
    if T < 1:
        raise ValueError(
            f"{name}.shape[1] (N-1) must be >= 1 (at least one position), got shape "
            f"{tuple(edge.shape)}"
        )
    if C < 1:
        raise ValueError(f"{name} must have C >= 1 labels, got shape {tuple(edge.shape)}")
    return B, T + 1, K, C


def check_potentials(
    log_potentials: Tensor | Sequence[Tensor], name: str = "log_potentials"
) -> tuple[list[Tensor], tuple[int, int, int, int]]:
    """Check a tensor, or a list of tensors of one shape (CrossEntropy/KL take `[p, q]`).

    Returns:
        `(tensors, (batch, N, K, C))`.

    Raises:
        TypeError, ValueError: as `check_edge`, or when list members differ in shape, dtype or
            device; ValueError for NaN or `+inf` values (eager mode only, `check_values`).
    """
    if isinstance(log_potentials, Tensor):
        dims = check_edge(log_potentials, name)
        check_values(log_potentials, name)
        return [log_potentials], dims
    if not isinstance(log_potentials, (list, tuple)) or not log_potentials:
        raise TypeError(
            f"{name} must be a tensor (batch, N-1, K, C, C) or a non-empty list of them, got "
            f"{type(log_potentials).__name__}"
        )
    dims = [check_edge(x, f"{name}[{i}]") for i, x in enumerate(log_potentials)]
    for i, x in enumerate(log_potentials):
        check_values(x, f"{name}[{i}]")
    first = log_potentials[0]
    for i, x in enumerate(log_potentials[1:], start=1):
        if x.shape != first.shape or x.dtype != first.dtype or x.device != first.device:
            raise ValueError(
                f"{name}[{i}] must match {name}[0] in shape, dtype and device: got "
                f"{tuple(x.shape)} {x.dtype} {x.device} vs {tuple(first.shape)} {first.dtype} "
                f"{first.device}"
            )
    return list(log_potentials), dims[0]


def check_lengths(lengths: object, batch: int, N: int, device: torch.device) -> Tensor:
    """Check `lengths` (fences per sequence) and return them as int64 on `device`.

    Args:
        lengths: `None` (every sequence has `N` fences) or an integer tensor `(batch,)` with
            values in `[2, N]`.
        batch: batch size of the potentials.
        N: number of fences of the potentials (`edge.shape[1] + 1`).
        device: the potentials' device.

    Raises:
        TypeError: if `lengths` is not an integer tensor.
        ValueError: on a wrong shape or device, or a value outside `[2, N]` (a value check:
            eager mode only, see `value_checks_enabled`).
    """
    if lengths is None:
        return torch.full((batch,), N, dtype=torch.long, device=device)
    if not isinstance(lengths, Tensor):
        raise TypeError(
            f"lengths must be None or an integer torch.Tensor of shape (batch,)=({batch},), "
            f"got {type(lengths).__name__}"
        )
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool or lengths.is_complex():
        raise TypeError(f"lengths must be an integer tensor, got dtype {lengths.dtype}")
    if lengths.shape != (batch,):
        raise ValueError(f"lengths must have shape (batch,)=({batch},), got {tuple(lengths.shape)}")
    if lengths.device != device:
        # As the streaming API: moving them silently would hide a host sync (or fail in torch).
        raise ValueError(
            f"lengths must be on the same device as log_potentials ({device}), got {lengths.device}"
        )
    if batch and value_checks_enabled(lengths):
        lo, hi = int(lengths.min()), int(lengths.max())
        if lo < 2 or hi > N:
            raise ValueError(
                f"lengths count fences (positions + 1) and must lie in [2, N]=[2, {N}], got "
                f"min={lo}, max={hi}"
            )
    return lengths.to(dtype=torch.long)
