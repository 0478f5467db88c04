"""Posterior marginals (boundary, position, segment start/end) and entropy of the streaming model.

Faces: :mod:`.pytorch` (the scans and the shared assembly) and :mod:`.api`
(``streaming_marginals``: the same on the CPU path's scans, compiled where they apply). A Triton
face and a custom op would sit beside them as ``triton.py`` and ``op.py``.
"""

from .api import streaming_marginals
from .pytorch import StreamingMarginals, streaming_marginals_pytorch

__all__ = ["StreamingMarginals", "streaming_marginals", "streaming_marginals_pytorch"]
