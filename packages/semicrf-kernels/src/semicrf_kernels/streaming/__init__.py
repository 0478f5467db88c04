"""Streaming forward/backward of the semi-CRF and its low-level components.

Re-exported by the meta-package as ``flash_semicrf.streaming``. The Triton names
(``SemiCRFStreamingTriton`` and, when Triton is installed, the launchers) are imported on first
use, so this package imports without Triton.
"""

from __future__ import annotations

import importlib
from typing import Any

from .._triton_support import HAS_TRITON
from ..constants import NEG_INF
from ..edge_block import compute_edge_block_streaming
from ..viterbi import ViterbiPath, score_path_segments, semi_crf_streaming_viterbi
from .api import semi_crf_streaming_forward
from .pytorch import (
    SemiCRFStreaming,
    StreamingMarginals,
    streaming_forward_pytorch,
    streaming_marginals_pytorch,
)

__all__ = [
    "HAS_TRITON",
    "NEG_INF",
    "SemiCRFStreaming",
    "StreamingMarginals",
    "ViterbiPath",
    "compute_edge_block_streaming",
    "score_path_segments",
    "semi_crf_streaming_forward",
    "semi_crf_streaming_viterbi",
    "streaming_forward_pytorch",
    "streaming_marginals_pytorch",
]

#: name -> (module relative to this package, attribute), imported lazily.
_LAZY = {
    "SemiCRFStreamingTriton": (".triton_autograd", "SemiCRFStreamingTriton"),
    "launch_streaming_triton_kernel": (".triton_forward", "launch_streaming_triton_kernel"),
    "launch_streaming_triton_backward": (".triton_backward", "launch_streaming_triton_backward"),
    "launch_streaming_triton_kernel_max_bp": (
        "..viterbi.triton",
        "launch_streaming_triton_kernel_max_bp",
    ),
    "semi_crf_streaming_viterbi_triton": ("..viterbi.triton", "semi_crf_streaming_viterbi_triton"),
}
if HAS_TRITON:
    __all__ += [name for name in _LAZY if name not in __all__]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        if not HAS_TRITON:
            raise AttributeError(f"{name} requires Triton, which is not installed")
        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module, __name__), attribute)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
