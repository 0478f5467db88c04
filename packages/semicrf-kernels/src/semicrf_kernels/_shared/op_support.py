"""What the custom operators of every op folder share: device dispatch and placeholders.

Every streaming operator takes inputs in kernel form (:func:`semicrf_kernels._shared.inputs.
prepare_inputs`: compute dtype, forbidden entries ``-inf``, ``int64`` lengths, contiguous); the
public functions validate and prepare, then call them. Absent optional outputs are empty ``(0,)``
tensors, since a custom operator cannot return None on every supported torch.
"""

from typing import Optional  # torch 2.4 infers the schemas from typing.Optional

import torch
from torch import Tensor

from .inputs import KernelInputs, prepare_inputs
from .triton_support import triton_available_for

__all__ = ["F64", "empty", "prepared", "uses_triton"]

F64 = torch.float64


def uses_triton(cum_scores: Tensor, use_triton: bool) -> bool:
    """Whether the operators run the Triton kernels on ``cum_scores``' device (else PyTorch)."""
    return bool(use_triton) and triton_available_for(cum_scores)


def empty(like: Tensor, dtype: torch.dtype) -> Tensor:
    """The ``(0,)`` placeholder of an absent output."""
    return like.new_empty((0,), dtype=dtype)


def prepared(
    cum_scores: Tensor,
    transition: Tensor,
    duration_bias: Tensor,
    lengths: Tensor,
    K: int,
    proj_start: Optional[Tensor],  # noqa: UP045
    proj_end: Optional[Tensor],  # noqa: UP045
) -> KernelInputs:
    # A no-op (same tensors) for inputs already in kernel form, as the public API passes them.
    return prepare_inputs(cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end)
