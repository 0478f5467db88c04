"""The compiled (numba) CPU forward scan of the log partition, and the scaled-window machinery.

Same recurrence as the PyTorch path (``docs/conventions.md`` section 1, factorised), but a tight
loop over positions per sequence, in float64, with the sequences split over threads
(:func:`semicrf_kernels._shared.numba_support.run_split`). Importing this module imports numba; it is
imported on the first CPU call, never with the package.

Why it is fast: a log-sum-exp costs a scalar ``exp`` per term (~10 ns). With ``(C, C)``
transitions the step's two sums run in *scaled exponential space* instead, at the cost of a
multiply-add per term and a few ``exp`` / ``log`` per label:

* the duration window ``alpha[t, c] = ends[t, c] + lse_d (G[t - d, c] + bias[d - 1, c])`` keeps,
  per label, a ring of the last K values ``u = exp(G - M[c])`` with a per-label shift ``M[c]``,
  and weights ``eb[d, c] = exp(bias[d, c] - bmax[c])``; so ``alpha = ends + M + bmax +
  log(sum_d u eb)``;
* the link ``A[t, c] = lse_c' alpha[t, c'] + transition[c', c]`` is ``amax + tcol[c] +
  log(sum_c' exp(alpha - amax) E[c', c])`` with ``E = exp(transition - tcol)`` (column shift).

Bounded values: a new ring entry more than ``_HI`` above its shift moves the shift to it (the
column is rescaled, one multiply per slot), so every entry stays below ``e^_HI``; entries more
than ``-_FLUSH`` below are stored as 0; when a window's largest entry falls below ``_TINY`` the
label's ring is re-shifted to it from the log values kept in ``G`` (``R`` in the backward); and
where the largest *weighted* term is below ``_TINY`` (the largest entries may sit at forbidden
or unlikely durations) the label's window is summed exactly in log space instead (as is a link
sum below ``_TINY``, e.g. a label reachable only from a very improbable one). So whenever a
scaled sum is used its largest term is at least ``_TINY = e^-200`` while a dropped entry is
below ``e^-600``: dropping changes nothing in float64. The weights ``exp(bias - bmax)`` and
``exp(transition - max)`` are at least ``e^-spread``, which is why :func:`scaled_ok` asks the
finite entries of ``transition`` and ``duration_bias`` to span at most ``SPREAD_MAX`` each (else
the PyTorch path runs). ``(K, C, C)`` transitions make the link
depend on the duration: each ``(start, duration)`` link row is one scaled vector-matrix product
(with the same exact fallback) and the window a plain log-sum-exp.

Deterministic: every sequence is computed by one thread, in a fixed order.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .._shared.inputs import KernelInputs
from .._shared.logspace import safe_logsumexp
from .._shared.numba_jit import jit
from .._shared.numba_support import plan_tasks, run_tasks
from .._shared.numba_sync import fill, label_range, step_barrier
from .pytorch import _end_terms, _start_terms

__all__ = ["SPREAD_MAX", "applies", "forward_numba", "scaled_ok", "shifted_exp"]

_HI = 200.0
_FLUSH = -600.0
_FLUSH_VALUE = math.exp(_FLUSH)
_TINY = math.exp(-200.0)
#: Largest span (max - min) of the finite entries of ``transition`` and of ``duration_bias``
#: that the scaled sums accept (see the module docstring).
SPREAD_MAX: float = 300.0
_NEG = -np.inf


# ----------------------------------------------------------------------------- scaled helpers
@jit
def _insert(value, ring, M, c, slot):
    """Store ``exp(value - M[c])`` at ``ring[slot, c]``, moving the shift up when it is far."""
    if value == _NEG:
        ring[slot, c] = 0.0
        return
    m = M[c]
    x = value - m
    if x > _HI:
        scale = 0.0 if m == _NEG else math.exp(m - value)
        for j in range(ring.shape[0]):
            y = ring[j, c] * scale
            ring[j, c] = y if y > _FLUSH_VALUE else 0.0
        M[c] = value
        ring[slot, c] = 1.0
    elif x > _FLUSH:
        ring[slot, c] = math.exp(x)
    else:
        ring[slot, c] = 0.0


@jit
def _window_sums(ring, eb, base, sign, dmax, S, W, U, c0, c1):
    """``S[c] = sum_d ring[row, c] eb[d - 1, c]``, ``W[c]`` its largest term and ``U[c]`` the
    largest ring entry, rows ``base + sign * d`` for ``d = 1..dmax``, labels ``c0 <= c < c1``
    (vectorised over labels)."""
    K = ring.shape[0]
    fill(S, c0, c1, 0.0)
    fill(W, c0, c1, 0.0)
    fill(U, c0, c1, 0.0)
    for d in range(1, dmax + 1):
        slot = (base + sign * d) % K
        for c in range(c0, c1):
            u = ring[slot, c]
            w = u * eb[d - 1, c]
            S[c] += w
            W[c] = max(W[c], w)
            U[c] = max(U[c], u)


@jit
def _rebuild(logs, ring, M, c, base, sign, dmax):
    """Re-shift label ``c``'s ring to the largest of its window's log values
    ``logs[base + sign * d, c]``, ``d = 1..dmax`` (every entry then at most 1)."""
    K = ring.shape[0]
    m = _NEG
    for d in range(1, dmax + 1):
        m = max(m, logs[base + sign * d, c])
    M[c] = m
    for d in range(1, dmax + 1):
        row = base + sign * d
        u = 0.0
        if m != _NEG:
            x = logs[row, c] - m
            if x > _FLUSH:
                u = math.exp(x)
        ring[row % K, c] = u


@jit
def _exact_window(logs, bias, c, base, sign, dmax):
    """``lse_d (logs[base + sign * d, c] + bias[d - 1, c])`` in log space (-inf when empty)."""
    m = _NEG
    for d in range(1, dmax + 1):
        m = max(m, logs[base + sign * d, c] + bias[d - 1, c])
    if m == _NEG:
        return _NEG
    total = 0.0
    for d in range(1, dmax + 1):
        total += math.exp(logs[base + sign * d, c] + bias[d - 1, c] - m)
    return m + math.log(total)


@jit
def _window(ring, eb, logs, bias, M, base, sign, dmax, S, W, U, exact, c0, c1):
    """Per label ``c0 <= c < c1``, the window's weighted sum ``S[c] = sum_d ring eb`` or, where its largest
    weighted term is below ``_TINY`` (the largest entries may sit at forbidden or unlikely
    durations), ``exact[c]`` set and ``S[c]`` the log-space value ``lse_d (logs + bias)``.
    A label's ring is rebuilt first when its largest entry fell below ``_TINY``."""
    K = ring.shape[0]
    _window_sums(ring, eb, base, sign, dmax, S, W, U, c0, c1)
    for c in range(c0, c1):
        if U[c] < _TINY:
            _rebuild(logs, ring, M, c, base, sign, dmax)
            total = 0.0
            top = 0.0
            for d in range(1, dmax + 1):
                w = ring[(base + sign * d) % K, c] * eb[d - 1, c]
                total += w
                top = max(top, w)
            S[c] = total
            W[c] = top
        exact[c] = W[c] < _TINY
        if exact[c]:
            S[c] = _exact_window(logs, bias, c, base, sign, dmax)


