"""The seven semirings of ``semicrf_semirings``, under the documented import path (docs/api/).

``from flash_semicrf.semirings import LogSemiring, MaxSemiring, ...`` gives the very classes of
``semicrf_semirings`` (re-exported, not copied). The memory-saving wrappers live in
:mod:`flash_semicrf.semirings.checkpoint`.
"""

from semicrf_semirings import (
    NEG_INF,
    CrossEntropySemiring,
    EntropySemiring,
    KLDivergenceSemiring,
    KMaxSemiring,
    LogSemiring,
    LogSpaceSemiring,
    MaxSemiring,
    Semiring,
    StdSemiring,
)

from . import checkpoint

__all__ = [
    "NEG_INF",
    "CrossEntropySemiring",
    "EntropySemiring",
    "KLDivergenceSemiring",
    "KMaxSemiring",
    "LogSemiring",
    "LogSpaceSemiring",
    "MaxSemiring",
    "Semiring",
    "StdSemiring",
    "checkpoint",
]
