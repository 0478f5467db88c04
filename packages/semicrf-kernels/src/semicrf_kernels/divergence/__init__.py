"""Exact cross-entropy and KL divergence between two streaming models (from p's marginals)."""

from __future__ import annotations

from .api import semi_crf_streaming_cross_entropy, semi_crf_streaming_kl_divergence
from .pytorch import FeatureMarginals, expected_score, feature_marginals

__all__ = [
    "FeatureMarginals",
    "expected_score",
    "feature_marginals",
    "semi_crf_streaming_cross_entropy",
    "semi_crf_streaming_kl_divergence",
]
