"""The compiled (numba) CPU forward scan of the log partition, and the scaled-window machinery.

Same recurrence as the PyTorch path (``docs/conventions.md`` section 1, factorised), but a tight
loop over positions per sequence, in float64, with the sequences dealt over the threads, or one
sequence's duration window split over them (:mod:`semicrf_kernels._shared.numba_support`).
Importing this module imports numba; it is imported on the first CPU call, never with the
package. The scaled sums live in :mod:`semicrf_kernels.logpartition.numba_window`.

Why it is fast: a log-sum-exp costs a scalar ``exp`` per term (~10 ns). With ``(C, C)``
transitions the step's two sums run in *scaled exponential space* instead, at the cost of a
multiply-add per term and a few ``exp`` / ``log`` per label:

* the duration window ``alpha[t, c] = ends[t, c] + lse_d (G[t - d, c] + bias[d - 1, c])`` keeps,
  per label, a ring of the last K values ``u = exp(G - M[c])`` with a per-label shift ``M[c]``,
  and weights ``eb[d, c] = exp(bias[d, c] - bmax[c])``; so ``alpha = ends + M + bmax +
  log(sum_d u eb)``;
* the link ``A[t, c] = lse_c' alpha[t, c'] + transition[c', c]`` is ``amax + tcol[c] +
  log(sum_c' exp(alpha - amax) E[c', c])`` with ``E = exp(transition - tcol)`` (column shift).

Bounded values: a new ring entry more than 200 above its shift moves the shift to it (the
column is rescaled, one multiply per slot), so every entry stays below ``e^200``; entries more
than 600 below are stored as 0; when a window's largest entry falls below ``TINY`` the
label's ring is re-shifted to it from the log values kept in ``G`` (``R`` in the backward); and
where the largest *weighted* term is below ``TINY`` (the largest entries may sit at forbidden
or unlikely durations) the label's window is summed exactly in log space instead (as is a link
sum below ``TINY``, e.g. a label reachable only from a very improbable one). So whenever a
scaled sum is used its largest term is at least ``TINY = e^-200`` while a dropped entry is
below ``e^-600``: dropping changes nothing in float64. The weights ``exp(bias - bmax)`` and
``exp(transition - max)`` are at least ``e^-spread``, which is why :func:`scaled_ok` asks the
finite entries of ``transition`` and ``duration_bias`` to span at most ``SPREAD_MAX`` each (else
the PyTorch path runs). ``(K, C, C)`` transitions make the link
depend on the duration: each ``(start, duration)`` link row is one scaled vector-matrix product
(with the same exact fallback) and the window a log-sum-exp per block of durations, the blocks'
then combined.

Threads: when a sequence's window is split over ``parts`` threads, each computes every
``parts``-th block of durations (round-robin, so all have work while the window is short;
:data:`~semicrf_kernels.logpartition.numba_window.BLOCK` durations each) into a shared buffer, a barrier per step (:mod:`semicrf_kernels._shared.numba_sync`) makes every
block visible, and each thread then combines them and runs the rest of the step itself (a few
``exp`` per label and the ``C x C`` link: cheap against the window), so its ring and shifts
stay the same as the others'; only part 0 writes the outputs. Deterministic: the blocks fix the
order of every addition, so results are bitwise the same for any thread count.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .._shared.inputs import KernelInputs
from .._shared.logspace import safe_logsumexp
from .._shared.numba_jit import jit
from .._shared.numba_support import plan_tasks, run_tasks
from .._shared.numba_sync import step_barrier
from .numba_window import (
    BLOCK,
    TINY,
    block_count,
    combine_blocks,
    exact_lse,
    insert,
    link,
    lse,
    scale_row,
    window,
    window_blocks,
    window_sums,
)
from .pytorch import _end_terms, _start_terms

__all__ = ["SPREAD_MAX", "applies", "forward_numba", "scaled_ok", "shifted_exp"]

#: Largest span (max - min) of the finite entries of ``transition`` and of ``duration_bias``
#: that the scaled sums accept (see the module docstring).
SPREAD_MAX: float = 300.0
_NEG = -np.inf


# ----------------------------------------------------------------------------- forward, (C, C)
@jit
def _forward_cc(starts, ends, trans, E, tcol, start, eb, bmax, bias, L, K, alpha, G, blocks,
                sync, part, parts):  # fmt: skip
    """One sequence's scan, or ``part`` of ``parts`` of it (the window's blocks ``part, part +
    parts, ...``; ``blocks`` ``(2, nb, 3, C)`` holds every part's block sums, two steps'
    worth: a part may start the next step early; unused by a part alone). Returns log Z (NaN:
    aborted)."""
    C = trans.shape[0]
    ring = np.zeros((K, C))
    M = np.full(C, _NEG)
    S, W, U, a = np.empty(C), np.empty(C), np.empty(C), np.empty(C)
    own_a, own_g = np.zeros(C), np.empty(C)  # the step's rows of parts other than 0
    exact = np.zeros(C, dtype=np.bool_)
    arow = alpha[0] if part == 0 else own_a  # part 0 computes straight into the outputs
    grow = G[0] if part == 0 else own_g
    arow[:] = 0.0
    for c in range(C):
        grow[c] = start[c] + starts[0, c]
        insert(grow[c], ring, M, c, 0)
    for t in range(1, L + 1):
        dmax = min(K, t)
        if parts == 1:
            window_sums(ring, eb, t, -1, dmax, S, W, U, a)
        else:
            window_blocks(ring, eb, t, -1, dmax, blocks[t % 2], part, parts)
            # Every part's blocks are written before any part reads them.
            if not step_barrier(sync, part, parts, t):
                return np.nan
            combine_blocks(blocks[t % 2], dmax, S, W, U)
        window(ring, eb, G, bias, M, t, -1, dmax, S, W, U, exact)
        arow = alpha[t] if part == 0 else own_a
        for c in range(C):
            if exact[c]:
                arow[c] = ends[t, c] + S[c]
            else:
                arow[c] = ends[t, c] + (M[c] + bmax[c] + math.log(S[c]))
        if t < L:
            grow = G[t] if part == 0 else own_g
            link(arow, trans, E, tcol, starts[t], a, grow)
            for c in range(C):
                insert(grow[c], ring, M, c, t % K)
    return lse(arow)


@jit
def _forward_cc_batch(tasks, sync, blocks, starts, ends, trans, E, tcol, start, eb, bmax, bias,
                      lengths, K, alpha, G, log_z):  # fmt: skip
    for i in range(tasks.shape[0]):
        b, part, parts = tasks[i, 0], tasks[i, 1], tasks[i, 2]
        z = _forward_cc(starts[b], ends[b], trans, E, tcol, start, eb, bmax, bias, lengths[b], K,
                        alpha[b], G[b], blocks[b], sync[b], part, parts)  # fmt: skip
        if part == 0:
            log_z[b] = z


# ----------------------------------------------------------------------------- forward, (K, C, C)
@jit
def _link_kcc(alpha, aexp, amax, transT, ET, tcolk, startk, s, d, c):
    """``A_d[s, c] = lse_c' alpha[s, c'] + transition[d - 1, c', c]`` (the start score at s = 0)."""
    if s == 0:
        return startk[d - 1, c]
    if amax[s] == _NEG:
        return _NEG
    total = 0.0
    for i in range(aexp.shape[1]):
        total += aexp[s, i] * ET[d - 1, c, i]
    if total >= TINY:
        return amax[s] + tcolk[d - 1, c] + math.log(total)
    return exact_lse(alpha[s], transT[d - 1].T, c)


@jit
def _links_kcc(alpha, aexp, amax, trans, EK, tcolk, startk, s, d, out):
    """``out[c] = A_d[s, c]`` for every label: one scaled vector-matrix product (vectorised
    over ``c``), too-small entries recomputed exactly; the start score at ``s = 0``."""
    C = out.shape[0]
    if s == 0:
        out[:] = startk[d - 1]
        return
    if amax[s] == _NEG:
        out[:] = _NEG
        return
    out[:] = 0.0
    for i in range(C):
        ai = aexp[s, i]
        if ai != 0.0:
            for c in range(C):
                out[c] += ai * EK[d - 1, i, c]
    for c in range(C):
        if out[c] >= TINY:
            out[c] = amax[s] + tcolk[d - 1, c] + math.log(out[c])
        else:
            out[c] = exact_lse(alpha[s], trans[d - 1], c)


@jit
def _block_kcc(starts, bias, alpha, aexp, amax, trans, EK, tcolk, startk, t, dmax, j, vals, out):
    """Block ``j`` of the window at end ``t``: ``out[0, c]`` the largest of ``v_d = A_d[t - d, c]
    + starts[t - d, c] + bias[d - 1, c]`` over the block's durations, ``out[1, c] = sum_d
    exp(v_d - out[0, c])``."""
    C = out.shape[1]
    d0 = j * BLOCK + 1
    d1 = min(d0 + BLOCK - 1, dmax)
    out[0, :] = _NEG
    for d in range(d0, d1 + 1):
        s = t - d
        row = vals[d - d0]
        _links_kcc(alpha, aexp, amax, trans, EK, tcolk, startk, s, d, row)
        for c in range(C):
            row[c] += starts[s, c] + bias[d - 1, c]
            out[0, c] = max(out[0, c], row[c])
    out[1, :] = 0.0
    for d in range(d0, d1 + 1):
        for c in range(C):
            if out[0, c] != _NEG:
                out[1, c] += math.exp(vals[d - d0, c] - out[0, c])


@jit
def _forward_kcc(starts, ends, trans, EK, tcolk, startk, bias, L, K, alpha, blocks, sync, part,
                 parts):  # fmt: skip
    """As :func:`_forward_cc`, with ``(K, C, C)`` transitions (``blocks`` ``(2, nb, 2, C)``: each
    block's largest term and its sum scaled by it). Parts other than 0 read ``alpha`` rows at
    least one block old, which part 0 wrote before earlier barriers."""
    C = trans.shape[1]
    aexp = np.zeros((L + 1, C))  # every part keeps its own scaled rows
    amax = np.full(L + 1, _NEG)
    vals = np.empty((BLOCK, C))
    top, total, own_a = np.empty(C), np.empty(C), np.zeros(C)
    arow = alpha[0] if part == 0 else own_a  # part 0 computes straight into the output
    arow[:] = 0.0
    amax[0] = scale_row(arow, aexp[0])
    for t in range(1, L + 1):
        dmax = min(K, t)
        buf = blocks[t % 2]
        for j in range(part, block_count(dmax), parts):  # round-robin (window_blocks)
            _block_kcc(starts, bias, alpha, aexp, amax, trans, EK, tcolk, startk, t, dmax, j,
                       vals, buf[j])  # fmt: skip
        if parts > 1 and not step_barrier(sync, part, parts, t):
            return np.nan
        top[:] = _NEG
        for j in range(block_count(dmax)):
            for c in range(C):
                top[c] = max(top[c], buf[j, 0, c])
        total[:] = 0.0
        for j in range(block_count(dmax)):
            for c in range(C):
                if buf[j, 0, c] != _NEG:
                    total[c] += buf[j, 1, c] * math.exp(buf[j, 0, c] - top[c])
        arow = alpha[t] if part == 0 else own_a
        for c in range(C):
            arow[c] = (_NEG if top[c] == _NEG else top[c] + math.log(total[c])) + ends[t, c]
        amax[t] = scale_row(arow, aexp[t])
    return lse(arow)


@jit
def _forward_kcc_batch(tasks, sync, blocks, starts, ends, trans, EK, tcolk, startk, bias,
                       lengths, K, alpha, log_z):  # fmt: skip
    C = trans.shape[1]
    for i in range(tasks.shape[0]):
        b, part, parts = tasks[i, 0], tasks[i, 1], tasks[i, 2]
        buf = blocks[b] if parts > 1 else np.empty((2, block_count(K), 2, C))
        z = _forward_kcc(starts[b], ends[b], trans, EK, tcolk, startk, bias, lengths[b], K,
                         alpha[b], buf, sync[b], part, parts)  # fmt: skip
        if part == 0:
            log_z[b] = z


# ----------------------------------------------------------------------------- launchers
def shifted_exp(x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """``(exp(x - m), m)`` with ``m`` the max of the finite entries along ``axis`` (0 when none);
    ``-inf`` entries give exact zeros."""
    finite = np.isfinite(x)
    m = np.where(finite, x, -np.inf).max(axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.where(finite, np.exp(np.where(finite, x - m, 0.0)), 0.0)
    return np.ascontiguousarray(e), np.ascontiguousarray(np.squeeze(m, axis=axis))


def _spread(x: torch.Tensor) -> float:
    finite = x[torch.isfinite(x)]
    return 0.0 if finite.numel() == 0 else float(finite.max() - finite.min())


def scaled_ok(inp: KernelInputs) -> bool:
    """Whether the scaled sums apply: finite ``transition`` and ``duration_bias`` entries each
    span at most :data:`SPREAD_MAX` (a wider span is a choice ``e^-300`` less likely, which
    ``-inf`` expresses exactly)."""
    return _spread(inp.transition) <= SPREAD_MAX and _spread(inp.duration_bias) <= SPREAD_MAX


def applies(inp: KernelInputs) -> bool:
    """The dispatch rule of the log partition on the CPU: the compiled kernels run when
    :func:`scaled_ok` holds, else the PyTorch path (the Viterbi decoder is compiled in every
    case). No size rule: the compiled scans were faster than the vectorised PyTorch step at
    every size measured, ``(K, C, C)`` included (``docs/benchmarks.md``)."""
    return scaled_ok(inp)


def window_weights(bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(eb, bmax)`` of a ``(K, C)`` duration bias: per-label shift ``bmax`` and weights
    ``eb = exp(bias - bmax)`` (0 for forbidden durations)."""
    return shifted_exp(bias, 0)


def forward_numba(
    inp: KernelInputs,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Log partition by the compiled scan.

    Args:
        inp: working inputs (float64, padding made inert:
            ``semicrf_kernels.logpartition.pytorch._working_inputs``) that pass :func:`scaled_ok`.

    Returns:
        ``(log_z (batch,), alpha (batch, T+1, C), start_part (batch, T+1, C) or None)``, float64,
        the state the PyTorch path's forward keeps: ``start_part[s] = A[s] + proj_start[s] -
        cum[s]`` with ``(C, C)`` transitions (None with ``(K, C, C)``). Rows past each length are
        ``-inf``.
    """
    cum, trans, bias, lengths, K, _, _ = inp
    B, T1, C = cum.shape
    starts = _start_terms(inp).contiguous().numpy()
    ends = _end_terms(inp).contiguous().numpy()
    lens = lengths.numpy()
    eb, bmax = window_weights(bias.numpy())
    bias_np = bias.numpy()
    alpha = torch.full((B, T1, C), -torch.inf, dtype=torch.float64)
    log_z = torch.empty(B, dtype=torch.float64)
    start = safe_logsumexp(trans, dim=-2).contiguous().numpy()  # (C,) or (K, C)
    trans_np = trans.numpy()
    a_np, z_np = alpha.numpy(), log_z.numpy()
    per_duration = trans.dim() == 3
    tasks, sync, parts = plan_tasks(lens, K, C, per_duration)
    # The parts' shared block sums (a part alone keeps its own).
    shape = (B, 2, -(-K // BLOCK), 2 if per_duration else 3, C) if parts > 1 else (B, 1, 1, 1, 1)
    blocks = np.empty(shape)
    if not per_duration:
        E, tcol = shifted_exp(trans_np, 0)
        G = torch.full((B, T1, C), -torch.inf, dtype=torch.float64)
        arrays = (starts, ends, trans_np, E, tcol, start, eb, bmax, bias_np, lens, K, a_np,
                  G.numpy(), z_np)  # fmt: skip
        run_tasks(lambda chunk: _forward_cc_batch(chunk, sync, blocks, *arrays), tasks, sync)
        return log_z, alpha, G
    EK, tcolk = shifted_exp(trans_np, 1)  # per (duration, destination) column
    arrays = (starts, ends, trans_np, EK, tcolk, start, bias_np, lens, K, a_np, z_np)
    run_tasks(lambda chunk: _forward_kcc_batch(chunk, sync, blocks, *arrays), tasks, sync)
    return log_z, alpha, None
