"""The compiled (numba) CPU Viterbi: the max-semiring scan with backpointers, and the traceback.

The scan is :mod:`semicrf_kernels.viterbi.pytorch`'s, per sequence in a tight loop, with the same
float64 operations in the same order, so scores, backpointers and tie-breaks are identical:
the best duration for each end and label (ties: the smaller duration) and the best previous
label (ties: the smaller label), per start position with ``(C, C)`` transitions and per end
position (for the chosen duration) with ``(K, C, C)``. The first segment's start score stays a
log-sum-exp, as in every semiring. Max and add only: no ``exp`` in the loop. The traceback runs
in the same compiled call, and segment scores come from :func:`score_path_segments`.
Importing this module imports numba (first CPU call only).
"""

from __future__ import annotations

import numpy as np
import torch

from .._shared.inputs import KernelInputs
from .._shared.logspace import safe_logsumexp
from .._shared.numba_jit import jit
from .._shared.numba_support import plan_tasks, run_tasks
from .._shared.numba_sync import step_barrier
from ..logpartition.numba_window import BLOCK, block_count
from ..logpartition.pytorch import _end_terms, _start_terms
from .path import ViterbiPath, score_path_segments

__all__ = ["max_forward_numba", "streaming_viterbi_numba"]

_NEG = -np.inf


@jit
def _block_cc(G, bias, t, dmax, j, best, arg):
    """Block ``j`` of the window at end ``t``: ``best[c]`` the largest ``G[t - d, c] + bias[d -
    1, c]`` over the block's durations, ``arg[0, c]`` its smallest ``d``."""
    C = best.shape[0]
    d0 = j * BLOCK + 1
    best[:] = _NEG
    arg[0, :] = d0
    for d in range(d0, min(d0 + BLOCK - 1, dmax) + 1):
        for c in range(C):
            v = G[t - d, c] + bias[d - 1, c]
            if v > best[c]:
                best[c] = v
                arg[0, c] = d


@jit
def _finish_cc(t, L, best, arg, starts, ends, trans, alpha, G, bp_d, bp_l, record):
    """The rest of step ``t`` once ``best``/``arg`` hold the window's maxima and durations:
    ``alpha[t]``, then the link to ``G[t]`` (best previous label) and the backpointers. The same
    code is written out in :func:`_scan_cc`: called from there, its arrays passed field by field
    every step, it cost a small scan 12-17 %."""
    C = best.shape[0]
    for c in range(C):
        alpha[t, c] = best[c] + ends[t, c]
        if record:
            bp_d[t - 1, c] = arg[c]
    if t < L:
        best[:] = _NEG
        arg[:] = 0
        for i in range(C):
            a = alpha[t, i]
            for c in range(C):
                v = a + trans[i, c]
                if v > best[c]:
                    best[c] = v
                    arg[c] = i
        for c in range(C):
            G[t, c] = best[c] + starts[t, c]
            if record:
                bp_l[t, c] = arg[c]


@jit
def _scan_cc(starts, ends, trans, start, bias, L, K, alpha, G, bp_d, bp_l, record):
    """One sequence's max scan on one thread (its step's second half is :func:`_finish_cc`)."""
    C = trans.shape[0]
    best = np.empty(C)
    arg = np.empty(C, dtype=np.int32)
    for c in range(C):
        alpha[0, c] = 0.0
        G[0, c] = start[c] + starts[0, c]
    # Loops run over labels innermost (contiguous, vectorised); durations and previous labels
    # are visited in increasing order, and a strict > keeps the first maximum: ties go to the
    # smaller duration / label, as the convention says.
    for t in range(1, L + 1):
        best[:] = _NEG
        arg[:] = 1
        for d in range(1, min(K, t) + 1):
            for c in range(C):
                v = G[t - d, c] + bias[d - 1, c]
                if v > best[c]:
                    best[c] = v
                    arg[c] = d
        for c in range(C):
            alpha[t, c] = best[c] + ends[t, c]
            if record:
                bp_d[t - 1, c] = arg[c]
        if t < L:
            best[:] = _NEG
            arg[:] = 0
            for i in range(C):
                a = alpha[t, i]
                for c in range(C):
                    v = a + trans[i, c]
                    if v > best[c]:
                        best[c] = v
                        arg[c] = i
            for c in range(C):
                G[t, c] = best[c] + starts[t, c]
                if record:
                    bp_l[t, c] = arg[c]


