"""The compiled (numba) CPU backward scan: every marginal the gradients and entropy need.

The beta recursion of :mod:`semicrf_kernels.logpartition.pytorch` (``_backward_scan``) per
sequence, in float64, with the scaled sums of :mod:`semicrf_kernels.logpartition.numba`: the
duration window over ``R[e, c] = ends[e, c] + beta[e, c]`` is the forward's ring mirrored, and
every marginal is a probability times a ratio of scaled terms, so nothing overflows:

* segment ``(s, d, c)``: ``mu = p_start[s, c] * u eb / S`` (``S`` the window sum, at least
  ``e^-200`` after a rebuild); the ``(K, C)`` accumulator holds ``sum_s p_start u / S`` and is
  multiplied by ``eb`` once at the end;
* transition ``(c', c)`` at ``s >= 1``: ``p_end[s, c'] * E2[c', c] g[c] / SB[c']``, where
  ``beta[s, c'] = gmax + trow[c'] + log SB[c']`` is the row-scaled sum it came from (rows whose
  sum is too small are recomputed exactly in log space, and so are their marginals).

The result is the PyTorch path's ``_BackwardResult``, so the gradient assembly, the marginals
and the entropy are shared. Importing this module imports numba (first CPU call only).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .._shared.inputs import KernelInputs
from .._shared.logspace import safe_logsumexp
from .._shared.numba_jit import jit
from .._shared.numba_support import plan_tasks, run_tasks
from .._shared.numba_sync import fill, label_range, share, step_barrier
from .numba import _link_kcc, shifted_exp, window_weights
from .numba_window import (
    BLOCK,
    TINY,
    block_count,
    combine_blocks,
    exact_lse,
    insert,
    scale_row,
    window,
    window_blocks,
    window_sums,
)
from .pytorch import _BackwardResult, _end_terms, _ForwardState, _start_terms

__all__ = ["backward_numba"]

_NEG = -np.inf


@jit
def _gamma_row(s, dmax, ring, M, R, eb, bmax, bias, starts, G_row, log_z, gamma, q, p_row, S, W,
               U, exact):  # fmt: skip
    """``gamma[c] = starts[s, c] + lse_d (R[s + d, c] + bias[d - 1, c])`` by the scaled window
    (``S``, ``W``, ``U`` its sums; exactly where ``exact[c]``); ``p_row[c] = p_start[s, c] =
    exp(G[s, c] + (gamma - starts)[s, c] - log Z)`` and ``q = p_start / S`` (0 for exact labels,
    whose marginals the caller computes)."""
    window(ring, eb, R, bias, M, s, 1, dmax, S, W, U, exact)
    for c in range(S.shape[0]):
        q[c] = 0.0
        if exact[c]:
            gamma[c] = starts[s, c] + S[c]
            p_row[c] = math.exp(G_row[c] + S[c] - log_z)
        else:
            shift = M[c] + bmax[c]
            gamma[c] = starts[s, c] + (shift + math.log(S[c]))
            f = math.exp(G_row[c] + shift - log_z)
            p_row[c] = f * S[c]
            q[c] = f


@jit
def _segment_marginals(s, dmax, d0, d1, ring, eb, bias, R, G, log_z, q, p_row, window_exact, acc,
                       acc_exact, first_mu):  # fmt: skip
    """The segment marginals of start ``s``, durations ``d0 <= d <= min(d1, dmax)``: ``acc[d -
    1] += q u`` (scaled windows), ``acc_exact[d - 1] += mu`` (exact ones), ``first_mu`` at
    ``s = 0``."""
    K, C = ring.shape
    top = min(d1, dmax)
    slot = (s + d0) % K
    for d in range(d0, top + 1):
        for c in range(C):
            acc[d - 1, c] += q[c] * ring[slot, c]
        if s == 0:
            for c in range(C):
                first_mu[d - 1, c] = q[c] * ring[slot, c] * eb[d - 1, c]
        slot = 0 if slot == K - 1 else slot + 1
    for c in range(C):
        if window_exact[c] and p_row[c] > 0.0:
            for d in range(d0, top + 1):
                mu = math.exp(G[s, c] + R[s + d, c] + bias[d - 1, c] - log_z)
                acc_exact[d - 1, c] += mu
                if s == 0:
                    first_mu[d - 1, c] = mu


@jit
def _backward_cc(starts, ends, trans, E2, E2T, trow, eb, bmax, bias, L, K, alpha, G, log_z,
                 p_start, p_end, bias_marg, trans_marg, first_marg, first_mu, blocks, sync,
                 part, parts):  # fmt: skip
    """One sequence's backward, or ``part`` of ``parts`` of it: the window's blocks and the
    segment marginals of its share of the durations, the transition marginals of its share of
    the rows ``c'``; the rest of each step (a few ``exp`` per label, the ``C x C`` sum) every
    part computes, part 0 writing ``p_start`` and ``p_end``. ``blocks`` as in the forward."""
    C = trans.shape[0]
    ring = np.zeros((K, C))
    M = np.full(C, _NEG)
    R = np.full((L + 1, C), _NEG)
    S, W, U, gamma, q = np.empty(C), np.empty(C), np.empty(C), np.empty(C), np.empty(C)
    g, SB, beta, own_p = np.empty(C), np.empty(C), np.empty(C), np.empty(C)
    exact = np.zeros(C, dtype=np.bool_)
    window_exact = np.zeros(C, dtype=np.bool_)
    acc = np.zeros((K, C))
    acc_exact = np.zeros((K, C))  # marginals of labels whose window was computed exactly
    i0, i1 = share(C, part, parts)
    for c in range(C):
        R[L, c] = ends[L, c]
        insert(R[L, c], ring, M, c, L % K)
        if part == 0:
            p_end[L, c] = math.exp(alpha[L, c] - log_z)
    for s in range(L - 1, -1, -1):
        dmax = min(K, L - s)
        if parts == 1:
            window_sums(ring, eb, s, 1, dmax, S, W, U, g)
        else:
            window_blocks(ring, eb, s, 1, dmax, blocks[s % 2], part, parts)
            # Every part's blocks are written before any part reads them.
            if not step_barrier(sync, part, parts, L - s):
                return
            combine_blocks(blocks[s % 2], dmax, S, W, U)
        p_row = p_start[s] if part == 0 else own_p  # part 0 computes straight into the output
        _gamma_row(s, dmax, ring, M, R, eb, bmax, bias, starts, G[s], log_z, gamma, q, p_row, S,
                   W, U, window_exact)  # fmt: skip
        for j in range(part, block_count(dmax) if parts > 1 else 1, parts):  # this part's blocks
            d0, d1 = (j * BLOCK + 1, (j + 1) * BLOCK) if parts > 1 else (1, K)
            _segment_marginals(s, dmax, d0, d1, ring, eb, bias, R, G, log_z, q, p_row,
                               window_exact, acc, acc_exact, first_mu)  # fmt: skip
        if s == 0:
            for i in range(i0, i1):  # alpha[0] = 0: the start score's share
                for c in range(C):
                    first_marg[i, c] = math.exp(trans[i, c] + gamma[c] - log_z)
            break
        gmax = scale_row(gamma, g)
        SB[:] = 0.0
        if gmax != _NEG:
            for c in range(C):
                gc = g[c]
                if gc != 0.0:
                    for i in range(C):
                        SB[i] += gc * E2T[c, i]
        for i in range(C):
            exact[i] = SB[i] < TINY
            if exact[i]:
                beta[i] = exact_lse(gamma, trans.T, i)
            else:
                beta[i] = gmax + trow[i] + math.log(SB[i])
            pe = math.exp(alpha[s, i] + beta[i] - log_z)
            if part == 0:
                p_end[s, i] = pe
            if i < i0 or i >= i1 or pe == 0.0:
                continue
            if exact[i]:
                for c in range(C):
                    trans_marg[i, c] += math.exp(alpha[s, i] + trans[i, c] + gamma[c] - log_z)
            else:
                qi = pe / SB[i]
                for c in range(C):
                    trans_marg[i, c] += qi * E2[i, c] * g[c]
        for c in range(C):
            R[s, c] = ends[s, c] + beta[c]
            insert(R[s, c], ring, M, c, s % K)
    for j in range(part, block_count(K), parts):
        for d in range(j * BLOCK, min((j + 1) * BLOCK, K)):
            for c in range(C):
                bias_marg[d, c] = acc[d, c] * eb[d, c] + acc_exact[d, c]


@jit
def _backward_cc_batch(tasks, sync, blocks, starts, ends, trans, E2, E2T, trow, eb, bmax, bias,
                       lengths, K, alpha, G, log_z, p_start, p_end, bias_marg, trans_marg,
                       first_marg, first_mu):  # fmt: skip
    for i in range(tasks.shape[0]):
        b, part, parts = tasks[i, 0], tasks[i, 1], tasks[i, 2]
        if log_z[b] == _NEG:
            continue
        _backward_cc(starts[b], ends[b], trans, E2, E2T, trow, eb, bmax, bias, lengths[b], K,
                     alpha[b], G[b], log_z[b], p_start[b], p_end[b], bias_marg[b],
                     trans_marg[b], first_marg[b], first_mu[b], blocks[b], sync[b], part,
                     parts)  # fmt: skip


@jit
def _backward_kcc(starts, ends, trans, transT, ET, tcolk, EKT, trow, startk, bias, L, K, alpha,
                  log_z, p_start, p_end, bias_marg, trans_margT, first_margT, first_mu, c0, c1,
                  hbuf, sync, part, parts):  # fmt: skip
    """As :func:`_backward_cc`, with ``(K, C, C)`` transitions: labels ``c0 <= c < c1`` are
    this part's destinations (segment labels) and ``beta`` rows; ``hbuf`` ``(2, K, C)`` holds
    the step's ``h``, which every part reads after the step's barrier."""
    C = trans.shape[1]
    aexp = np.zeros((L + 1, C))
    amax = np.full(L + 1, _NEG)
    for t in range(L + 1):
        amax[t] = scale_row(alpha[t], aexp[t])
    beta = np.full((L + 1, C), _NEG)
    beta[L, :] = 0.0
    hexp = np.empty((K, C))
    SB = np.empty(C)
    for c in range(c0, c1):
        p_end[L, c] = math.exp(alpha[L, c] - log_z)
    for s in range(L - 1, -1, -1):
        dmax = min(K, L - s)
        h = hbuf[s % 2]
        for d in range(1, dmax + 1):
            for c in range(c0, c1):
                h[d - 1, c] = ends[s + d, c] + bias[d - 1, c] + beta[s + d, c] + starts[s, c]
                link = _link_kcc(alpha, aexp, amax, transT, ET, tcolk, startk, s, d, c)
                mu = math.exp(link + h[d - 1, c] - log_z)
                bias_marg[d - 1, c] += mu
                p_start[s, c] += mu
                if s == 0:
                    first_mu[d - 1, c] = mu
                    out = first_margT[d - 1, c]
                else:
                    out = trans_margT[d - 1, c]
                total = 0.0
                if s > 0 and amax[s] != _NEG:
                    for i in range(C):
                        total += aexp[s, i] * ET[d - 1, c, i]
                if mu == 0.0:
                    continue
                if total >= TINY:
                    ratio = mu / total
                    for i in range(C):
                        out[i] += ratio * aexp[s, i] * ET[d - 1, c, i]
                else:  # the s = 0 start score, or a link computed exactly
                    for i in range(C):
                        out[i] += math.exp(alpha[s, i] + transT[d - 1, c, i] + h[d - 1, c] - log_z)
        if parts > 1 and not step_barrier(sync, part, parts, L - s):  # every label's h written
            return
        if s == 0:
            break
        hmax = scale_row(h[:dmax].reshape(dmax * C), hexp[:dmax].reshape(dmax * C))
        hexp2 = hexp[:dmax]
        fill(SB, c0, c1, 0.0)
        if hmax != _NEG:
            for d in range(dmax):
                for c in range(C):
                    hv = hexp2[d, c]
                    if hv != 0.0:
                        for i in range(c0, c1):
                            SB[i] += hv * EKT[d, c, i]
        for i in range(c0, c1):
            if SB[i] >= TINY:
                beta[s, i] = hmax + trow[i] + math.log(SB[i])
            else:
                m = _NEG
                for d in range(dmax):
                    for c in range(C):
                        m = max(m, trans[d, i, c] + h[d, c])
                if m == _NEG:
                    beta[s, i] = _NEG
                else:
                    tot = 0.0
                    for d in range(dmax):
                        for c in range(C):
                            tot += math.exp(trans[d, i, c] + h[d, c] - m)
                    beta[s, i] = m + math.log(tot)
            p_end[s, i] = math.exp(alpha[s, i] + beta[s, i] - log_z)


@jit
def _backward_kcc_batch(tasks, sync, hbuf, starts, ends, trans, transT, ET, tcolk, EKT, trow,
                        startk, bias, lengths, K, alpha, log_z, p_start, p_end, bias_marg,
                        trans_margT, first_margT, first_mu):  # fmt: skip
    C = trans.shape[1]
    for i in range(tasks.shape[0]):
        b, part, parts = tasks[i, 0], tasks[i, 1], tasks[i, 2]
        if log_z[b] == _NEG:
            continue
        c0, c1 = label_range(C, part, parts)
        buf = hbuf[b] if parts > 1 else np.empty((2, K, C))
        _backward_kcc(starts[b], ends[b], trans, transT, ET, tcolk, EKT, trow, startk, bias,
                      lengths[b], K, alpha[b], log_z[b], p_start[b], p_end[b], bias_marg[b],
                      trans_margT[b], first_margT[b], first_mu[b], c0, c1, buf, sync[b],
                      part, parts)  # fmt: skip


def backward_numba(inp: KernelInputs, state: _ForwardState) -> _BackwardResult:
    """Every marginal of the backward scan, by the compiled kernels.

    Args:
        inp: working inputs (float64, padding made inert) that pass
            :func:`semicrf_kernels.logpartition.numba.scaled_ok`.
        state: the forward's ``log_z``, ``alpha`` and (``(C, C)``) ``start_part``, from either
            CPU path.

    Returns:
        The PyTorch path's ``_BackwardResult`` (float64): ``p_start``/``p_end`` ``(batch, T+1,
        C)``, ``bias_marg``/``first_mu`` ``(batch, K, C)``, ``trans_marg``/``first_marg``
        ``(batch, *transition.shape)``, ``alive``. Sequences with ``log Z = -inf`` are zeros.
    """
    cum, trans, bias, lengths, K, _, _ = inp
    B, T1, C = cum.shape
    starts = _start_terms(inp).contiguous().numpy()
    ends = _end_terms(inp).contiguous().numpy()
    lens = lengths.numpy()
    alpha = state.alpha.contiguous().numpy()
    log_z = state.log_z.contiguous().numpy()
    zeros = lambda *shape: torch.zeros(shape, dtype=torch.float64)  # noqa: E731
    p_start, p_end = zeros(B, T1, C), zeros(B, T1, C)
    bias_marg, first_mu = zeros(B, K, C), zeros(B, K, C)
    trans_marg, first_marg = zeros(B, *trans.shape), zeros(B, *trans.shape)
    trans_np = trans.numpy()
    outs = (p_start.numpy(), p_end.numpy(), bias_marg.numpy())
    tasks, sync, parts = plan_tasks(lens, K, C, per_duration=trans.dim() == 3)
    if trans.dim() == 2:
        eb, bmax = window_weights(bias.numpy())
        E2, trow = shifted_exp(trans_np, 1)
        E2T = np.ascontiguousarray(E2.T)
        G = state.start_part.contiguous().numpy()
        shape = (B, 2, block_count(K), 3, C) if parts > 1 else (B, 1, 1, 1, 1)
        arrays = (np.empty(shape), starts, ends, trans_np, E2, E2T, trow, eb, bmax,
                  bias.numpy(), lens, K, alpha, G, log_z, *outs, trans_marg.numpy(),
                  first_marg.numpy(), first_mu.numpy())  # fmt: skip
        kernel = _backward_cc_batch
    else:
        transT = np.ascontiguousarray(trans_np.transpose(0, 2, 1))
        ET, tcolk = shifted_exp(transT, 2)
        # Row shift over every duration and destination: beta sums over both.
        EKT, trow = shifted_exp(trans_np.transpose(1, 0, 2).reshape(C, -1), 1)
        EKT = np.ascontiguousarray(EKT.reshape(C, K, C).transpose(1, 2, 0))  # (K, C, C')
        startk = safe_logsumexp(trans, dim=-2).contiguous().numpy()
        tmT, fmT = zeros(B, K, C, C), zeros(B, K, C, C)  # transposed: [d, c, c']
        arrays = (np.empty((B, 2, K, C) if parts > 1 else (B, 1, 1, 1)), starts, ends, trans_np, transT, ET, tcolk, EKT, trow,
                  startk, bias.numpy(), lens, K, alpha, log_z, *outs, tmT.numpy(), fmT.numpy(),
                  first_mu.numpy())  # fmt: skip
        kernel = _backward_kcc_batch
    accumulated = (p_start, p_end, bias_marg, first_mu, trans_marg, first_marg)
    if trans.dim() == 3:
        accumulated += (tmT, fmT)

    def reset(b: int) -> None:  # a stalled split's partial sums, before it runs on one thread
        for out in accumulated:
            out[b] = 0.0

    run_tasks(lambda chunk: kernel(chunk, sync, *arrays), tasks, sync, reset)
    if trans.dim() == 3:
        trans_marg, first_marg = tmT.transpose(2, 3).contiguous(), fmT.transpose(2, 3).contiguous()
    alive = torch.isfinite(state.log_z)
    return _BackwardResult(p_start, p_end, bias_marg, trans_marg, first_marg, first_mu, alive)
