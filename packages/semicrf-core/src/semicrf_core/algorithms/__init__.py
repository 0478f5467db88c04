"""The dynamic programs behind `SemiMarkov.logpartition`, one per module.

Every function takes a semiring class, the *converted* edge potentials
`(ssize, batch, N-1, K, C, C)` (`edge[..., s, d, c_dst, c_src]`, index `d` = duration, index 0
unused) and `lengths (batch,)` int64 fences in `[2, N]` on the same device, and returns the
converted log-partition `(ssize, batch)`. They all compute the same value (conventions section 3).
"""

from .banded import banded_tree
from .binary_tree import binary_tree
from .block_triangular import block_triangular_tree
from .linear_scan import linear_scan
from .vectorized import vectorized_scan

__all__ = [
    "banded_tree",
    "binary_tree",
    "block_triangular_tree",
    "linear_scan",
    "vectorized_scan",
]
