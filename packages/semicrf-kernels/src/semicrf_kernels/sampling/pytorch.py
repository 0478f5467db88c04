"""Exact sampling of segmentations in PyTorch: forward filtering, then backward sampling.

The forward scan of :mod:`semicrf_kernels.logpartition.pytorch` (log semiring) stores, per position
``s`` and label ``c``, ``alpha[s, c]`` and (with ``(C, C)`` transitions) ``G[s, c] = A[s, c] -
cum[s, c] + proj_start[s, c]``. A segmentation is then drawn from its end backwards, exactly:

* the last label ``c`` with probability ``softmax_c alpha[L, c]``;
* given a segment with label ``c`` ending at ``t`` (exclusive), its duration ``d`` with
  probability proportional to ``G[t - d, c] + duration_bias[d - 1, c]`` (``O(K)``), then the
  previous label ``c'`` with probability proportional to ``alpha[t - d, c'] + transition[c', c]``
  (``O(C)``); with ``(K, C, C)`` transitions ``(d, c')`` jointly, proportional to
  ``alpha[t - d, c'] + transition[d - 1, c', c] + seg(t - d, d, c)`` (``O(K C)``);
* at ``t - d = 0`` the segment is the first: its link is the start score, and the draw stops.

Each factor is the exact conditional of the model of ``docs/conventions.md`` section 1 given
everything to its right, so the product is the model's distribution. Draws use inverse-CDF
sampling with uniforms from ``torch.rand(generator=...)``: the same generator state gives the
same samples. All samples of all sequences advance one segment per step (vectorised); memory is
O(batch T C) for the forward plus O(num_samples batch T) for the result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .._shared.inputs import KernelInputs, prepare_inputs
from .._shared.logspace import safe_logsumexp, safe_max_shift
from ..logpartition.pytorch import _forward_scan, _start_terms, _working_inputs
from ..segmentation import Segmentation
from ..segmentation_score import score_segmentation_tensors

__all__ = ["draw_categorical", "sample_with", "streaming_sample_pytorch"]


def draw_categorical(
    logits: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """One index per row of ``logits (rows, n)``, with probability ``softmax(logits)``.

    Inverse-CDF sampling from one uniform per row in ``(0, 1]``: the chosen index is the first
    whose cumulative mass reaches ``u`` times the total, so an entry of probability 0 (logit
    ``-inf``) is never chosen. Rows that are all ``-inf`` return 0 (the caller masks them).
    """
    shift = safe_max_shift(logits, dim=-1, keepdim=True)
    weights = torch.exp(logits - shift)
    cdf = weights.cumsum(dim=-1)
    u = 1.0 - torch.rand(
        logits.shape[:-1], generator=generator, dtype=cdf.dtype, device=logits.device
    )
    target = (u * cdf[..., -1])[..., None]
    return (cdf < target).sum(dim=-1).clamp(max=logits.shape[-1] - 1)


def _draw(
    inp: KernelInputs, alpha: torch.Tensor, start_part: torch.Tensor | None, num_samples: int,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Backward sampling: ``(num_samples * batch, T)`` bool starts and int64 labels at starts."""
    cum, trans, bias, lengths, K, _, _ = inp
    B, T1, C = cum.shape
    T = T1 - 1
    device = cum.device
    n = num_samples * B
    b = torch.arange(n, device=device) % B  # row i samples sequence i % B
    length = lengths[b]
    final = alpha[b, length]  # (n, C)
    alive = torch.isfinite(safe_logsumexp(final, dim=-1))
    c = draw_categorical(final, generator)
    t = torch.where(alive, length, torch.zeros_like(length))
    starts = torch.zeros(n, T, dtype=torch.bool, device=device)
    label_at = torch.zeros(n, T, dtype=torch.int64, device=device)
    rows = torch.arange(n, device=device)
    durations = torch.arange(1, K + 1, device=device)
    per_duration = trans.dim() == 3
    start_score = safe_logsumexp(trans, dim=-2)  # (C,) or (K, C)
    begin = _start_terms(inp)
    neg_inf = torch.tensor(-torch.inf, dtype=cum.dtype, device=device)
    step = 0
    while True:
        if step % 32 == 0 and not bool((t > 0).any()):
            break
        step += 1
        active = t > 0
        s_all = t[:, None] - durations  # (n, K) candidate starts
        ok = s_all >= 0
        s_idx = s_all.clamp(min=0)
        cb = bias.T[c]  # (n, K): duration_bias[d - 1, c]
        if not per_duration:
            g = start_part[b[:, None], s_idx, c[:, None]]  # (n, K)
            logits = torch.where(ok, g + cb, neg_inf)
            d = draw_categorical(logits, generator) + 1
            s = (t - d).clamp(min=0)
            prev_logits = alpha[b, s] + trans[:, c].T  # (n, C')
            prev = draw_categorical(prev_logits, generator)
        else:
            # (n, K, C'): alpha[s, c'] + transition[d - 1, c', c] + the start-side terms.
            a = alpha[b[:, None], s_idx]  # (n, K, C')
            link = trans[:, :, c].permute(2, 0, 1)  # (n, K, C')
            first = s_all == 0
            link_first = start_score.T[c]  # (n, K)
            joint = torch.where(first[..., None], neg_inf, a + link)
            # The s = 0 candidate has no previous label: put its mass on c' = 0.
            joint[..., 0] = torch.where(first, link_first, joint[..., 0])
            side = begin[b[:, None], s_idx, c[:, None]] + cb  # (n, K)
            joint = torch.where(ok[..., None], joint + side[..., None], neg_inf)
            flat = draw_categorical(joint.reshape(n, K * C), generator)
            d = flat // C + 1
            prev = flat % C
            s = (t - d).clamp(min=0)
        s = torch.where(active, s, torch.zeros_like(s))
        hit = active.nonzero().flatten()
        starts[rows[hit], s[hit]] = True
        label_at[rows[hit], s[hit]] = c[hit]
        c = torch.where(active, prev, c)
        t = torch.where(active, s, t)
    return starts, label_at