@jit
def _scan_cc_part(starts, ends, trans, start, bias, L, K, alpha, G, bp_d, bp_l, record, vals,
                  args, sync, part, parts):  # fmt: skip
    """``part`` of ``parts`` of one sequence's max scan: the window's blocks ``part, part +
    parts, ...`` (round-robin: a part other than 0 never has block 0) into ``vals``/``args`` (``(2, nb, C)`` / ``(2, nb, 2, C)``, two steps' worth); part
    0 combines them in block order (the maxima and ties of :func:`_scan_cc`) and computes the
    rest of the step. The other parts' blocks read ``G`` rows at least a block old, which part 0
    wrote before earlier barriers. False when aborted."""
    C = trans.shape[0]
    best = np.empty(C)
    arg = np.empty(C, dtype=np.int32)
    if part == 0:
        for c in range(C):
            alpha[0, c] = 0.0
            G[0, c] = start[c] + starts[0, c]
    for t in range(1, L + 1):
        dmax = min(K, t)
        for j in range(part, block_count(dmax), parts):  # round-robin (window_blocks)
            _block_cc(G, bias, t, dmax, j, vals[t % 2, j], args[t % 2, j])
        # Every part's blocks are written before part 0 reads them.
        if not step_barrier(sync, part, parts, t):
            return False
        if part != 0:
            continue
        best[:] = _NEG
        arg[:] = 1
        for j in range(block_count(dmax)):
            for c in range(C):
                if vals[t % 2, j, c] > best[c]:
                    best[c] = vals[t % 2, j, c]
                    arg[c] = args[t % 2, j, 0, c]
        _finish_cc(t, L, best, arg, starts, ends, trans, alpha, G, bp_d, bp_l, record)
    return True


@jit
def _block_kcc(starts, trans, start, bias, alpha, t, dmax, j, best, arg):
    """Block ``j`` of the window at end ``t`` with ``(K, C, C)`` transitions: ``best[c]`` the
    largest ``max_c' (alpha[s, c'] + trans[d - 1, c', c]) + starts[s, c] + bias[d - 1, c]``
    (``s = t - d``; the start score at ``s = 0``), ``arg[:, c]`` its ``(d, c')``."""
    C = trans.shape[1]
    d0 = j * BLOCK + 1
    for c in range(C):
        top = _NEG
        top_d = d0
        top_l = 0
        for d in range(d0, min(d0 + BLOCK - 1, dmax) + 1):
            s = t - d
            link = _NEG
            prev = 0
            for i in range(C):
                # alpha[0] = 0 (part 0 writes it, maybe after another part reads it)
                v = (alpha[s, i] if s > 0 else 0.0) + trans[d - 1, i, c]
                if v > link:
                    link = v
                    prev = i
            if s == 0:
                link = start[d - 1, c]  # the start score stays a log-sum-exp
            v = link + starts[s, c] + bias[d - 1, c]
            if v > top:
                top = v
                top_d = d
                top_l = prev
        best[c] = top
        arg[0, c] = top_d
        arg[1, c] = top_l


