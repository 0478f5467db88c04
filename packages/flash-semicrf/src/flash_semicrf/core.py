"""The edge-tensor layer (``semicrf_core``) re-exported: ``SemiMarkov``, sparse matrices, orderings.

``SemiMarkov(semiring)`` works on pre-computed edge potentials ``(batch, N-1, K, C, C)`` with
``edge[b, s, d, c_dst, c_src]`` (``d`` the duration, index 0 unused) in any of the seven
semirings; see ``docs/conventions.md`` section 3. All names are the objects of ``semicrf_core``.
"""

from semicrf_core import (
    BandedMatrix,
    BlockTriangularMatrix,
    SemiMarkov,
    Structure,
    apply_permutation,
    block_triang_matmul,
    brute_force_logpartition,
    enumerate_structures,
    from_parts,
    hsmm,
    measure_effective_bandwidth,
    rcm_ordering_from_adjacency,
    snake_ordering,
    to_parts,
)

__all__ = [
    "BandedMatrix",
    "BlockTriangularMatrix",
    "SemiMarkov",
    "Structure",
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
