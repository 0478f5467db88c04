"""Checkpointed and sharded semirings, under the documented import path (docs/api/).

``CheckpointSemiring(S)`` and ``CheckpointShardSemiring(S, max_size)`` return subclasses of the
semiring ``S`` whose ``matmul`` keeps less memory for the same values and gradients; they are the
objects of ``semicrf_semirings.checkpoint``, re-exported.
"""

from semicrf_semirings.checkpoint import CheckpointSemiring, CheckpointShardSemiring, matmul_size

__all__ = ["CheckpointSemiring", "CheckpointShardSemiring", "matmul_size"]
