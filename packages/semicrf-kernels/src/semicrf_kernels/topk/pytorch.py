"""The k best segmentations in PyTorch: a forward scan keeping k-best lists, then tracebacks.

The Viterbi scan of :mod:`semicrf_kernels.viterbi.pytorch` keeps one best partial path per
position and label; here every ``(position, label)`` keeps a list of the ``k`` best, in a total
order: higher score first, and among equal scores the order of ``docs/conventions.md``'s top-k
rule (compare from the last segment backwards: label, then duration, then the previous label,
smaller first). A list entry is reached by candidates indexed so that this order is their index
order, and a *stable* descending sort keeps it among equal scores:

* with ``(C, C)`` transitions (factorised, as the Viterbi scan): the start-side list
  ``G[s, c]`` holds the best ``alpha[s, c', i] + transition[c', c]`` over ``(c', i)``, plus
  ``proj_start[s, c] - cum[s, c]``; the end list ``alpha[t, c]`` the best ``G[t - d, c, j] +
  duration_bias[d - 1, c]`` over ``(d, j)``, plus ``cum[t, c] + proj_end[t - 1, c]``;
* with ``(K, C, C)``: ``alpha[t, c]`` directly over ``(d, c', i)``.

The additions are the Viterbi scan's, in the same order, so the first entry is the Viterbi
score bit for bit and ``topk(1)`` is the Viterbi path, ties included. Lists shorter than ``k``
are padded with ``-inf``; absent results have score ``-inf``, labels ``-1`` and no starts. Memory
is O(k batch T C) (the backpointers); no ``T K C`` tensor is built.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .._shared.inputs import KernelInputs, prepare_inputs
from .._shared.logspace import safe_logsumexp
from ..logpartition.pytorch import _end_terms, _start_terms, _working_inputs
from ..segmentation import Segmentation

__all__ = ["streaming_topk_pytorch"]


class _Lists(NamedTuple):
    """The k-best scan's results."""

    alpha: torch.Tensor  # (B, T+1, C, k) scores of the k best partial paths ending at t
    end_duration: torch.Tensor  # (B, T, C, k) int64 duration of the last segment (end t - 1)
    end_rank: torch.Tensor  # (B, T, C, k) int64 rank in the start-side list (or alpha list)
    end_label: torch.Tensor | None  # (B, T, C, k) previous label, (K, C, C) only
    start_label: torch.Tensor | None  # (B, T, C, k) previous label per start, (C, C) only
    start_rank: torch.Tensor | None  # (B, T, C, k) its rank in alpha[s, c'], (C, C) only


