"""Exact (edge-tensor) backends of the head, through ``semicrf_core.SemiMarkov``.

The streaming kernels never build the ``O(T K C^2)`` edge tensor; these backends do, which makes
every semiring available (entropy, ...) at short ``T``. They compute the same model as the
streaming kernels (conventions section 1), including the start score of the first segment:

``edge[b, s, d, c, c'] = seg(s, d, c) + transition_d[c', c]`` for ``s > 0``, and at ``s = 0``
the start score ``logsumexp_{c'} transition_d[c', c]`` in slot ``c' = 0`` with the semiring zero
in the other slots (``SemiMarkov`` sums over the first segment's source label as part of the
structure, so one live slot makes that sum the start score in every semiring). Index ``d`` is
the duration (``1..K``); slot 0 is unused.
"""

from __future__ import annotations

import torch

from semicrf_core import SemiMarkov
from semicrf_kernels import NEG_INF
from semicrf_semirings import LogSemiring, Semiring

from .gold import start_scores

__all__ = [
    "SHARD_MAX_SIZE",
    "build_edge_tensor",
    "check_edge_memory",
    "edge_tensor_bytes",
    "exact_sum",
]

#: Largest matmul intermediate (elements) the sharded backend materialises at a time.
SHARD_MAX_SIZE = 1 << 22


def edge_tensor_bytes(batch: int, T: int, K: int, C: int, dtype: torch.dtype) -> int:
    """Bytes of the ``(batch, T, K+1, C, C)`` edge tensor of the exact backends."""
    return batch * T * (K + 1) * C * C * torch.empty((), dtype=dtype).element_size()


def check_edge_memory(
    batch: int, T: int, K: int, C: int, dtype: torch.dtype, threshold: float, backend: str
) -> None:
    """Raise ``ValueError`` when the edge tensor would exceed ``threshold`` bytes."""
    need = edge_tensor_bytes(batch, T, K, C, dtype)
    if need > threshold:
        raise ValueError(
            f"backend={backend!r} needs a (batch={batch}, T={T}, K+1={K + 1}, C={C}, C={C}) edge "
            f"tensor of {need} bytes ({need / 1e9:.3g} GB), above edge_memory_threshold={threshold:.0f}; "
            "use backend='streaming' (O(KC) memory) or raise edge_memory_threshold"
        )


def build_edge_tensor(
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    K: int,
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
) -> torch.Tensor:
    """Edge potentials ``(batch, T, K+1, C_dst, C_src)`` of the streaming model.

    Args:
        cum_scores: ``(batch, T+1, C)`` float cumulative scores.
        transition: ``(C, C)`` or ``(K, C, C)``, ``transition[c_prev, c]``; ``-inf`` forbids.
        duration_bias: ``(K, C)``, row ``d-1`` for duration ``d``.
        K: longest segment.
        proj_start, proj_end: optional ``(batch, T, C)`` boundary scores.

    Returns:
        Differentiable edges in ``cum_scores``' dtype. Segments running past ``T``, the unused
        duration slot 0, the dead start slots and forbidden choices hold ``-inf`` (the zero of
        ``semicrf_semirings``, absorbing at any magnitude).
    """
    B, T1, C = cum_scores.shape
    T = T1 - 1
    device, dtype = cum_scores.device, cum_scores.dtype
    s = torch.arange(T, device=device)[:, None]  # (T, 1)
    d = torch.arange(1, K + 1, device=device)[None, :]  # (1, K)
    end = s + d  # exclusive end, (T, K)
    inside = end <= T
    end_c = end.clamp(max=T)
    seg = cum_scores[:, end_c, :] - cum_scores[:, s.expand(T, K), :]  # (B, T, K, C)
    seg = seg + _forbid(duration_bias.to(dtype))[None, None, :, :]
    if proj_start is not None:
        seg = seg + proj_start[:, :, None, :]
    if proj_end is not None:
        seg = seg + proj_end[:, (end_c - 1).clamp(min=0), :]
    # Forbidden choices (docs/conventions.md section 1) become -inf, the semirings' zero; the
    # rule reads the transitions and duration scores, never a segment's total, which may be far
    # below NEG_INF / 2 at large magnitudes and still allowed.
    trans = _forbid(transition.to(dtype))
    trans_k = trans.expand(K, C, C) if trans.ndim == 2 else trans  # (K, C_src, C_dst)
    link = trans_k.transpose(1, 2)[None, None].expand(B, T, K, C, C).clone()  # (.., C_dst, C_src)
    start = start_scores(trans_k)  # (K, C_dst)
    first = torch.full((K, C, C), -torch.inf, dtype=dtype, device=device)
    first[:, :, 0] = start
    link[:, 0] = first
    edge = seg[..., None] + link
    edge = torch.where(inside[None, :, :, None, None], edge, torch.full_like(edge, -torch.inf))
    zero_slot = torch.full((B, T, 1, C, C), -torch.inf, dtype=dtype, device=device)
    return torch.cat([zero_slot, edge], dim=2)


def _forbid(scores: torch.Tensor) -> torch.Tensor:
    """``scores`` with every forbidden entry (``<= NEG_INF / 2``, ``-inf`` or NaN) set to ``-inf``."""
    forbidden = (scores <= NEG_INF / 2) | torch.isnan(scores)
    return torch.where(forbidden, torch.full_like(scores, -torch.inf), scores)


def exact_sum(
    edge: torch.Tensor,
    lengths: torch.Tensor,
    semiring: type[Semiring] = LogSemiring,
    *,
    sharded: bool = False,
) -> torch.Tensor:
    """Semiring sum over all segmentations of the edge tensor.

    Args:
        edge: ``(batch, T, K+1, C, C)`` from :func:`build_edge_tensor`.
        lengths: ``(batch,)`` valid lengths (positions; fences are ``lengths + 1``).
        semiring: e.g. ``LogSemiring`` (log Z), ``MaxSemiring`` (Viterbi score),
            ``EntropySemiring``.
        sharded: use the sharded-checkpoint binary tree (matmuls in chunks of at most
            ``SHARD_MAX_SIZE`` intermediate elements, recomputed in backward) instead of the
            linear scan.

    Returns:
        ``(batch,)`` the unconverted result. For log and max, a sequence with no allowed
        segmentation gives ``-inf``; its entropy is 0.
    """
    fences = lengths.to(torch.int64) + 1
    if sharded:
        value = SemiMarkov(semiring).sum(edge, lengths=fences, checkpoint_shards=SHARD_MAX_SIZE)
    else:
        value = SemiMarkov(semiring).sum(edge, lengths=fences, use_linear_scan=True)
    return value