@jit
def _scan_kcc(starts, ends, trans, start, bias, L, K, alpha, bp_d, bp_l, record):
    """As :func:`_scan_cc`, with ``(K, C, C)`` transitions: the best duration and previous
    label per end and label, ties to the smaller of each."""
    C = trans.shape[1]
    alpha[0, :] = 0.0
    for t in range(1, L + 1):
        dmax = min(K, t)
        for c in range(C):
            best = _NEG
            best_d = 1
            best_l = 0
            for d in range(1, dmax + 1):
                s = t - d
                link = _NEG
                prev = 0
                for i in range(C):
                    v = alpha[s, i] + trans[d - 1, i, c]
                    if v > link:
                        link = v
                        prev = i
                if s == 0:
                    link = start[d - 1, c]  # the start score stays a log-sum-exp
                v = link + starts[s, c] + bias[d - 1, c]
                if v > best:
                    best = v
                    best_d = d
                    best_l = prev
            alpha[t, c] = best + ends[t, c]
            if record:
                bp_d[t - 1, c] = best_d
                bp_l[t - 1, c] = best_l


@jit
def _scan_kcc_part(starts, ends, trans, start, bias, L, K, alpha, bp_d, bp_l, record, vals,
                   args, sync, part, parts):  # fmt: skip
    """As :func:`_scan_cc_part`, with ``(K, C, C)`` transitions (the other parts read
    ``alpha`` rows at least a block old)."""
    C = trans.shape[1]
    if part == 0:
        alpha[0, :] = 0.0
    for t in range(1, L + 1):
        dmax = min(K, t)
        for j in range(part, block_count(dmax), parts):  # round-robin (window_blocks)
            _block_kcc(starts, trans, start, bias, alpha, t, dmax, j, vals[t % 2, j],
                       args[t % 2, j])  # fmt: skip
        if not step_barrier(sync, part, parts, t):
            return False
        if part != 0:
            continue
        for c in range(C):
            best = _NEG
            best_d = 1
            best_l = 0
            for j in range(block_count(dmax)):
                if vals[t % 2, j, c] > best:
                    best = vals[t % 2, j, c]
                    best_d = args[t % 2, j, 0, c]
                    best_l = args[t % 2, j, 1, c]
            alpha[t, c] = best + ends[t, c]
            if record:
                bp_d[t - 1, c] = best_d
                bp_l[t - 1, c] = best_l
    return True


@jit
def _final(alpha_row):
    best = _NEG
    arg = 0
    for c in range(alpha_row.shape[0]):
        if alpha_row[c] > best:
            best = alpha_row[c]
            arg = c
    return best, arg


