"""Shared by the precision-guard tests: the marginal identities at a given magnitude.

Wherever the guard stays silent, the position marginals (the gradient of log Z with respect to
the per-position scores) must lie in [0, 1] and sum to 1 within 1e-5 at every valid position, and
the transition gradient must sum to what the duration gradient sums to (both are the expected
number of segments).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import torch

from semicrf_kernels import cumulative_scores, semi_crf_streaming_forward
from semicrf_kernels._shared import precision
from semicrf_kernels.validation import PrecisionWarning


class IdentityErrors(NamedTuple):
    rowsum: float  # max |sum_c p(t, c) - 1| over valid positions
    outside: float  # how far a marginal leaves [0, 1]
    counts: float  # |sum(d logZ / d transition) - sum(d logZ / d duration_bias)| / the latter
    magnitude: float  # max |cum_scores| over valid rows
    warned: int  # PrecisionWarnings raised by the call


def identity_errors(
    dtype: torch.dtype, magnitude: float, *, use_triton: bool, device: str, seed: int
) -> IdentityErrors:
    """Run a forward and backward with ``max |cum_scores|`` about ``magnitude`` in ``dtype``."""
    g = torch.Generator().manual_seed(seed)
    B, T, C, K = 2, 40, 3, 5
    # An offset per position makes |cum| grow to `magnitude` at the end of the longest sequence,
    # as uncentred emissions do; the noise keeps the marginals non-trivial.
    noise = torch.randn(B, T, C, generator=g, dtype=torch.float64)
    scores = (magnitude / T + noise).to(device).requires_grad_(True)
    cum = cumulative_scores(scores).to(dtype)
    trans = torch.randn(C, C, generator=g, dtype=torch.float64).to(device, dtype)
    bias = torch.randn(K, C, generator=g, dtype=torch.float64).to(device, dtype)
    trans.requires_grad_(True)
    bias.requires_grad_(True)
    lengths = torch.tensor([T, 23], device=device)
    precision._warned_sites.clear()  # each call is a new call site for the count below
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        log_z = semi_crf_streaming_forward(cum, trans, bias, lengths, K, use_triton=use_triton)
    g_scores, g_trans, g_bias = torch.autograd.grad(log_z.sum(), (scores, trans, bias))
    valid = torch.arange(T, device=device)[None, :] < lengths[:, None]
    pos = g_scores.double()[valid]  # (positions, C)
    expected_segments = float(g_bias.double().sum())
    return IdentityErrors(
        rowsum=float((pos.sum(-1) - 1).abs().max()),
        outside=max(float((-pos).max()), float((pos - 1).max()), 0.0),
        counts=abs(float(g_trans.double().sum()) - expected_segments) / expected_segments,
        magnitude=float(cum.double().abs().max()),
        warned=sum(issubclass(w.category, PrecisionWarning) for w in caught),
    )
