"""Semirings for structured prediction in PyTorch (pytorch-struct style).

Every semiring is a stateless class used as a namespace; `KMaxSemiring(k)` and the wrappers of
`semicrf_semirings.checkpoint` are factories returning such classes.
"""

from .base import NEG_INF, LogSpaceSemiring, Semiring
from .checkpoint import CheckpointSemiring, CheckpointShardSemiring
from .cross_entropy import CrossEntropySemiring
from .entropy import EntropySemiring
from .kl_divergence import KLDivergenceSemiring
from .kmax import KMaxSemiring
from .log import LogSemiring
from .max import MaxSemiring
from .std import StdSemiring

__version__ = "0.1.0"

__all__ = [
    "NEG_INF",
    "CheckpointSemiring",
    "CheckpointShardSemiring",
    "CrossEntropySemiring",
    "EntropySemiring",
    "KLDivergenceSemiring",
    "KMaxSemiring",
    "LogSemiring",
    "LogSpaceSemiring",
    "MaxSemiring",
    "Semiring",
    "StdSemiring",
    "__version__",
]
