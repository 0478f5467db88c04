"""What the custom operators of every op folder share: device dispatch and placeholders.

Every streaming operator takes inputs in kernel form (:func:`semicrf_kernels._shared.inputs.
prepare_inputs`: compute dtype, forbidden entries ``-inf``, ``int64`` lengths, contiguous); the
public functions validate and prepare, then call them. Absent optional outputs are empty ``(0,)``
tensors, since a custom operator cannot return None on every supported torch.
"""

from collections.abc import Callable
from typing import Optional  # torch 2.4 infers the schemas from typing.Optional

import torch
from torch import Tensor

from .inputs import KernelInputs, prepare_inputs
from .triton_support import triton_available_for

__all__ = [
    "F64",
    "define_op",
    "empty",
    "prepared",
    "register_autograd",
    "register_fake",
    "uses_triton",
]

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


#: The ``semicrf_kernels`` operator namespace every op folder registers into.
LIBRARY = torch.library.Library("semicrf_kernels", "FRAGMENT")


def _infer_schema(fn: Callable[..., object]) -> str:
    infer = getattr(torch.library, "infer_schema", None)
    if infer is None:  # torch 2.4: only the private spelling
        from torch._library.infer_schema import infer_schema as infer
    return infer(fn, mutates_args=())


def define_op(
    qualname: str,
) -> Callable[[Callable[..., object]], Callable[..., object]]:
    """Register the decorated function as the operator ``qualname``, for every device.

    ``torch.library.define`` + ``torch.library.impl`` rather than ``torch.library.custom_op``:
    the latter wraps the implementation in ``torch._disable_dynamo``, which imports
    ``torch._dynamo`` (seconds) on the first eager call. Under ``torch.compile`` the operator
    is an opaque node either way. The schema is inferred from the annotations as
    ``custom_op`` does; the function is returned unchanged.
    """

    def register(fn: Callable[..., object]) -> Callable[..., object]:
        torch.library.define(qualname, _infer_schema(fn), lib=LIBRARY)
        torch.library.impl(qualname, "default", fn, lib=LIBRARY)
        return fn

    return register


def register_fake(
    qualname: str,
) -> Callable[[Callable[..., object]], Callable[..., object]]:
    """``torch.library.register_fake`` into :data:`LIBRARY` (a decorator)."""
    return torch.library.register_fake(qualname, lib=LIBRARY)


def register_autograd(
    qualname: str, backward: Callable[..., object], setup_context: Callable[..., object]
) -> None:
    """``torch.library.register_autograd`` into :data:`LIBRARY`."""
    torch.library.register_autograd(qualname, backward, setup_context=setup_context, lib=LIBRARY)