def _fill_labels(starts: torch.Tensor, label_at: torch.Tensor) -> torch.Tensor:
    """Per-position labels: each position takes the label of the last start at or before it."""
    T = starts.shape[-1]
    t = torch.arange(T, device=starts.device).expand(starts.shape)
    owner = torch.cummax(torch.where(starts, t, torch.zeros_like(t)), dim=-1).values
    return label_at.gather(-1, owner)


def streaming_sample_pytorch(
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    lengths: torch.Tensor,
    K: int,
    num_samples: int,
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Segmentation:
    """``num_samples`` exact samples of each sequence's segmentation (PyTorch, not validated).

    Args:
        cum_scores: ``(batch, T+1, C)`` cumulative scores.
        transition: ``(C, C)`` or ``(K, C, C)``.
        duration_bias: ``(K, C)``.
        lengths: ``(batch,)`` lengths in ``[1, T]``.
        K: the longest segment.
        num_samples: samples per sequence (``>= 1``).
        proj_start: optional ``(batch, T, C)``.
        proj_end: optional ``(batch, T, C)``.
        generator: a ``torch.Generator`` on ``cum_scores``' device, or None for the default.

    Returns:
        :class:`Segmentation` with ``(num_samples, batch, T)`` labels and starts and
        ``(num_samples, batch)`` scores (float32, float64 for float64 inputs). A sequence with no
        allowed segmentation gets labels ``-1``, no starts and score ``-inf``.
    """
    return sample_with(
        _forward_scan, _draw, cum_scores, transition, duration_bias, lengths, K, num_samples,
        proj_start, proj_end, generator,
    )  # fmt: skip


@torch.no_grad()
def sample_with(
    forward: Callable[[KernelInputs, str], Any],
    draw: Callable[..., tuple[torch.Tensor, torch.Tensor]],
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    lengths: torch.Tensor,
    K: int,
    num_samples: int,
    proj_start: torch.Tensor | None,
    proj_end: torch.Tensor | None,
    generator: torch.Generator | None,
) -> Segmentation:
    """A CPU-side sampler made of a forward scan and a backward draw (the PyTorch ones here,
    the compiled ones in :mod:`.numba`): the labels filled in from the drawn starts, ``-1`` past
    each length and for sequences with no segmentation, and each sample's score (no gradient).

    Args:
        forward: ``forward(working_inputs, "log")`` returning the state of
            ``logpartition.pytorch._forward_scan`` (``log_z``, ``alpha``, ``start_part``).
        draw: ``draw(working_inputs, alpha, start_part, num_samples, generator)`` returning
            ``(starts, label_at)``, each ``(num_samples * batch, T)``, as :func:`_draw` does.
        The others: as :func:`streaming_sample_pytorch`.
    """
    prepared = prepare_inputs(
        cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end
    )
    inp = _working_inputs(prepared)
    state = forward(inp, "log")
    starts, label_at = draw(inp, state.alpha, state.start_part, num_samples, generator)
    log_z = state.log_z
    B, T = starts.shape[0] // num_samples, starts.shape[1]
    starts = starts.reshape(num_samples, B, T)
    labels = _fill_labels(starts, label_at.reshape(num_samples, B, T))
    valid = torch.arange(T, device=starts.device) < inp.lengths[:, None]
    alive = torch.isfinite(log_z)
    labels = torch.where(valid & alive[:, None], labels, -1)
    segmentation = Segmentation(labels, starts, None)
    scores = score_segmentation_tensors(
        inp.cum_scores, inp.transition, inp.duration_bias, inp.lengths, segmentation,
        proj_start=inp.proj_start, proj_end=inp.proj_end,
    )  # fmt: skip
    scores = torch.where(alive, scores, -torch.inf).to(prepared.cum_scores.dtype)
    return segmentation._replace(scores=scores)