@jit
def _exact_lse(x, y, col):
    """``log sum_i exp(x[i] + y[i, col])`` in log space (-inf when empty)."""
    m = _NEG
    for i in range(x.shape[0]):
        m = max(m, x[i] + y[i, col])
    if m == _NEG:
        return _NEG
    total = 0.0
    for i in range(x.shape[0]):
        total += math.exp(x[i] + y[i, col] - m)
    return m + math.log(total)


@jit
def _lse(x):
    m = _NEG
    for i in range(x.shape[0]):
        m = max(m, x[i])
    if m == _NEG:
        return _NEG
    total = 0.0
    for i in range(x.shape[0]):
        total += math.exp(x[i] - m)
    return m + math.log(total)


@jit
def _link(arow, trans, E, tcol, srow, a, out, c0, c1):
    """``out[c] = lse_c' (arow[c'] + trans[c', c]) + srow[c]`` for ``c0 <= c < c1`` by a scaled
    matrix-vector product, each too-small column recomputed exactly."""
    C = arow.shape[0]
    amax = _NEG
    for i in range(C):
        amax = max(amax, arow[i])
    if amax == _NEG:
        fill(out, c0, c1, _NEG)
        return
    for i in range(C):
        a[i] = math.exp(arow[i] - amax)
    fill(out, c0, c1, 0.0)
    for i in range(C):
        ai = a[i]
        if ai != 0.0:
            for c in range(c0, c1):
                out[c] += ai * E[i, c]
    for c in range(c0, c1):
        if out[c] >= _TINY:
            out[c] = amax + tcol[c] + math.log(out[c]) + srow[c]
        else:
            out[c] = _exact_lse(arow, trans, c) + srow[c]


