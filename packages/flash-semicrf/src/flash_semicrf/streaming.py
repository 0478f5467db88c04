"""Low-level streaming components, under the documented import path (docs/api/).

Everything here is an object of ``semicrf_kernels`` re-exported unchanged:

* ``compute_edge_block_streaming(cum_scores, transition, duration_bias, start, k)``: the edge
  block ``(batch, C_dest, C_src)`` of the segments ``[start, start + k)``, computed on the fly.
* ``SemiCRFStreaming``: the ``autograd.Function`` without Triton (the CPU path: compiled scans on
  the CPU where they apply, else PyTorch), ``O(KC)`` working memory.
* ``streaming_marginals``: boundary / position marginals and entropy on the CPU path's scans
  (``streaming_marginals_pytorch``: always the PyTorch scans).
* ``HAS_TRITON``: whether Triton is installed; then ``SemiCRFStreamingTriton`` (the same with
  hand-written Triton forward and backward kernels) and the launchers
  ``launch_streaming_triton_kernel``, ``launch_streaming_triton_backward``,
  ``launch_streaming_triton_kernel_max_bp`` and ``semi_crf_streaming_viterbi_triton`` import
  from here too.
* ``semi_crf_streaming_sample`` / ``semi_crf_streaming_topk``: exact samples and the k best
  segmentations as a ``Segmentation``; ``semi_crf_streaming_cross_entropy`` /
  ``semi_crf_streaming_kl_divergence`` between two models; ``labels_to_segments`` /
  ``segments_to_labels``.
* ``NEG_INF``: the large finite negative float (``-1e9``) used as log-space minus infinity
  (``docs/conventions.md`` section 1 says why not ``-1e38``).

The Triton names are resolved on first use, so importing this module never compiles or imports
Triton kernels.
"""

from __future__ import annotations

from typing import Any

from semicrf_kernels import (
    Segmentation,
    labels_to_segments,
    segments_to_labels,
    semi_crf_streaming_cross_entropy,
    semi_crf_streaming_kl_divergence,
    semi_crf_streaming_sample,
    semi_crf_streaming_topk,
)
from semicrf_kernels import streaming as _kernels_streaming
from semicrf_kernels.streaming import (
    HAS_TRITON,
    NEG_INF,
    SemiCRFStreaming,
    StreamingMarginals,
    ViterbiPath,
    compute_edge_block_streaming,
    score_path_segments,
    semi_crf_streaming_forward,
    semi_crf_streaming_viterbi,
    streaming_forward_pytorch,
    streaming_marginals,
    streaming_marginals_pytorch,
)

#: Names resolved lazily from ``semicrf_kernels.streaming`` (Triton code).
_TRITON_NAMES = (
    "SemiCRFStreamingTriton",
    "launch_streaming_triton_backward",
    "launch_streaming_triton_kernel",
    "launch_streaming_triton_kernel_max_bp",
    "semi_crf_streaming_viterbi_triton",
)

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
if HAS_TRITON:
    __all__ += list(_TRITON_NAMES)


def __getattr__(name: str) -> Any:
    # The kernels layer imports its Triton modules on first access; keep that laziness here.
    if name in _TRITON_NAMES:
        return getattr(_kernels_streaming, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
