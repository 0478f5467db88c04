"""Argument checks shared by the heads (conventions section 5).

Shape, dtype and device checks always run. Checks that read tensor values (NaN, ranges, gold in
the model's support) need a host synchronisation: they run only when the caller asks for
validation and we are in eager mode (not under ``torch.compile`` or CUDA-graph capture).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from semicrf_kernels.validation import check_log_weights

__all__ = [
    "check_choice",
    "check_finite",
    "check_hidden_states",
    "check_labels",
    "check_lengths",
    "check_log_weights",
    "check_scores_finite",
    "is_tracing",
    "value_checks_enabled",
]

_INTEGER_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def is_tracing() -> bool:
    """True under ``torch.compile`` tracing or CUDA-graph capture (no host sync allowed)."""
    compiler = getattr(torch, "compiler", None)
    is_compiling = getattr(compiler, "is_compiling", None)
    if is_compiling is not None and is_compiling():
        return True
    if torch.cuda.is_available() and torch.cuda.is_current_stream_capturing():
        return True
    return False


def value_checks_enabled(validate: bool) -> bool:
    """Whether value checks (which synchronise with the device) should run now."""
    return bool(validate) and not is_tracing()


def check_choice(value: object, name: str, options: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``options``, else raise a ``ValueError`` listing them."""
    if not isinstance(value, str) or value not in options:
        listed = ", ".join(repr(o) for o in options)
        raise ValueError(f"{name} must be one of {listed}, got {value!r}")
    return value


def check_hidden_states(
    hidden_states: object, feature_dim: int, name: str = "hidden_states"
) -> None:
    """Check type, rank, feature size and dtype of encoder outputs.

    Args:
        hidden_states: expected ``(batch, T, feature_dim)`` floating tensor, ``T >= 1``.
        feature_dim: ``hidden_dim`` when the head projects, else ``num_classes``.
    """
    if not isinstance(hidden_states, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(hidden_states).__name__}")
    if hidden_states.ndim != 3:
        raise ValueError(
            f"{name} must be 3D (batch, T, {feature_dim}), got shape {tuple(hidden_states.shape)}"
        )
    if not hidden_states.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {hidden_states.dtype}")
    batch, T, features = hidden_states.shape
    if features != feature_dim:
        raise ValueError(
            f"{name} last dimension must be {feature_dim}, got shape {tuple(hidden_states.shape)}"
        )
    if batch < 1 or T < 1:
        raise ValueError(
            f"{name} needs batch >= 1 and T >= 1, got shape {tuple(hidden_states.shape)}"
        )


def check_finite(x: torch.Tensor, name: str) -> None:
    """Raise ``ValueError`` when ``x`` holds NaN or infinite values (a value check)."""
    if not bool(torch.isfinite(x).all()):
        n_nan = int(torch.isnan(x).sum())
        n_inf = int(torch.isinf(x).sum())
        raise ValueError(f"{name} must be finite, got {n_nan} NaN and {n_inf} infinite values")


def check_scores_finite(cum_scores: torch.Tensor) -> None:
    """Raise ``ValueError`` when the scores computed from finite hidden states are not finite.

    The hidden states were checked finite before, so an infinite score here is an overflow of
    the projection or of the cumulative sum over ``T``, not the caller's input: say so, and how
    to avoid it.

    Args:
        cum_scores: ``(batch, T+1, C)`` the cumulative emission scores the kernels receive.
    """
    if bool(torch.isfinite(cum_scores).all()):
        return
    n_nan = int(torch.isnan(cum_scores).sum())
    n_inf = int(torch.isinf(cum_scores).sum())
    dtype = cum_scores.dtype
    raise ValueError(
        f"the emission scores overflowed {dtype} (max {torch.finfo(dtype).max:.3g}): "
        f"hidden_states are finite, but the scores computed from them (the projection, then "
        f"their cumulative sums over T) hold {n_inf} infinite and {n_nan} NaN values. Scale "
        f"hidden_states (or the projection's weights) down, e.g. normalise the encoder's "
        f"output, or pass float64 hidden_states"
    )


def check_lengths(
    lengths: object, batch: int, T: int, device: torch.device, *, check_values: bool
) -> None:
    """Check ``lengths``: an integer ``(batch,)`` tensor on ``device`` with ``1 <= L <= T``.

    The range check reads the values, so it runs only when ``check_values`` is true.
    """
    if not isinstance(lengths, torch.Tensor):
        raise TypeError(f"lengths must be a torch.Tensor, got {type(lengths).__name__}")
    if lengths.dtype not in _INTEGER_DTYPES:
        raise TypeError(f"lengths must have an integer dtype, got {lengths.dtype}")
    if lengths.ndim != 1 or lengths.shape[0] != batch:
        raise ValueError(f"lengths must have shape ({batch},), got {tuple(lengths.shape)}")
    if lengths.device != device:
        raise ValueError(
            f"lengths must be on the same device as hidden_states ({device}), got {lengths.device}"
        )
    if check_values:
        lo, hi = int(lengths.min()), int(lengths.max())
        if lo < 1 or hi > T:
            raise ValueError(f"lengths must be in [1, T={T}], got range [{lo}, {hi}]")


def check_labels(
    labels: object,
    lengths: torch.Tensor,
    num_classes: int,
    batch: int,
    T: int,
    *,
    check_values: bool,
) -> None:
    """Check per-position gold ``labels``: integer ``(batch, T)``, in ``[0, C)`` where valid.

    Labels at padding positions (``t >= lengths[b]``) are ignored, so an ignore index such as
    ``-100`` may be used there.
    """
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"labels must be a torch.Tensor, got {type(labels).__name__}")
    if labels.dtype not in _INTEGER_DTYPES:
        raise TypeError(f"labels must have an integer dtype, got {labels.dtype}")
    if labels.shape != (batch, T):
        raise ValueError(f"labels must have shape ({batch}, {T}), got {tuple(labels.shape)}")
    if labels.device != lengths.device:
        raise ValueError(
            f"labels must be on the same device as hidden_states ({lengths.device}), "
            f"got {labels.device}"
        )
    if check_values:
        valid = torch.arange(T, device=labels.device)[None, :] < lengths[:, None]
        bad = valid & ((labels < 0) | (labels >= num_classes))
        if bool(bad.any()):
            b, t = (int(i) for i in bad.nonzero()[0])
            raise ValueError(
                f"labels must be in [0, {num_classes}) at valid positions, "
                f"got labels[{b}, {t}] = {int(labels[b, t])}"
            )
