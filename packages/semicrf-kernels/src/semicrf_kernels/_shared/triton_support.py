"""Whether Triton is usable, and whether it runs in interpreter mode.

Triton is an optional dependency: this package imports and works on the CPU without it.
``TRITON_INTERPRET=1`` must be set before the kernels are defined (i.e. before this package is
imported) for the interpreter to be used; then the kernels also run on CPU tensors.
"""

from __future__ import annotations

import importlib.util
import os

import torch

HAS_TRITON: bool = importlib.util.find_spec("triton") is not None


def triton_interpret_enabled() -> bool:
    """True when ``TRITON_INTERPRET=1`` (Triton kernels run on the CPU, for tests)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def triton_available_for(tensor: torch.Tensor) -> bool:
    """True when the Triton kernels can run on ``tensor``'s device."""
    if not HAS_TRITON:
        return False
    if tensor.is_cuda:
        return True
    return triton_interpret_enabled() and tensor.device.type == "cpu"