def _best(candidates: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` largest of ``candidates (..., n)`` and their indices, equal values in index
    order (stable), padded with ``-inf`` / index 0 when ``n < k``."""
    values, index = torch.sort(candidates, dim=-1, descending=True, stable=True)
    values, index = values[..., :k], index[..., :k]
    short = k - values.shape[-1]
    if short > 0:
        values = torch.cat([values, values.new_full((*values.shape[:-1], short), -torch.inf)], -1)
        index = torch.cat([index, index.new_zeros((*index.shape[:-1], short))], -1)
    return values, index


def start_scores_on_cpu(trans: torch.Tensor) -> torch.Tensor:
    """The start scores ``logsumexp_{c'} trans[c', c]``: ``(C,)`` for a ``(C, C)`` transition,
    ``(K, C)`` for ``(K, C, C)``, float64, on ``trans``'s device.

    Computed on the CPU whatever the device: ``exp`` and ``log`` round differently on a GPU, and
    top-k returns the same bits on every device. The transition is small, so the copy is cheap
    (it does wait for the device)."""
    return safe_logsumexp(trans.detach().to("cpu", torch.float64), dim=-2).to(trans.device)


def _scan(inp: KernelInputs, k: int) -> _Lists:
    cum, trans, bias, _, K, _, _ = inp
    B, T1, C = cum.shape
    T = T1 - 1
    per_duration = trans.dim() == 3
    start = start_scores_on_cpu(trans)
    starts = _start_terms(inp)
    ends = _end_terms(inp)
    bias_rev = bias.flip(0)
    alpha = cum.new_full((B, T1, C, k), -torch.inf)
    alpha[:, 0, :, 0] = 0
    end_duration = torch.zeros(B, T, C, k, dtype=torch.int64, device=cum.device)
    end_rank = torch.zeros_like(end_duration)
    end_label = start_label = start_rank = None
    if per_duration:
        end_label = torch.zeros_like(end_duration)
        trans_rev = trans.flip(0)
        start_rev = start.flip(0)
    else:
        start_label = torch.zeros_like(end_duration)
        start_rank = torch.zeros_like(end_duration)
        G = cum.new_full((B, T1, C, k), -torch.inf)
        G[:, 0, :, 0] = start + starts[:, 0]
    for t in range(1, T1):
        dmax = min(K, t)
        lo = t - dmax
        if per_duration:
            # (B, d, C', k, C) -> A-part of every candidate; window index 0 is duration dmax.
            pair = alpha[:, lo:t, :, :, None] + trans_rev[K - dmax :, :, None, :]
            if lo == 0:
                # The first segment has no previous label: its one candidate sits at (c'=0, i=0).
                first = torch.full_like(pair[:, 0], -torch.inf)
                first[:, 0, 0] = start_rev[K - dmax]
                pair = torch.cat([first[:, None], pair[:, 1:]], dim=1)
            vals = pair + starts[:, lo:t, None, None, :] + bias_rev[K - dmax :, None, None, :]
            # Candidate order (duration, c', i): flip to durations 1..dmax, label c last-but-one.
            cand = vals.flip(1).permute(0, 4, 1, 2, 3).reshape(B, C, dmax * C * k)
            values, index = _best(cand, k)
            end_duration[:, t - 1] = index // (C * k) + 1
            end_label[:, t - 1] = (index // k) % C
            end_rank[:, t - 1] = index % k
        else:
            vals = G[:, lo:t] + bias_rev[K - dmax :, :, None]  # (B, d, C, k)
            cand = vals.flip(1).permute(0, 2, 1, 3).reshape(B, C, dmax * k)
            values, index = _best(cand, k)
            end_duration[:, t - 1] = index // k + 1
            end_rank[:, t - 1] = index % k
        alpha[:, t] = values + ends[:, t, :, None]
        if not per_duration and t < T:
            pair = alpha[:, t, :, None, :] + trans[None, :, :, None]  # (B, C', C, k)
            values, index = _best(pair.permute(0, 2, 1, 3).reshape(B, C, C * k), k)
            G[:, t] = values + starts[:, t, :, None]
            start_label[:, t] = index // k
            start_rank[:, t] = index % k
    return _Lists(alpha, end_duration, end_rank, end_label, start_label, start_rank)


def _traceback(
    lists: _Lists, lengths: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(k, B, T)`` labels and starts and ``(k, B)`` scores of the k best segmentations."""
    B, T1, C, _ = lists.alpha.shape
    T = T1 - 1
    device = lengths.device
    batch = torch.arange(B, device=device)
    final = lists.alpha[batch, lengths].reshape(B, C * k)  # candidates (c, rank)
    scores, index = _best(final, k)  # (B, k)
    scores, index = scores.T.contiguous(), index.T.contiguous()  # (k, B)
    present = torch.isfinite(scores)
    n = k * B
    b = batch.repeat(k)
    c = (index // k).reshape(n)
    r = (index % k).reshape(n)
    t = torch.where(present.reshape(n), lengths[b], torch.zeros_like(lengths[b]))
    starts = torch.zeros(n, T, dtype=torch.bool, device=device)
    label_at = torch.zeros(n, T, dtype=torch.int64, device=device)
    rows = torch.arange(n, device=device)
    per_duration = lists.end_label is not None
    step = 0
    while True:
        if step % 32 == 0 and not bool((t > 0).any()):
            break
        step += 1
        active = t > 0
        e = (t - 1).clamp(min=0)
        d = lists.end_duration[b, e, c, r]
        j = lists.end_rank[b, e, c, r]
        s = torch.where(active, (t - d).clamp(min=0), torch.zeros_like(t))
        starts[rows, s] |= active
        label_at[rows, s] = torch.where(active, c, label_at[rows, s])
        if per_duration:
            prev, prev_rank = lists.end_label[b, e, c, r], j
        else:
            prev, prev_rank = lists.start_label[b, s, c, j], lists.start_rank[b, s, c, j]
        c = torch.where(active, prev, c)
        r = torch.where(active, prev_rank, r)
        t = s
    return starts.reshape(k, B, T), label_at.reshape(k, B, T), scores


def streaming_topk_pytorch(
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    lengths: torch.Tensor,
    K: int,
    k: int,
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
) -> Segmentation:
    """The ``k`` highest-scoring segmentations of each sequence (PyTorch, not validated).

    Args:
        cum_scores: ``(batch, T+1, C)`` cumulative scores.
        transition: ``(C, C)`` or ``(K, C, C)``.
        duration_bias: ``(K, C)``.
        lengths: ``(batch,)`` lengths in ``[1, T]``.
        K: the longest segment.
        k: how many segmentations (``>= 1``).
        proj_start: optional ``(batch, T, C)``.
        proj_end: optional ``(batch, T, C)``.

    Returns:
        :class:`Segmentation` with ``(k, batch, T)`` labels and starts and ``(k, batch)``
        scores in decreasing order (float32, float64 for float64 inputs); entries beyond the
        number of allowed segmentations have score ``-inf``, labels ``-1`` and no starts.
    """
    with torch.no_grad():
        prepared = prepare_inputs(
            cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end
        )
        inp = _working_inputs(prepared)
        lists = _scan(inp, k)
        starts, label_at, scores = _traceback(lists, inp.lengths, k)
        T = starts.shape[-1]
        t = torch.arange(T, device=starts.device).expand(starts.shape)
        owner = torch.cummax(torch.where(starts, t, torch.zeros_like(t)), dim=-1).values
        valid = (t < inp.lengths[:, None]) & torch.isfinite(scores)[..., None]
        labels = torch.where(valid, label_at.gather(-1, owner), -1)
        return Segmentation(labels, starts, scores.to(prepared.cum_scores.dtype))
