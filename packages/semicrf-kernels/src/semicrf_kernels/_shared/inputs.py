"""The one place where user inputs become kernel inputs.

Every path (PyTorch, Triton, Viterbi) receives :class:`KernelInputs`: one compute dtype, forbidden
entries as exact ``-inf``, ``int64`` lengths and contiguous tensors. The conversions are
differentiable torch ops, so autograd carries gradients back to the user's tensors (and dtypes).
"""

from __future__ import annotations

import weakref
from typing import NamedTuple

import torch

from ..constants import NEG_INF

__all__ = ["KernelInputs", "compute_dtype", "mask_forbidden", "prepare_inputs"]


class KernelInputs(NamedTuple):
    """Inputs in kernel form (all float tensors share :func:`compute_dtype`).

    Attributes:
        cum_scores: ``(batch, T+1, C)`` contiguous.
        transition: ``(C, C)`` or ``(K, C, C)`` contiguous, forbidden entries ``-inf``.
        duration_bias: ``(K, C)`` contiguous, forbidden entries ``-inf``.
        lengths: ``(batch,)`` int64 contiguous.
        K: the longest segment.
        proj_start: ``(batch, T, C)`` contiguous, or None.
        proj_end: ``(batch, T, C)`` contiguous, or None.
    """

    cum_scores: torch.Tensor
    transition: torch.Tensor
    duration_bias: torch.Tensor
    lengths: torch.Tensor
    K: int
    proj_start: torch.Tensor | None
    proj_end: torch.Tensor | None


def compute_dtype(cum_scores: torch.Tensor) -> torch.dtype:
    """float64 for float64 ``cum_scores``, else float32 (half precisions accumulate in float32)."""
    return torch.float64 if cum_scores.dtype == torch.float64 else torch.float32


def mask_forbidden(x: torch.Tensor) -> torch.Tensor:
    """``x`` with every entry ``<= NEG_INF / 2`` (``-inf`` included) replaced by ``-inf``.

    Forbidden entries get zero gradient; the others pass their gradient through unchanged.
    """
    return torch.where(x <= NEG_INF / 2, -torch.inf, x)


# Tensors this module produced with mask_forbidden, by id: (weak reference, version counter).
# The same transition and duration bias pass prepare_inputs up to five times on the way from a
# head through the custom operators to the gradient launchers; masking them again each time
# costs two kernels and their host time per pass, all for nothing. An entry holds only while
# the very tensor is alive and unmodified (its version counter unchanged).
_MASKED: dict[int, tuple[weakref.ref, int]] = {}


def _already_masked(x: torch.Tensor) -> bool:
    entry = _MASKED.get(id(x))
    return entry is not None and entry[0]() is x and entry[1] == x._version


def _masked(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``mask_forbidden(x.to(dtype)).contiguous()``, returning ``x`` itself when it is such a
    result already (outside ``torch.compile`` tracing and inference mode, where tensors have no
    identity or version to rely on)."""
    if torch.compiler.is_compiling() or torch.is_inference_mode_enabled() or x.is_inference():
        return mask_forbidden(x.to(dtype)).contiguous()
    if x.dtype == dtype and _already_masked(x):
        return x
    out = mask_forbidden(x.to(dtype)).contiguous()
    key = id(out)
    _MASKED[key] = (weakref.ref(out, lambda _ref, key=key: _MASKED.pop(key, None)), out._version)
    return out


def prepare_inputs(
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    lengths: torch.Tensor,
    K: int,
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
) -> KernelInputs:
    """Convert validated inputs to kernel form (see :class:`KernelInputs`).

    Args:
        cum_scores: ``(batch, T+1, C)`` any floating dtype.
        transition: ``(C, C)`` or ``(K, C, C)``.
        duration_bias: ``(K, C)``.
        lengths: ``(batch,)`` integer or integral floating.
        K: the longest segment.
        proj_start: optional ``(batch, T, C)``.
        proj_end: optional ``(batch, T, C)``.
    """
    dtype = compute_dtype(cum_scores)

    def cast(x: torch.Tensor | None) -> torch.Tensor | None:
        return None if x is None else x.to(dtype).contiguous()

    return KernelInputs(
        cum_scores=cast(cum_scores),
        transition=_masked(transition, dtype),
        duration_bias=_masked(duration_bias, dtype),
        lengths=lengths.to(torch.int64).contiguous(),
        K=int(K),
        proj_start=cast(proj_start),
        proj_end=cast(proj_end),
    )
