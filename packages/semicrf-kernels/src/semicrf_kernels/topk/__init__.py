"""The k best segmentations of the streaming model (k-best lists per position and label)."""

from __future__ import annotations

from .api import semi_crf_streaming_topk
from .pytorch import streaming_topk_pytorch

__all__ = ["semi_crf_streaming_topk", "streaming_topk_pytorch"]
