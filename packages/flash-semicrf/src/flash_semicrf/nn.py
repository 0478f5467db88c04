"""The neural-network layer (``semicrf_nn``) re-exported: CRF heads, durations, results, metrics.

All names are the objects of ``semicrf_nn``. ``SemiCRFLightningModule`` (from
``semicrf_nn.lightning``) resolves on first access and only when ``lightning`` (or
``pytorch_lightning``) is installed.
"""

from __future__ import annotations

from typing import Any

from semicrf_nn import (
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

from ._optional import HAS_LIGHTNING

__all__ = [
    "HAS_LIGHTNING",
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
    "SemiMarkovCRFHead",
    "UncertaintySemiMarkovCRFHead",
    "UniformDuration",
    "ViterbiResult",
    "boundary_f1",
    "create_duration_distribution",
    "labels_to_segment_lists",
    "labels_to_segments",
    "score_gold_vectorized",
    "segments_to_labels",
]
if HAS_LIGHTNING:
    __all__ += ["SemiCRFLightningModule"]  # noqa: F822 (resolved by __getattr__)


def __getattr__(name: str) -> Any:
    # Importing lightning takes seconds; pay for it only when the wrapper is asked for.
    if name == "SemiCRFLightningModule":
        if not HAS_LIGHTNING:
            raise AttributeError(
                "SemiCRFLightningModule needs the 'lightning' package, which is not installed "
                "(pip install 'flash-semicrf[lightning]')"
            )
        from semicrf_nn.lightning import SemiCRFLightningModule

        return SemiCRFLightningModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
