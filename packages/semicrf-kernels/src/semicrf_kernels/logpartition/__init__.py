"""The log partition ``log Z`` of the streaming semi-CRF and all its gradients.

Faces: :mod:`.pytorch` (CPU path), :mod:`.triton_scan` / :mod:`.triton_grad` (kernels) with
:mod:`.triton` (launchers), :mod:`.op` (custom operators, fake implementations, autograd),
:mod:`.api` (the public function) and :mod:`.autograd` (``Function.apply`` interface). The
Triton names are imported on first use, so this package imports without Triton.
"""

from __future__ import annotations

import importlib
from typing import Any

from .._shared.triton_support import HAS_TRITON
from .api import semi_crf_streaming_forward
from .autograd import SemiCRFStreaming
from .pytorch import streaming_forward_pytorch

__all__ = ["SemiCRFStreaming", "semi_crf_streaming_forward", "streaming_forward_pytorch"]

#: name -> module (relative to this package) of the Triton names, imported lazily.
_LAZY = {
    "SemiCRFStreamingTriton": ".autograd",
    "launch_streaming_triton_kernel": ".triton_scan",
    "launch_streaming_triton_backward": ".triton",
    "launch_scans": ".triton",
}
if HAS_TRITON:
    __all__ += list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        if not HAS_TRITON:
            raise AttributeError(f"{name} requires Triton, which is not installed")
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
