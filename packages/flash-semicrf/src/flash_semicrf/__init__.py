"""flash-semicrf: fast, exact semi-Markov CRFs for PyTorch.

This meta-package gathers the public API of its four layers under one import; every name is the
very object of the layer that defines it (re-exported, never wrapped or copied):

* ``semicrf_nn``: ``SemiMarkovCRFHead``, ``UncertaintySemiMarkovCRFHead``,
  ``SemiCRFDistribution``, ``Segment``, ``ViterbiResult``, the duration distributions, gold
  scoring and boundary metrics;
* ``semicrf_kernels``: ``semi_crf_streaming_forward``, ``semi_crf_streaming_viterbi``,
  ``ViterbiPath``, ``Segmentation``, ``semi_crf_streaming_sample``, ``semi_crf_streaming_topk``,
  the streaming cross-entropy and KL, ``labels_to_segments``, ``segments_to_labels``,
  ``SemiCRFStreaming``, ``compute_edge_block_streaming``, ``NEG_INF``;
* ``semicrf_core``: ``SemiMarkov``, ``BandedMatrix``, ``BlockTriangularMatrix`` and the orderings;
* ``semicrf_semirings``: under ``flash_semicrf.semirings`` (and ``.semirings.checkpoint``).

Low-level streaming pieces (Triton launchers included) are in ``flash_semicrf.streaming``.
``SemiCRFLightningModule`` is exported only when ``lightning`` is installed. ``versions()``
names the version of each layer in use.
"""

from __future__ import annotations

from typing import Any

import semicrf_core
import semicrf_kernels
import semicrf_nn
import semicrf_semirings

# Submodules, importable as attributes but kept out of __all__: a star import must not shadow
# `torch.nn`.
from . import core as core
from . import nn as nn
from . import semirings as semirings
from . import streaming as streaming
from ._optional import HAS_LIGHTNING
from .core import (
    BandedMatrix,
    BlockTriangularMatrix,
    SemiMarkov,
    apply_permutation,
    block_triang_matmul,
    hsmm,
    measure_effective_bandwidth,
    rcm_ordering_from_adjacency,
    snake_ordering,
)
from .nn import (
    BoundaryScores,
    CallableDuration,
    DurationDistribution,
    GeometricDuration,
    LearnedDuration,
    NegativeBinomialDuration,
    PoissonDuration,
    Segment,
    Segmentation,
    SegmentationMarginals,
    SemiCRFDistribution,
    SemiMarkovCRFHead,
    UncertaintySemiMarkovCRFHead,
    UniformDuration,
    ViterbiResult,
    boundary_f1,
    create_duration_distribution,
    labels_to_segment_lists,
    labels_to_segments,
    score_gold_vectorized,
    segments_to_labels,
)
from .streaming import (
    HAS_TRITON,
    NEG_INF,
    SemiCRFStreaming,
    StreamingMarginals,
    ViterbiPath,
    compute_edge_block_streaming,
    score_path_segments,
    semi_crf_streaming_cross_entropy,
    semi_crf_streaming_forward,
    semi_crf_streaming_kl_divergence,
    semi_crf_streaming_sample,
    semi_crf_streaming_topk,
    semi_crf_streaming_viterbi,
    streaming_marginals,
    streaming_marginals_pytorch,
)

__version__ = "0.1.0"

#: Distribution name -> version of the four layers this meta-package imports.
__layer_versions__: dict[str, str] = {
    "semicrf-semirings": semicrf_semirings.__version__,
    "semicrf-core": semicrf_core.__version__,
    "semicrf-kernels": semicrf_kernels.__version__,
    "semicrf-nn": semicrf_nn.__version__,
}


def versions() -> dict[str, str]:
    """Versions of flash-semicrf and of each layer it imports.

    Returns:
        A new dict ``{distribution name: version}`` with the keys ``"flash-semicrf"``,
        ``"semicrf-semirings"``, ``"semicrf-core"``, ``"semicrf-kernels"`` and ``"semicrf-nn"``.
        Useful in bug reports: the layers are released separately and pinned by this package.
    """
    return {"flash-semicrf": __version__, **__layer_versions__}


__all__ = [
    "HAS_LIGHTNING",
    "HAS_TRITON",
    "NEG_INF",
    "BandedMatrix",
    "BlockTriangularMatrix",
    "BoundaryScores",
    "CallableDuration",
    "DurationDistribution",
    "GeometricDuration",
    "LearnedDuration",
    "NegativeBinomialDuration",
    "PoissonDuration",
    "Segment",
    "Segmentation",
    "SegmentationMarginals",
    "SemiCRFDistribution",
    "SemiCRFStreaming",
    "SemiMarkov",
    "SemiMarkovCRFHead",
    "StreamingMarginals",
    "UncertaintySemiMarkovCRFHead",
    "UniformDuration",
    "ViterbiPath",
    "ViterbiResult",
    "__layer_versions__",
    "__version__",
    "apply_permutation",
    "block_triang_matmul",
    "boundary_f1",
    "compute_edge_block_streaming",
    "create_duration_distribution",
    "hsmm",
    "labels_to_segment_lists",
    "labels_to_segments",
    "measure_effective_bandwidth",
    "rcm_ordering_from_adjacency",
    "score_gold_vectorized",
    "score_path_segments",
    "segments_to_labels",
    "semi_crf_streaming_cross_entropy",
    "semi_crf_streaming_forward",
    "semi_crf_streaming_kl_divergence",
    "semi_crf_streaming_sample",
    "semi_crf_streaming_topk",
    "semi_crf_streaming_viterbi",
    "snake_ordering",
    "streaming_marginals",
    "streaming_marginals_pytorch",
    "versions",
]
# Resolved by __getattr__ below, and only where their dependency is installed.
if HAS_TRITON:
    __all__ += ["SemiCRFStreamingTriton"]
if HAS_LIGHTNING:
    __all__ += ["SemiCRFLightningModule"]


def __getattr__(name: str) -> Any:
    # Resolved on first access: Triton kernels and lightning are slow to import.
    if name == "SemiCRFStreamingTriton":
        return streaming.SemiCRFStreamingTriton
    if name == "SemiCRFLightningModule":
        if not HAS_LIGHTNING:
            raise AttributeError(
                "SemiCRFLightningModule needs the 'lightning' package, which is not installed "
                "(pip install 'flash-semicrf[lightning]')"
            )
        return nn.SemiCRFLightningModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
