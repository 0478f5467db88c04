"""TEST ORACLES, not for production use: the plain float64 reference of the streaming model and
the brute-force enumerator of segmentations.

Slow on purpose (Python loops over every position, duration and label; enumeration is
exponential in ``T``): they exist so that the PyTorch path, the Triton kernels and the
``semicrf_nn`` / ``flash_semicrf`` layers can be checked against the model of
``docs/conventions.md`` section 1, written as plainly as possible. Other packages' tests import
them from here.
"""

from .brute_force import (
    BruteForceResult,
    brute_force_streaming,
    enumerate_segmentations,
    score_segmentation,
)
from .reference import reference_forward, reference_viterbi

__all__ = [
    "BruteForceResult",
    "brute_force_streaming",
    "enumerate_segmentations",
    "reference_forward",
    "reference_viterbi",
    "score_segmentation",
]
