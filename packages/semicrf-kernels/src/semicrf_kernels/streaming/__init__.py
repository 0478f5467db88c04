"""Streaming forward/backward of the semi-CRF and its low-level components (a public facade).

Re-exported by the meta-package as ``flash_semicrf.streaming``. The code lives in the op
folders (:mod:`semicrf_kernels.logpartition`, :mod:`semicrf_kernels.viterbi`,
:mod:`semicrf_kernels.marginals`, :mod:`semicrf_kernels.sampling`, :mod:`semicrf_kernels.topk`,
:mod:`semicrf_kernels.divergence`); this package only gathers their public names. The Triton names
(``SemiCRFStreamingTriton`` and, when Triton is installed, the launchers) are imported on first
use, so this package imports without Triton.
"""

from __future__ import annotations

import importlib
from typing import Any

from .._shared.triton_support import HAS_TRITON
from ..constants import NEG_INF
from ..divergence import semi_crf_streaming_cross_entropy, semi_crf_streaming_kl_divergence
from ..edge_block import compute_edge_block_streaming
from ..logpartition import SemiCRFStreaming, semi_crf_streaming_forward, streaming_forward_pytorch
from ..marginals import StreamingMarginals, streaming_marginals, streaming_marginals_pytorch
from ..sampling import semi_crf_streaming_sample
from ..segmentation import Segmentation, labels_to_segments, segments_to_labels
from ..topk import semi_crf_streaming_topk
from ..viterbi import ViterbiPath, score_path_segments, semi_crf_streaming_viterbi

__all__ = [
    "HAS_TRITON",
    "NEG_INF",
    "Segmentation",
    "SemiCRFStreaming",
    "StreamingMarginals",
    "ViterbiPath",
    "compute_edge_block_streaming",
    "labels_to_segments",
    "score_path_segments",
    "segments_to_labels",
    "semi_crf_streaming_cross_entropy",
    "semi_crf_streaming_forward",
    "semi_crf_streaming_kl_divergence",
    "semi_crf_streaming_sample",
    "semi_crf_streaming_topk",
    "semi_crf_streaming_viterbi",
    "streaming_forward_pytorch",
    "streaming_marginals",
    "streaming_marginals_pytorch",
]

#: name -> (module relative to this package, attribute), imported lazily.
_LAZY = {
    "SemiCRFStreamingTriton": ("..logpartition.autograd", "SemiCRFStreamingTriton"),
    "launch_streaming_triton_kernel": (
        "..logpartition.triton_scan",
        "launch_streaming_triton_kernel",
    ),
    "launch_streaming_triton_backward": (
        "..logpartition.triton",
        "launch_streaming_triton_backward",
    ),
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
