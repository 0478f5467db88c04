"""Argument checks of the streaming API (``docs/conventions.md`` section 5).

Shape, dtype, type and device checks only read metadata and always run. Checks that read
values (ranges, NaN/Inf) need a host synchronisation: they run when ``validate=True`` in eager
mode and are skipped under ``torch.compile`` and CUDA-graph capture. Every error names the
argument, what was expected and what was given.
"""

from __future__ import annotations

import numbers

import torch

from ._shared.precision import PrecisionWarning, check_precision, precision_threshold
from ._shared.triton_support import triton_available_for

__all__ = [
    "PrecisionWarning",
    "check_K",
    "check_count",
    "check_log_weights",
    "check_num_warps",
    "precision_threshold",
    "validate_streaming_inputs",
    "value_checks_enabled",
]

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def value_checks_enabled(tensor: torch.Tensor) -> bool:
    """False while tracing for ``torch.compile`` or capturing a CUDA graph (no host syncs)."""
    compiler = getattr(torch, "compiler", None)
    is_compiling = getattr(compiler, "is_compiling", None)
    if is_compiling is not None and is_compiling():
        return False
    if tensor.is_cuda and torch.cuda.is_current_stream_capturing():
        return False
    return True


def check_K(K: object) -> int:
    """``K`` must be a positive Python/NumPy integer (not a bool); returns it as ``int``."""
    if isinstance(K, bool) or not isinstance(K, numbers.Integral):
        raise TypeError(
            f"K: expected a positive int (the longest segment), got {type(K).__name__} {K!r}"
        )
    if K < 1:
        raise ValueError(f"K: expected a positive int (the longest segment), got {K}")
    return int(K)


def _check_tensor(name: str, x: object) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    return x


def _check_float(name: str, x: torch.Tensor) -> None:
    if x.dtype not in _FLOAT_DTYPES:
        raise TypeError(
            f"{name}: expected a floating dtype (float16, bfloat16, float32 or float64), got {x.dtype}"
        )


def _check_device(name: str, x: torch.Tensor, device: torch.device) -> None:
    if x.device != device:
        raise ValueError(
            f"{name}: expected a tensor on cum_scores' device {device}, got {x.device}"
        )


def _check_shape(name: str, x: torch.Tensor, expected: tuple[int, ...], meaning: str) -> None:
    if tuple(x.shape) != expected:
        raise ValueError(f"{name}: expected shape {meaning} = {expected}, got {tuple(x.shape)}")


