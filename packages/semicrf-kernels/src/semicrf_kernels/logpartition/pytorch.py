"""Vectorised PyTorch streaming forward / backward of the semi-CRF (the CPU path).

The algorithm is the factorised recurrence of ``docs/conventions.md`` section 1, vectorised over
the batch and looping over positions only::

    A[s, c]     = (+)_{c'} alpha[s, c'] + transition[c', c]   (A[0] = start score, a log-sum-exp)
    alpha[t, c] = (+)_{d <= min(K, t)} A[t - d, c] + seg(t - d, d, c)

so a step costs O(C^2 + K C) with ``(C, C)`` transitions (O(K C^2) with ``(K, C, C)``, where ``A``
depends on the duration). Memory is O(batch T C) (``alpha``, ``A`` and the marginals); no
``T K C`` tensor is ever built. The backward pass is the mirror-image ``beta`` recursion over a
K-row ring and computes every gradient where it is local, as ``exp(alpha + ... + beta - log Z)``.

Precision: this path always works in float64 and rounds its results once to the compute dtype
(float32 unless the inputs are float64). A float32 scan, even with each row normalised by a
float64 running shift, rounds every step's segment scores (magnitude ~1-10, error ~1e-7 each) and
those errors add up like a random walk over ``T``: we measured 2e-4 relative gradient error at
``T = 20,000``, above the 1e-4 promised up to ``T = 100,000``. In float64 the values of size ``T``
(``alpha``, ``log Z`` ~ 1e6 at most) keep ~1e-10 absolute precision, so the exponents need no
shift and the only error left is the inputs' own rounding. Per-sequence sums of shared-parameter
gradients are summed over the batch in a fixed order, so gradients are bitwise deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from .._shared.inputs import KernelInputs, prepare_inputs
from .._shared.logspace import safe_logsumexp
from .._shared.scan_launch import _check_semiring

__all__ = ["pytorch_gradients", "streaming_forward_pytorch"]


class _ForwardState(NamedTuple):
    """What the forward scan keeps for the backward scan and the Viterbi traceback."""

    log_z: torch.Tensor  # (B,) log partition / Viterbi score, -inf if none
    alpha: torch.Tensor  # (B, T+1, C)
    start_part: torch.Tensor | None  # (B, T+1, C) A[s] - cum[s] + proj_start[s]; None for (K, C, C)
    bp_duration: torch.Tensor | None  # (B, T, C) int32 best duration per end t - 1 (Viterbi)
    bp_label: torch.Tensor | None  # (B, T, C) int32 best previous label (Viterbi)


def _plus(semiring: str):
    # Forward-only reductions: torch.logsumexp returns -inf (no NaN) for an all -inf slice.
    if semiring == "log":
        return torch.logsumexp
    return lambda x, dim: x.amax(dim=dim)


def _sanitise(inp: KernelInputs) -> KernelInputs:
    """Make padding inert: ``cum`` rows ``> L`` repeat row ``L``, projections at ``t >= L`` are 0.

    Padding never reaches a result anyway; this only keeps garbage there (allowed when
    ``validate=False``) from turning intermediate padding values into NaN.
    """
    cum, _, _, lengths, _, ps, pe = inp
    B, T1, _ = cum.shape
    rows = torch.arange(T1, device=cum.device)
    valid = (rows[None, :] <= lengths[:, None])[..., None]
    last = cum.gather(1, lengths[:, None, None].expand(B, 1, cum.shape[2]))
    cum = torch.where(valid, cum, last)
    zero = torch.zeros((), dtype=cum.dtype, device=cum.device)
    ps = None if ps is None else torch.where(valid[:, 1:], ps, zero)
    pe = None if pe is None else torch.where(valid[:, 1:], pe, zero)
    return inp._replace(cum_scores=cum, proj_start=ps, proj_end=pe)


def _working_inputs(inp: KernelInputs) -> KernelInputs:
    """Float64 copies of the float inputs (see the module docstring), with padding made inert."""

    def up(x: torch.Tensor | None) -> torch.Tensor | None:
        return None if x is None else x.to(torch.float64)

    inp = inp._replace(
        cum_scores=up(inp.cum_scores),
        transition=up(inp.transition),
        duration_bias=up(inp.duration_bias),
        proj_start=up(inp.proj_start),
        proj_end=up(inp.proj_end),
    )
    return _sanitise(inp)


def _start_terms(inp: KernelInputs) -> torch.Tensor:
    """``(B, T+1, C)``: ``proj_start[s] - cum[s]``, the part of ``seg(s, d, c)`` read at the start
    (row ``T`` has no projection)."""
    out = -inp.cum_scores
    if inp.proj_start is not None:
        out = out.clone()
        out[:, :-1] += inp.proj_start
    return out


def _end_terms(inp: KernelInputs) -> torch.Tensor:
    """``(B, T+1, C)``: ``cum[e] + proj_end[e - 1]``, the part of ``seg`` read at the end."""
    out = inp.cum_scores
    if inp.proj_end is not None:
        out = out.clone()
        out[:, 1:] += inp.proj_end
    return out


def _forward_scan(inp: KernelInputs, semiring: str, backpointers: bool = False) -> _ForwardState:
    """The forward recurrence over working inputs (see the module docstring).

    With ``backpointers`` (max semiring) it also records, for every end ``t`` and label ``c``,
    the best duration (ties: the smaller), and the best previous label (ties: the smaller): per
    start position with ``(C, C)`` transitions, per end position (for the chosen duration) with
    ``(K, C, C)`` transitions.
    """
    cum, trans, bias, lengths, K, _, _ = inp
    B, T1, C = cum.shape
    T = T1 - 1
    device = cum.device
    per_duration = trans.dim() == 3
    plus = _plus(semiring)
    # The virtual start label is summed out in every semiring (max included).
    start = safe_logsumexp(trans, dim=-2)  # (C,) or (K, C)
    starts = _start_terms(inp)  # seg(s, d, c) = ends[s + d] + starts[s] + bias[d - 1]
    ends = _end_terms(inp)
    # Windows run over s = t - dmax .. t - 1 (ascending), i.e. durations dmax .. 1.
    bias_rev = bias.flip(0)
    trans_rev = trans.flip(0) if per_duration else None

    alpha = cum.new_empty(B, T1, C)
    alpha[:, 0] = 0
    start_part = None
    if not per_duration:
        # G[s] = A[s] + starts[s]: everything of a segment that depends only on its start.
        start_part = cum.new_empty(B, T1, C)
        start_part[:, 0] = start + starts[:, 0]
    bp_duration = bp_label = None
    if backpointers:
        bp_duration = torch.zeros(B, T, C, dtype=torch.int32, device=device)
        bp_label = torch.zeros(B, T, C, dtype=torch.int32, device=device)

    for t in range(1, T1):
        dmax = min(K, t)
        lo = t - dmax
        if per_duration:
            pair = alpha[:, lo:t, :, None] + trans_rev[K - dmax :]  # (B, d, C', C)
            A = plus(pair, dim=2)
            if semiring != "log" and lo == 0:
                A[:, 0] = start[dmax - 1]  # the s = 0 row stays a log-sum-exp
            vals = A + starts[:, lo:t] + bias_rev[K - dmax :]
        else:
            vals = start_part[:, lo:t] + bias_rev[K - dmax :]
        r = plus(vals, dim=1) + ends[:, t]
        alpha[:, t] = r
        if backpointers:
            # Index 0 of the flipped window is duration 1: argmax keeps the first maximum.
            best = vals.flip(1).argmax(dim=1)  # (B, C), duration - 1
            bp_duration[:, t - 1] = (best + 1).to(torch.int32)
            if per_duration:
                prev = pair.argmax(dim=2).gather(1, (dmax - 1 - best)[:, None]).squeeze(1)
                bp_label[:, t - 1] = prev.to(torch.int32)
        if start_part is not None and t < T:
            pair = r[:, :, None] + trans  # (B, C', C)
            start_part[:, t] = plus(pair, dim=1) + starts[:, t]
            if backpointers:
                bp_label[:, t] = pair.argmax(dim=1).to(torch.int32)

    batch = torch.arange(B, device=device)
    log_z = plus(alpha[batch, lengths], dim=-1)
    return _ForwardState(log_z, alpha, start_part, bp_duration, bp_label)


class _BackwardResult(NamedTuple):
    p_start: torch.Tensor  # (B, T+1, C) P(a segment with label c starts at s); row T is 0
    p_end: torch.Tensor  # (B, T+1, C) P(a segment with label c ends just before t); row 0 is 0
    bias_marg: torch.Tensor  # (B, K, C) expected count of (duration d, label c)
    trans_marg: torch.Tensor  # (B, C, C) / (B, K, C, C) expected transitions, s >= 1
    first_marg: torch.Tensor  # (B, C, C) / (B, K, C, C) the s = 0 (start score) share
    first_mu: torch.Tensor  # (B, K, C) P(first segment has duration d, label c)
    alive: torch.Tensor  # (B,) bool: log Z is finite


def _backward_scan(inp: KernelInputs, state: _ForwardState) -> _BackwardResult:
    """The beta recursion over a K-row ring, with every marginal computed where it is local.

    ``beta[t, c]`` scores the completions of a segment with label ``c`` ending just before ``t``
    (``beta[L] = 0``, ``-inf`` beyond ``L``); ``H[s, d, c] = seg(s, d, c) + beta[s + d, c]``;
    ``gamma[s] = logsumexp_d H[s, d]`` (with ``(C, C)`` transitions). Sequences with
    ``log Z = -inf`` produce garbage here and are masked by the caller via ``alive``.
    """
    cum, trans, bias, lengths, K, _, _ = inp
    alpha = state.alpha
    B, T1, C = cum.shape
    T = T1 - 1
    device = cum.device
    per_duration = trans.dim() == 3
    alive = torch.isfinite(state.log_z)
    log_z = torch.where(alive, state.log_z, torch.zeros_like(state.log_z))[:, None]
    starts = _start_terms(inp)
    ends = _end_terms(inp)
    lse = torch.logsumexp

    p_start = cum.new_zeros(B, T1, C)
    p_end = cum.new_zeros(B, T1, C)
    bias_marg = cum.new_zeros(B, K, C)
    trans_marg = cum.new_zeros((B, *trans.shape))
    first_marg = cum.new_zeros((B, *trans.shape))
    first_mu = cum.new_zeros(B, K, C)

    # ring[:, j] = beta[s + 1 + j].
    zero = torch.zeros((), dtype=cum.dtype, device=device)
    neg_inf = torch.full((), -torch.inf, dtype=cum.dtype, device=device)
    ring = torch.full((B, K, C), -torch.inf, dtype=cum.dtype, device=device)
    ring[:, 0] = torch.where((lengths == T)[:, None], zero, neg_inf)
    p_end[:, T] = torch.exp(alpha[:, T] + ring[:, 0] - log_z)

    for s in range(T - 1, -1, -1):
        dmax = min(K, T - s)
        # H without its start terms: ends[s + d] + bias[d - 1] + beta[s + d].
        h_end = ends[:, s + 1 : s + 1 + dmax] + bias[:dmax] + ring[:, :dmax]
        a_s = alpha[:, s]
        if per_duration:
            H = h_end + starts[:, s, None]
            pair = a_s[:, None, :, None] + trans[:dmax]  # (B, d, C', C)
            mu = torch.exp(lse(pair, dim=2) + H - log_z[..., None])
            pair_marg = torch.exp(pair + (H - log_z[..., None])[:, :, None, :])
            beta = lse(trans[:dmax] + H[:, :, None, :], dim=(1, 3))
        else:
            # A[s] + seg = G[s] + h_end with G = A + starts stored by the forward.
            mu = torch.exp(state.start_part[:, s, None] + h_end - log_z[..., None])
            gamma = lse(h_end, dim=1) + starts[:, s]
            pair_marg = torch.exp(a_s[:, :, None] + trans + (gamma - log_z)[:, None, :])
            beta = lse(trans + gamma[:, None, :], dim=2)
        bias_marg[:, :dmax] += mu
        p_start[:, s] = mu.sum(dim=1)
        if s > 0:
            if per_duration:
                trans_marg[:, :dmax] += pair_marg
            else:
                trans_marg += pair_marg
        else:
            if per_duration:
                first_marg[:, :dmax] = pair_marg
            else:
                first_marg = pair_marg
            first_mu[:, :dmax] = mu
        # beta[L] = 0 and beta[t > L] = -inf, per sequence.
        beta = torch.where((lengths == s)[:, None], zero, beta)
        beta = torch.where((lengths < s)[:, None], neg_inf, beta)
        if s > 0:
            p_end[:, s] = torch.exp(alpha[:, s] + beta - log_z)
        ring = torch.cat([beta[:, None], ring[:, :-1]], dim=1)

    return _BackwardResult(p_start, p_end, bias_marg, trans_marg, first_marg, first_mu, alive)


def pytorch_gradients(
    inp: KernelInputs,
    log_z: torch.Tensor,
    alpha: torch.Tensor,
    window: torch.Tensor,
    grad_output: torch.Tensor,
    backward_scan: Callable[[KernelInputs, _ForwardState], _BackwardResult] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Gradients of ``sum_b grad_output[b] log Z[b]`` by a CPU-path backward scan (float64).

    The one place the CPU paths turn the backward scan's marginals into gradients
    (``streaming_backward_op`` calls it; ``SemiCRFStreaming`` goes through that operator).

    Args:
        inp: prepared inputs (kernel form).
        log_z: ``(batch,)`` float64 from the forward scan.
        alpha: ``(batch, T+1, C)`` float64 forward rows.
        window: ``(batch, T+1, C)`` float64 start part with ``(C, C)`` transitions (ignored
            with ``(K, C, C)``).
        grad_output: ``(batch,)`` upstream gradient.
        backward_scan: the scan giving the marginals (``_BackwardResult``) from working inputs
            and the forward state: this module's (the default) or the compiled one's
            (``semicrf_kernels._shared.numba_support.cpu_backward``).

    Returns:
        ``(grad_cum (batch, T+1, C), grad_transition, grad_duration_bias (K, C),
        grad_proj_start (batch, T, C) | None, grad_proj_end | None)``, float64.
    """
    work = _working_inputs(inp)
    start_part = window if inp.transition.dim() == 2 else None
    scan = _backward_scan if backward_scan is None else backward_scan
    res = scan(work, _ForwardState(log_z, alpha, start_part, None, None))
    cum = work.cum_scores
    zero = torch.zeros((), dtype=cum.dtype, device=cum.device)
    g = torch.where(res.alive, grad_output.to(cum.dtype), zero)
    alive3 = res.alive[:, None, None]
    T = cum.shape[1] - 1

    def per_sequence(x: torch.Tensor) -> torch.Tensor:
        return torch.where(alive3, x, zero) * g[:, None, None]

    def shared(marg: torch.Tensor) -> torch.Tensor:
        mask = res.alive.reshape(-1, *([1] * (marg.dim() - 1)))
        scaled = torch.where(mask, marg, torch.zeros((), dtype=marg.dtype, device=marg.device))
        return (scaled * g.to(torch.float64).reshape(mask.shape)).sum(dim=0)

    gps = per_sequence(res.p_start[:, :T]) if inp.proj_start is not None else None
    gpe = per_sequence(res.p_end[:, 1:]) if inp.proj_end is not None else None
    return (
        per_sequence(res.p_end - res.p_start),
        shared(res.trans_marg) + shared(res.first_marg),
        shared(res.bias_marg),
        gps,
        gpe,
    )


def streaming_forward_pytorch(
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    lengths: torch.Tensor,
    K: int,
    semiring: str = "log",
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
) -> torch.Tensor:
    """Log partition (``"log"``) or Viterbi score (``"max"``) by the PyTorch scan, no autograd.

    Inputs are those of :func:`semicrf_kernels.semi_crf_streaming_forward` (converted with
    :func:`prepare_inputs`, not validated).

    Returns:
        ``(batch,)`` float32 (float64 for float64 ``cum_scores``); ``-inf`` for a sequence with
        no allowed segmentation.
    """
    _check_semiring(semiring)
    with torch.no_grad():
        prepared = prepare_inputs(
            cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end
        )
        inp = _working_inputs(prepared)
        return _forward_scan(inp, semiring).log_z.to(prepared.cum_scores.dtype)