# ----------------------------------------------------------------------------- forward, (C, C)
@jit
def _forward_cc(starts, ends, trans, E, tcol, start, eb, bmax, bias, L, K, alpha, G, c0, c1,
                sync, part, parts):  # fmt: skip
    """One sequence's scan, labels ``c0 <= c < c1`` of it (the others' are ``parts - 1`` other
    threads' work, joined by a barrier per step); returns log Z (NaN: aborted)."""
    C = trans.shape[0]
    ring = np.zeros((K, C))
    M = np.full(C, _NEG)
    S, W, U, a = np.empty(C), np.empty(C), np.empty(C), np.empty(C)
    exact = np.zeros(C, dtype=np.bool_)
    for c in range(c0, c1):
        alpha[0, c] = 0.0
        G[0, c] = start[c] + starts[0, c]
        _insert(G[0, c], ring, M, c, 0)
    for t in range(1, L + 1):
        dmax = min(K, t)
        _window(ring, eb, G, bias, M, t, -1, dmax, S, W, U, exact, c0, c1)
        for c in range(c0, c1):
            if exact[c]:
                alpha[t, c] = ends[t, c] + S[c]
            else:
                alpha[t, c] = ends[t, c] + (M[c] + bmax[c] + math.log(S[c]))
        # Every label's alpha[t] is written before any part reads it.
        if parts > 1 and not step_barrier(sync, part, parts, t):
            return np.nan
        if t < L:
            _link(alpha[t], trans, E, tcol, starts[t], a, G[t], c0, c1)
            for c in range(c0, c1):
                _insert(G[t, c], ring, M, c, t % K)
    return _lse(alpha[L])


@jit
def _forward_cc_batch(tasks, sync, starts, ends, trans, E, tcol, start, eb, bmax, bias, lengths,
                      K, alpha, G, log_z):  # fmt: skip
    C = trans.shape[0]
    for i in range(tasks.shape[0]):
        b, part, parts = tasks[i, 0], tasks[i, 1], tasks[i, 2]
        c0, c1 = label_range(C, part, parts)
        z = _forward_cc(starts[b], ends[b], trans, E, tcol, start, eb, bmax, bias, lengths[b], K,
                        alpha[b], G[b], c0, c1, sync[b], part, parts)  # fmt: skip
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
    if total >= _TINY:
        return amax[s] + tcolk[d - 1, c] + math.log(total)
    return _exact_lse(alpha[s], transT[d - 1].T, c)


@jit
def _scale_row(row, out):
    """``out = exp(row - max(row))``; returns the max (-inf: out is 0)."""
    m = _NEG
    for i in range(row.shape[0]):
        m = max(m, row[i])
    for i in range(row.shape[0]):
        out[i] = 0.0 if m == _NEG else math.exp(row[i] - m)
    return m


