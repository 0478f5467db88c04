"""The scaled sums of the compiled (numba) CPU scans: the duration window and the link.

Shared by the forward (:mod:`semicrf_kernels.logpartition.numba`) and the backward
(:mod:`semicrf_kernels.logpartition.numba_backward`); the module docstring of the forward says
why the sums are scaled and how their values stay bounded. Importing this module imports numba.

The window is summed in fixed blocks of :data:`BLOCK` durations: each block's sums in duration
order (:func:`window_block`), then the blocks' sums in block order (:func:`window`). When the
threads share one sequence, each computes the blocks of its share of the durations; the fixed
blocks make the order of every addition, hence the result, the same for any thread count.
"""

from __future__ import annotations

import math

import numpy as np

from .._shared.numba_jit import jit
from .._shared.numba_support import BLOCK

__all__ = [
    "BLOCK",
    "TINY",
    "block_count",
    "combine_blocks",
    "window",
    "window_block",
    "window_blocks",
    "window_sums",
]

_HI = 200.0
_FLUSH = -600.0
_FLUSH_VALUE = math.exp(_FLUSH)
TINY = math.exp(-200.0)
_NEG = -np.inf


@jit
def block_count(dmax):
    """Blocks of a window of ``dmax`` durations."""
    return (dmax + BLOCK - 1) // BLOCK


@jit
def insert(value, ring, M, c, slot):
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
def window_block(ring, eb, base, sign, dmax, j, out):
    """Block ``j`` of the window: durations ``d`` from ``BLOCK j + 1`` to ``min(BLOCK (j + 1),
    dmax)``, ring rows ``base + sign d``: ``out[0, c] = sum_d ring eb[d - 1, c]``, ``out[1, c]``
    its largest term, ``out[2, c]`` the largest ring entry (vectorised over labels)."""
    K, C = ring.shape
    for c in range(C):
        out[0, c] = 0.0
        out[1, c] = 0.0
        out[2, c] = 0.0
    d0 = j * BLOCK + 1
    slot = (base + sign * d0) % K
    for d in range(d0, min(d0 + BLOCK - 1, dmax) + 1):
        for c in range(C):
            u = ring[slot, c]
            w = u * eb[d - 1, c]
            out[0, c] += w
            out[1, c] = max(out[1, c], w)
            out[2, c] = max(out[2, c], u)
        slot += sign  # the next row, wrapping without a division
        if slot == K:
            slot = 0
        elif slot < 0:
            slot = K - 1


@jit
def window_blocks(ring, eb, base, sign, dmax, blocks, first, stride):
    """Blocks ``j = first, first + stride, ...`` of the window (those that are not empty) into
    ``blocks[j]``: a split part's blocks, dealt round-robin so that every part has work from
    the first steps on, while the window is still short."""
    for j in range(first, block_count(dmax), stride):
        window_block(ring, eb, base, sign, dmax, j, blocks[j])


@jit
def window_sums(ring, eb, base, sign, dmax, S, W, U, partial):
    """Every block of the window by one thread, straight into ``S``, ``W``, ``U`` (as
    :func:`window_blocks` then :func:`combine_blocks` give them, bit for bit, without the
    buffer); ``partial`` ``(C,)`` scratch."""
    K, C = ring.shape
    S[:] = 0.0
    W[:] = 0.0
    U[:] = 0.0
    slot = (base + sign) % K
    for j in range(block_count(dmax)):
        partial[:] = 0.0
        for d in range(j * BLOCK + 1, min((j + 1) * BLOCK, dmax) + 1):
            for c in range(C):
                u = ring[slot, c]
                w = u * eb[d - 1, c]
                partial[c] += w
                W[c] = max(W[c], w)
                U[c] = max(U[c], u)
            slot += sign
            if slot == K:
                slot = 0
            elif slot < 0:
                slot = K - 1
        for c in range(C):
            S[c] += partial[c]


@jit
def combine_blocks(blocks, dmax, S, W, U):
    """``S`` the blocks' sums added in block order, ``W`` and ``U`` their largest."""
    C = S.shape[0]
    S[:] = 0.0
    W[:] = 0.0
    U[:] = 0.0
    for j in range(block_count(dmax)):
        for c in range(C):
            S[c] += blocks[j, 0, c]
            W[c] = max(W[c], blocks[j, 1, c])
            U[c] = max(U[c], blocks[j, 2, c])


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
def window(ring, eb, logs, bias, M, base, sign, dmax, S, W, U, exact):
    """Per label, the window's weighted sum ``S[c] = sum_d ring eb`` (``S``, ``W``, ``U`` from
    :func:`window_sums` or :func:`combine_blocks`) or, where its largest weighted term is below
    ``TINY`` (the largest entries may sit at forbidden or unlikely durations), ``exact[c]`` set
    and ``S[c]`` the log-space value ``lse_d (logs + bias)``. A label's ring is rebuilt first
    when its largest entry fell below ``TINY`` (its sums then recomputed in duration order)."""
    K, C = ring.shape
    for c in range(C):
        if U[c] < TINY:
            _rebuild(logs, ring, M, c, base, sign, dmax)
            total = 0.0
            top = 0.0
            for d in range(1, dmax + 1):
                w = ring[(base + sign * d) % K, c] * eb[d - 1, c]
                total += w
                top = max(top, w)
            S[c] = total
            W[c] = top
        exact[c] = W[c] < TINY
        if exact[c]:
            S[c] = _exact_window(logs, bias, c, base, sign, dmax)


@jit
def exact_lse(x, y, col):
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
def lse(x):
    """``log sum_i exp(x[i])`` (-inf when empty)."""
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
def link(arow, trans, E, tcol, srow, a, out):
    """``out[c] = lse_c' (arow[c'] + trans[c', c]) + srow[c]`` by a scaled matrix-vector
    product, each too-small column recomputed exactly."""
    C = arow.shape[0]
    amax = _NEG
    for i in range(C):
        amax = max(amax, arow[i])
    if amax == _NEG:
        out[:] = _NEG
        return
    for i in range(C):
        a[i] = math.exp(arow[i] - amax)
    out[:] = 0.0
    for i in range(C):
        ai = a[i]
        if ai != 0.0:
            for c in range(C):
                out[c] += ai * E[i, c]
    for c in range(C):
        if out[c] >= TINY:
            out[c] = amax + tcol[c] + math.log(out[c]) + srow[c]
        else:
            out[c] = exact_lse(arow, trans, c) + srow[c]


@jit
def scale_row(row, out):
    """``out = exp(row - max(row))``; returns the max (-inf: out is 0)."""
    m = _NEG
    for i in range(row.shape[0]):
        m = max(m, row[i])
    for i in range(row.shape[0]):
        out[i] = 0.0 if m == _NEG else math.exp(row[i] - m)
    return m
