"""Exact sampling of segmentations from the streaming model (forward filtering, backward sampling)."""

from __future__ import annotations

from .api import semi_crf_streaming_sample
from .pytorch import streaming_sample_pytorch

__all__ = ["semi_crf_streaming_sample", "streaming_sample_pytorch"]
