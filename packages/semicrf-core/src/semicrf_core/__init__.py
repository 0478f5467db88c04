"""Semi-Markov CRF dynamic programs over edge tensors, banded and block-triangular matrices.

`SemiMarkov(semiring)` computes partition functions (any semiring of `semicrf_semirings`),
marginals and scores over edge potentials `(batch, N-1, K, C, C)` with
`edge[b, s, d, c_dst, c_src]` (index `d` = duration, index 0 unused; docs/conventions.md
section 3). `BandedMatrix`, `BlockTriangularMatrix` and the ordering utilities are the sparse
building blocks of its tree algorithms.
"""

from .banded_matrix import BandedMatrix
from .block_triangular import BlockTriangularMatrix, block_triang_matmul
from .brute_force import Structure, brute_force_logpartition, enumerate_structures
from .orderings import (
    apply_permutation,
    measure_effective_bandwidth,
    rcm_ordering_from_adjacency,
    snake_ordering,
)
from .parts import from_parts, hsmm, to_parts
from .semimarkov import SemiMarkov

__version__ = "0.1.0"

__all__ = [
    "BandedMatrix",
    "BlockTriangularMatrix",
    "SemiMarkov",
    "Structure",
    "__version__",
    "apply_permutation",
    "block_triang_matmul",
    "brute_force_logpartition",
    "enumerate_structures",
    "from_parts",
    "hsmm",
    "measure_effective_bandwidth",
    "rcm_ordering_from_adjacency",
    "snake_ordering",
    "to_parts",
]
