"""Helpers shared by the semicrf-nn tests: random heads and batches, and the model's inputs
recomputed by plain formulas for brute-force enumeration. (Made importable by conftest.py.)"""

from __future__ import annotations

import math

import torch

from semicrf_kernels.testing.brute_force import brute_force_streaming
from semicrf_nn import SemiMarkovCRFHead

H = 4


def make_head(C, K, *, hidden=True, scale=0.7, **kwargs) -> SemiMarkovCRFHead:
    """A float64 head whose parameters are all random (not the zero/small init)."""
    head = SemiMarkovCRFHead(
        C, K, hidden_dim=H if hidden else None, init_scale=scale, **kwargs
    ).double()
    with torch.no_grad():
        for name, p in head.named_parameters():
            if name != "transition_raw":
                p.add_(torch.randn_like(p) * scale)
    return head


def make_batch(B, T, features, seed=0):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(B, T, features, generator=g, dtype=torch.float64)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    lengths[0] = T
    return hidden, lengths


def independent_inputs(head: SemiMarkovCRFHead, hidden: torch.Tensor, lengths: torch.Tensor):
    """The model's inputs from the head's parameters by plain float64 formulas (one loop per
    sequence), independent of semicrf_nn.preprocess."""
    B, T, _ = hidden.shape
    C = head.num_classes
    x = hidden.double()
    if head.projection is not None:
        x = x @ head.projection.weight.double().T + head.projection.bias.double()
    scores = torch.zeros(B, T, C, dtype=torch.float64)
    ps = pe = None
    if head.use_boundary_projections:
        ps = x.new_zeros(B, T, C) + hidden.double() @ head.proj_start_layer.weight.double().T
        pe = x.new_zeros(B, T, C) + hidden.double() @ head.proj_end_layer.weight.double().T
    if head.use_sequence_boundaries:
        ps = torch.zeros(B, T, C, dtype=torch.float64) if ps is None else ps.clone()
        pe = torch.zeros(B, T, C, dtype=torch.float64) if pe is None else pe.clone()
    for b in range(B):
        L = int(lengths[b])
        s = x[b, :L]
        scores[b, :L] = s - s.mean(0) if head.center_emissions else s
        if head.use_sequence_boundaries:
            ps[b, 0] += head.pi_start.double()
            pe[b, L - 1] += head.pi_end.double()
    cum = torch.cat([torch.zeros(B, 1, C, dtype=torch.float64), scores.cumsum(1)], 1)
    trans = head.transition_raw.double()
    if head.transition_mask is not None:
        trans = trans.masked_fill(~head.transition_mask, -math.inf)
    return (
        cum.detach(),
        trans.detach(),
        head.duration_dist().double().detach(),
        (None if ps is None else ps.detach()),
        None if pe is None else pe.detach(),
    )


def brute(head, hidden, lengths):
    cum, trans, db, ps, pe = independent_inputs(head, hidden, lengths)
    return brute_force_streaming(cum, trans, db, lengths, head.max_duration, ps, pe), (
        cum,
        trans,
        db,
        ps,
        pe,
    )


def feature_dim(head):
    return head.hidden_dim if head.hidden_dim is not None else head.num_classes
