"""Semi-Markov CRF heads for PyTorch models: loss, decoding, marginals, duration distributions.

``SemiMarkovCRFHead`` sits on any encoder's ``(batch, T, hidden)`` output; the streaming
kernels of ``semicrf_kernels`` compute its partition function, gradients and Viterbi path in
``O(KC)`` memory. ``UncertaintySemiMarkovCRFHead`` adds exact posterior marginals and
entropy. ``SemiCRFDistribution`` is the distribution over segmentations (sampling, top-k,
KL), ``head.distribution(...)`` builds one. The PyTorch Lightning wrapper lives in ``semicrf_nn.lightning`` (optional).
"""

from semicrf_kernels import Segmentation, labels_to_segments, segments_to_labels

from .distribution import SegmentationMarginals, SemiCRFDistribution
from .durations import (
    CallableDuration,
    DurationDistribution,
    GeometricDuration,
    LearnedDuration,
    NegativeBinomialDuration,
    PoissonDuration,
    UniformDuration,
    create_duration_distribution,
)
from .gold import labels_to_segment_lists, score_gold_vectorized
from .head import SemiMarkovCRFHead
from .metrics import BoundaryScores, boundary_f1
from .segment import Segment, ViterbiResult
from .uncertainty import UncertaintySemiMarkovCRFHead

__version__ = "0.1.0"

__all__ = [
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
    "__version__",
    "boundary_f1",
    "create_duration_distribution",
    "labels_to_segment_lists",
    "labels_to_segments",
    "score_gold_vectorized",
    "segments_to_labels",
]
