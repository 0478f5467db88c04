"""Viterbi decoding of the streaming semi-CRF: result type, PyTorch and Triton decoders."""

from __future__ import annotations

import importlib
from typing import Any

from .._shared.triton_support import HAS_TRITON
from .api import semi_crf_streaming_viterbi
from .path import ViterbiPath, score_path_segments
from .pytorch import streaming_viterbi_pytorch

__all__ = [
    "ViterbiPath",
    "score_path_segments",
    "semi_crf_streaming_viterbi",
    "streaming_viterbi_pytorch",
]

# Triton launchers, imported on first use so this package imports without Triton.
_TRITON_NAMES = (
    "launch_streaming_triton_kernel_max_bp",
    "segment_scores_triton",
    "semi_crf_streaming_viterbi_triton",
)
if HAS_TRITON:
    __all__ += list(_TRITON_NAMES)


def __getattr__(name: str) -> Any:
    if name in _TRITON_NAMES:
        if not HAS_TRITON:
            raise AttributeError(f"{name} requires Triton, which is not installed")
        return getattr(importlib.import_module(".triton", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
