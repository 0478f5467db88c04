"""semicrf-kernels: streaming semi-CRF forward, backward, Viterbi, top-k, sampling and KL.

One folder per operation (:mod:`.logpartition`, :mod:`.viterbi`, :mod:`.marginals`,
:mod:`.cumulative`), each with the same faces: ``pytorch.py``, ``triton*.py``, ``op.py``; shared
code in :mod:`._shared`; test oracles in :mod:`.testing` (see ``docs/dev/architecture.md``).

Triton kernels for the GPU, vectorised PyTorch for the CPU; both compute the model of
``docs/conventions.md`` section 1 from ``cum_scores (batch, T+1, C)`` without materialising any
``T K C`` tensor. The Triton names are imported on first use, so the package imports without
Triton.
"""

from __future__ import annotations

from typing import Any

from . import streaming as _streaming
from ._shared.numba_support import cpu_path, set_cpu_path
from ._shared.triton_support import HAS_TRITON
from .constants import NEG_INF
from .cumulative import cumulative_scores
from .divergence import semi_crf_streaming_cross_entropy, semi_crf_streaming_kl_divergence
from .edge_block import compute_edge_block_streaming
from .sampling import semi_crf_streaming_sample
from .segmentation import Segmentation, labels_to_segments, segments_to_labels
from .segmentation_score import score_segmentation_tensors
from .streaming import (
    SemiCRFStreaming,
    StreamingMarginals,
    semi_crf_streaming_forward,
    streaming_marginals,
    streaming_marginals_pytorch,
)
from .topk import semi_crf_streaming_topk
from .viterbi import ViterbiPath, score_path_segments, semi_crf_streaming_viterbi

__version__ = "0.1.0"

__all__ = [
    "HAS_TRITON",
    "NEG_INF",
    "Segmentation",
    "SemiCRFStreaming",
    "StreamingMarginals",
    "ViterbiPath",
    "__version__",
    "compute_edge_block_streaming",
    "cpu_path",
    "cumulative_scores",
    "labels_to_segments",
    "score_path_segments",
    "score_segmentation_tensors",
    "segments_to_labels",
    "semi_crf_streaming_cross_entropy",
    "semi_crf_streaming_forward",
    "semi_crf_streaming_kl_divergence",
    "semi_crf_streaming_sample",
    "semi_crf_streaming_topk",
    "semi_crf_streaming_viterbi",
    "set_cpu_path",
    "streaming_marginals",
    "streaming_marginals_pytorch",
]
if HAS_TRITON:
    __all__ += [
        "SemiCRFStreamingTriton",
        "launch_streaming_triton_backward",
        "launch_streaming_triton_kernel",
        "launch_streaming_triton_kernel_max_bp",
        "semi_crf_streaming_viterbi_triton",
    ]


def __getattr__(name: str) -> Any:
    # SemiCRFStreamingTriton and the launchers live in semicrf_kernels.streaming (lazily).
    if name in _streaming._LAZY:
        return getattr(_streaming, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