@jit
def _links_kcc(alpha, aexp, amax, trans, EK, tcolk, startk, s, d, out, c0, c1):
    """``out[c] = A_d[s, c]`` for labels ``c0 <= c < c1``: one scaled vector-matrix product
    (vectorised over ``c``), too-small entries recomputed exactly; the start score at ``s = 0``."""
    C = out.shape[0]
    if s == 0:
        for c in range(c0, c1):
            out[c] = startk[d - 1, c]
        return
    if amax[s] == _NEG:
        fill(out, c0, c1, _NEG)
        return
    fill(out, c0, c1, 0.0)
    for i in range(C):
        ai = aexp[s, i]
        if ai != 0.0:
            for c in range(c0, c1):
                out[c] += ai * EK[d - 1, i, c]
    for c in range(c0, c1):
        if out[c] >= _TINY:
            out[c] = amax[s] + tcolk[d - 1, c] + math.log(out[c])
        else:
            out[c] = _exact_lse(alpha[s], trans[d - 1], c)


@jit
def _forward_kcc(starts, ends, trans, EK, tcolk, startk, bias, L, K, alpha, c0, c1, sync, part,
                 parts):  # fmt: skip
    """As :func:`_forward_cc`, with ``(K, C, C)`` transitions."""
    C = trans.shape[1]
    aexp = np.zeros((L + 1, C))  # every part keeps its own copy of the scaled rows
    amax = np.full(L + 1, _NEG)
    vals = np.empty((K, C))
    top = np.empty(C)
    total = np.empty(C)
    fill(alpha[0], c0, c1, 0.0)
    amax[0] = _scale_row(np.zeros(C), aexp[0])
    for t in range(1, L + 1):
        dmax = min(K, t)
        fill(top, c0, c1, _NEG)
        for d in range(1, dmax + 1):
            s = t - d
            row = vals[d - 1]
            _links_kcc(alpha, aexp, amax, trans, EK, tcolk, startk, s, d, row, c0, c1)
            for c in range(c0, c1):
                row[c] += starts[s, c] + bias[d - 1, c]
                top[c] = max(top[c], row[c])
        fill(total, c0, c1, 0.0)
        for d in range(dmax):
            for c in range(c0, c1):
                if top[c] != _NEG:
                    total[c] += math.exp(vals[d, c] - top[c])
        for c in range(c0, c1):
            alpha[t, c] = (_NEG if top[c] == _NEG else top[c] + math.log(total[c])) + ends[t, c]
        if parts > 1 and not step_barrier(sync, part, parts, t):
            return np.nan
        amax[t] = _scale_row(alpha[t], aexp[t])
    return _lse(alpha[L])


@jit
def _forward_kcc_batch(tasks, sync, starts, ends, trans, EK, tcolk, startk, bias, lengths, K,
                       alpha, log_z):  # fmt: skip
    C = trans.shape[1]
    for i in range(tasks.shape[0]):
        b, part, parts = tasks[i, 0], tasks[i, 1], tasks[i, 2]
        c0, c1 = label_range(C, part, parts)
        z = _forward_kcc(starts[b], ends[b], trans, EK, tcolk, startk, bias, lengths[b], K,
                         alpha[b], c0, c1, sync[b], part, parts)  # fmt: skip
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
    tasks, sync = plan_tasks(lens, K, C, per_duration=trans.dim() == 3)
    if trans.dim() == 2:
        E, tcol = shifted_exp(trans_np, 0)
        G = torch.full((B, T1, C), -torch.inf, dtype=torch.float64)
        arrays = (starts, ends, trans_np, E, tcol, start, eb, bmax, bias_np, lens, K, a_np,
                  G.numpy(), z_np)  # fmt: skip
        run_tasks(lambda chunk: _forward_cc_batch(chunk, sync, *arrays), tasks, sync)
        return log_z, alpha, G
    EK, tcolk = shifted_exp(trans_np, 1)  # per (duration, destination) column
    arrays = (starts, ends, trans_np, EK, tcolk, start, bias_np, lens, K, a_np, z_np)
    run_tasks(lambda chunk: _forward_kcc_batch(chunk, sync, *arrays), tasks, sync)
    return log_z, alpha, None