def validate_streaming_inputs(
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    lengths: torch.Tensor,
    K: int,
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
    *,
    validate: bool = True,
    use_triton: bool = False,
) -> None:
    """Check the inputs of the streaming forward / Viterbi; raise on the first problem.

    Args:
        cum_scores: ``(batch, T+1, C)`` floating cumulative scores, ``T >= 1``.
        transition: ``(C, C)`` or ``(K, C, C)`` floating.
        duration_bias: ``(K, C)`` floating.
        lengths: ``(batch,)`` integer lengths in ``[1, T]``.
        K: positive int, the longest segment.
        proj_start: optional ``(batch, T, C)`` floating.
        proj_end: optional ``(batch, T, C)`` floating.
        validate: also run the value checks (lengths in range, finite emissions at valid
            positions, no NaN / ``+inf`` in ``transition`` / ``duration_bias``) and the
            precision guard (a :class:`PrecisionWarning` when ``max |cum_scores|`` passes
            :func:`precision_threshold` of its dtype; ``docs/reliability.md``).
        use_triton: the caller's ``use_triton``: where the Triton kernels run they compute in
            float32 (float64 for float64 ``cum_scores``), which the precision guard accounts for.

    Raises:
        TypeError: a wrong Python type or dtype.
        ValueError: a wrong shape, device or value.
    """
    cum = _check_tensor("cum_scores", cum_scores)
    _check_float("cum_scores", cum)
    if cum.dim() != 3:
        raise ValueError(
            f"cum_scores: expected 3 dims (batch, T+1, C), got shape {tuple(cum.shape)}"
        )
    B, T1, C = cum.shape
    if B < 1 or T1 < 2 or C < 1:
        raise ValueError(
            f"cum_scores: expected shape (batch, T+1, C) with batch >= 1, T >= 1, C >= 1, "
            f"got {tuple(cum.shape)}"
        )
    T = T1 - 1
    K = check_K(K)
    device = cum.device

    trans = _check_tensor("transition", transition)
    _check_float("transition", trans)
    if trans.dim() == 2:
        _check_shape("transition", trans, (C, C), "(C, C)")
    elif trans.dim() == 3:
        _check_shape("transition", trans, (K, C, C), "(K, C, C)")
    else:
        raise ValueError(
            f"transition: expected shape (C, C) = {(C, C)} or (K, C, C) = {(K, C, C)}, "
            f"got {tuple(trans.shape)}"
        )
    _check_device("transition", trans, device)

    bias = _check_tensor("duration_bias", duration_bias)
    _check_float("duration_bias", bias)
    _check_shape("duration_bias", bias, (K, C), "(K, C)")
    _check_device("duration_bias", bias, device)

    lens = _check_tensor("lengths", lengths)
    if lens.dtype == torch.bool or lens.is_complex() or lens.is_floating_point():
        # One rule with the heads and SemiMarkov (docs/conventions.md section 5).
        raise TypeError(f"lengths: expected an integer dtype, got {lens.dtype}")
    _check_shape("lengths", lens, (B,), "(batch,)")
    _check_device("lengths", lens, device)

    projections = (("proj_start", proj_start), ("proj_end", proj_end))
    for name, proj in projections:
        if proj is None:
            continue
        _check_tensor(name, proj)
        _check_float(name, proj)
        _check_shape(name, proj, (B, T, C), "(batch, T, C)")
        _check_device(name, proj, device)

    if not validate or not value_checks_enabled(cum):
        return

    lens_int = lens.long()
    low, high = int(lens_int.min()), int(lens_int.max())
    if high == T1:
        # The usual cause: per-position scores, or cumulative sums without the leading zero row.
        raise ValueError(
            f"cum_scores: expected T + 1 rows for lengths up to T (row 0 is the zero before the "
            f"first position), got {T1} rows for a length of {high}: pass {high + 1} rows, "
            f"cum[:, 0] = 0 and cum[:, t] = the sum of the first t scores "
            f"(semicrf_kernels.cumulative_scores(scores) builds them)"
        )
    if low < 1 or high > T:
        bad = low if low < 1 else high
        raise ValueError(f"lengths: expected values in [1, T] = [1, {T}], got {bad}")

    rows = torch.arange(T1, device=device)
    valid_rows = rows[None, :] <= lens_int[:, None]  # cum rows 0..L are read
    finite = torch.isfinite(cum).all(dim=-1) | ~valid_rows
    if not bool(finite.all()):
        b, t = (~finite).nonzero()[0].tolist()
        raise ValueError(
            f"cum_scores: expected finite values at valid rows, got NaN/Inf at batch {b}, row {t}"
        )
    for name, proj in projections:
        if proj is None:
            continue
        finite = torch.isfinite(proj).all(dim=-1) | ~valid_rows[:, 1:]
        if not bool(finite.all()):
            b, t = (~finite).nonzero()[0].tolist()
            raise ValueError(
                f"{name}: expected finite values at valid positions, got NaN/Inf at batch {b}, "
                f"position {t}"
            )
    check_log_weights(trans, "transition")
    check_log_weights(bias, "duration_bias")
    on_triton = bool(use_triton) and triton_available_for(cum)
    compute = torch.float32 if on_triton and cum.dtype != torch.float64 else torch.float64
    check_precision(cum, valid_rows, compute)


def check_log_weights(x: torch.Tensor, name: str) -> None:
    """Raise ``ValueError`` on NaN or ``+inf`` in log-space weights (a value check).

    For ``transition`` / ``duration_bias``: ``-inf`` (or anything ``<= NEG_INF / 2``) forbids a
    choice and is allowed. Every entry point (streaming, edge blocks, the heads' exact backends)
    calls this one check, so they all say the same thing.
    """
    bad = torch.isnan(x) | (x == torch.inf)
    if bool(bad.any()):
        index = tuple(bad.nonzero()[0].tolist())
        raise ValueError(
            f"{name}: expected finite values or -inf (forbidden), got {x[index].item()} at "
            f"index {index}"
        )


def check_num_warps(num_warps: object) -> int:
    """``num_warps`` must be a power-of-two int in ``[1, 32]`` (Triton's constraint)."""
    if isinstance(num_warps, bool) or not isinstance(num_warps, numbers.Integral):
        raise TypeError(
            f"num_warps: expected an int power of two in [1, 32], got {type(num_warps).__name__} "
            f"{num_warps!r}"
        )
    if not 1 <= num_warps <= 32 or num_warps & (num_warps - 1):
        raise ValueError(f"num_warps: expected a power of two in [1, 32], got {num_warps}")
    return int(num_warps)


def check_count(name: str, value: object) -> int:
    """``value`` as an int ``>= 1``; ``TypeError`` / ``ValueError`` naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an int >= 1, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {value}")
    return value
