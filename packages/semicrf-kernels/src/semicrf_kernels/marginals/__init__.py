"""Posterior marginals (boundary, position, segment start/end) and entropy of the streaming model.

Only a PyTorch face today (:mod:`.pytorch`); a Triton face and a custom op would sit beside it
as ``triton.py`` and ``op.py``, as in the other op folders.
"""

from .pytorch import StreamingMarginals, streaming_marginals_pytorch

__all__ = ["StreamingMarginals", "streaming_marginals_pytorch"]