@jit
def _traceback(bp_d, bp_l, L, final, per_duration, starts_out, durations_out, labels_out):
    """Segments from position 0, written to the ``(T,)`` outputs; returns their count."""
    n = 0
    t = L
    c = final
    while t > 0:
        d = bp_d[t - 1, c]
        s = t - d
        starts_out[n] = s
        durations_out[n] = d
        labels_out[n] = c
        n += 1
        c = bp_l[t - 1, c] if per_duration else bp_l[s, c]
        t = s
    for i in range(n // 2):
        j = n - 1 - i
        starts_out[i], starts_out[j] = starts_out[j], starts_out[i]
        durations_out[i], durations_out[j] = durations_out[j], durations_out[i]
        labels_out[i], labels_out[j] = labels_out[j], labels_out[i]
    return n


@jit
def _viterbi_batch(tasks, sync, vals, args, starts, ends, trans, start, bias, lengths, K, alpha,
                   G, bp_d, bp_l, record, score, path_s, path_d, path_l, count):  # fmt: skip
    per_duration = trans.ndim == 3
    for i in range(tasks.shape[0]):
        b, part, parts = tasks[i, 0], tasks[i, 1], tasks[i, 2]
        L = lengths[b]
        if parts == 1 and per_duration:
            _scan_kcc(starts[b], ends[b], trans, start, bias, L, K, alpha[b], bp_d[b], bp_l[b],
                      record)  # fmt: skip
            done = True
        elif per_duration:
            done = _scan_kcc_part(starts[b], ends[b], trans, start, bias, L, K, alpha[b], bp_d[b],
                                  bp_l[b], record, vals[b], args[b], sync[b], part,
                                  parts)  # fmt: skip
        elif parts == 1:
            _scan_cc(starts[b], ends[b], trans, start, bias, L, K, alpha[b], G[b], bp_d[b],
                     bp_l[b], record)  # fmt: skip
            done = True
        else:
            done = _scan_cc_part(starts[b], ends[b], trans, start, bias, L, K, alpha[b], G[b],
                                 bp_d[b], bp_l[b], record, vals[b], args[b], sync[b], part,
                                 parts)  # fmt: skip
        if part != 0 or not done:  # part 0 traces back, after the last step's barrier
            continue
        best, final = _final(alpha[b, L])
        score[b] = best
        if record and best != _NEG:
            count[b] = _traceback(bp_d[b], bp_l[b], L, final, per_duration, path_s[b],
                                  path_d[b], path_l[b])  # fmt: skip


def _run(inp: KernelInputs, record: bool):
    cum, trans, bias, lengths, K, _, _ = inp
    B, T1, C = cum.shape
    T = T1 - 1
    starts = _start_terms(inp).contiguous().numpy()
    ends = _end_terms(inp).contiguous().numpy()
    start = safe_logsumexp(trans, dim=-2).contiguous().numpy()
    lens = lengths.numpy()
    alpha = torch.full((B, T1, C), -torch.inf, dtype=torch.float64)
    per_duration = trans.dim() == 3
    G = torch.full((1, 1, 1) if per_duration else (B, T1, C), -torch.inf, dtype=torch.float64)
    bp_shape = (B, T, C) if record else (B, 1, 1)
    bp_d = torch.zeros(bp_shape, dtype=torch.int32)
    bp_l = torch.zeros(bp_shape, dtype=torch.int32)
    score = torch.full((B,), -torch.inf, dtype=torch.float64)
    path_shape = (B, T) if record else (B, 1)
    path = [torch.full(path_shape, -1, dtype=torch.int64) for _ in range(3)]
    count = torch.zeros(B, dtype=torch.int64)
    arrays = (
        starts, ends, trans.numpy(), start, bias.numpy(), lens, K, alpha.numpy(), G.numpy(),
        bp_d.numpy(), bp_l.numpy(), record, score.numpy(), *(p.numpy() for p in path),
        count.numpy(),
    )  # fmt: skip
    tasks, sync, parts = plan_tasks(lens, K, C, per_duration=per_duration)
    # The parts' shared block results (unused by a part alone).
    nb = -(-K // BLOCK) if parts > 1 else 1
    vals = np.empty((B, 2, nb, C) if parts > 1 else (B, 1, 1, 1))
    args = np.empty((B, 2, nb, 2, C) if parts > 1 else (B, 1, 1, 1, 1), dtype=np.int32)
    run_tasks(lambda chunk: _viterbi_batch(chunk, sync, vals, args, *arrays), tasks, sync)
    return score, alpha, (None if per_duration else G), path, count


def max_forward_numba(
    inp: KernelInputs,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Viterbi score by the compiled max scan (no backpointers).

    Args:
        inp: working inputs (float64, padding made inert).

    Returns:
        ``(score (batch,), alpha (batch, T+1, C), start_part (batch, T+1, C) or None)`` float64,
        as :func:`semicrf_kernels.logpartition.numba.forward_numba` returns them.
    """
    score, alpha, G, _, _ = _run(inp, record=False)
    return score, alpha, G


def streaming_viterbi_numba(inp: KernelInputs, dtype: torch.dtype) -> ViterbiPath:
    """Best segmentation of every sequence by the compiled scan and traceback.

    Args:
        inp: working inputs (float64, padding made inert).
        dtype: dtype of the returned scores (the compute dtype of the user's inputs).

    Returns:
        :class:`ViterbiPath` exactly as :func:`streaming_viterbi_pytorch` computes it.
    """
    score, _, _, (starts, durations, labels), count = _run(inp, record=True)
    segment_scores = score_path_segments(
        inp.cum_scores, inp.transition, inp.duration_bias, starts, durations, labels, count,
        proj_start=inp.proj_start, proj_end=inp.proj_end,
    ).to(dtype)  # fmt: skip
    return ViterbiPath(score.to(dtype), starts, durations, labels, segment_scores, count)
