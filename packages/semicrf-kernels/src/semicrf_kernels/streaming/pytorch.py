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

from typing import NamedTuple

import torch

from .._inputs import KernelInputs, prepare_inputs
from .._logspace import safe_logsumexp
from ..validation import validate_streaming_inputs

__all__ = [
    "SemiCRFStreaming",
    "StreamingMarginals",
    "streaming_forward_pytorch",
    "streaming_marginals_pytorch",
]


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


def _check_semiring(semiring: str) -> None:
    if semiring not in ("log", "max"):
        raise ValueError(f"semiring: expected 'log' or 'max', got {semiring!r}")


class SemiCRFStreaming(torch.autograd.Function):
    """Streaming log partition with a hand-written streaming backward (pure PyTorch).

    ``SemiCRFStreaming.apply(cum_scores, transition, duration_bias, lengths, K, proj_start,
    proj_end) -> (batch,)`` log Z. The forward stores ``alpha`` (O(batch T C)); the backward runs
    the beta recursion over a K-row ring and returns gradients for ``cum_scores``,
    ``transition``, ``duration_bias``, ``proj_start`` and ``proj_end`` (None for absent
    projections), each sequence's scaled by its ``grad_output`` and the shared parameters' summed
    over the batch in order. Gradients at padding are exactly 0; a sequence with ``log Z = -inf``
    gets zero gradients. Inputs are converted with :func:`prepare_inputs` (no validation).
    """

    @staticmethod
    def forward(
        ctx,
        cum_scores: torch.Tensor,
        transition: torch.Tensor,
        duration_bias: torch.Tensor,
        lengths: torch.Tensor,
        K: int,
        proj_start: torch.Tensor | None = None,
        proj_end: torch.Tensor | None = None,
    ) -> torch.Tensor:
        originals = (cum_scores, transition, duration_bias, proj_start, proj_end)
        ctx.dtypes = tuple(None if x is None else x.dtype for x in originals)
        prepared = prepare_inputs(
            cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end
        )
        inp = _working_inputs(prepared)
        state = _forward_scan(inp, "log")
        ctx.K = inp.K
        ctx.save_for_backward(
            inp.cum_scores, inp.transition, inp.duration_bias, inp.lengths, inp.proj_start,
            inp.proj_end, state.log_z, state.alpha, state.start_part,
        )  # fmt: skip
        return state.log_z.to(prepared.cum_scores.dtype)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        cum, trans, bias, lengths, ps, pe, log_z, alpha, start_part = ctx.saved_tensors
        inp = KernelInputs(cum, trans, bias, lengths, ctx.K, ps, pe)
        state = _ForwardState(log_z, alpha, start_part, None, None)
        res = _backward_scan(inp, state)
        g = torch.where(
            res.alive, grad_output.to(cum.dtype), torch.zeros_like(grad_output, dtype=cum.dtype)
        )
        alive3 = res.alive[:, None, None]
        zero = torch.zeros((), dtype=cum.dtype, device=cum.device)
        T = cum.shape[1] - 1

        def per_sequence(x: torch.Tensor) -> torch.Tensor:
            return torch.where(alive3, x, zero) * g[:, None, None]

        def shared(marg: torch.Tensor) -> torch.Tensor:
            mask = res.alive.reshape(-1, *([1] * (marg.dim() - 1)))
            scaled = torch.where(mask, marg, torch.zeros((), dtype=marg.dtype, device=marg.device))
            scaled = scaled * g.to(torch.float64).reshape(mask.shape)
            return scaled.sum(dim=0)

        # apply() may be called without the optional projections: needs_input_grad then has 5
        # entries, and autograd wants exactly one gradient per argument given.
        given = len(ctx.needs_input_grad)
        needs = tuple(ctx.needs_input_grad) + (False,) * (7 - given)
        grads = [None] * 7
        if needs[0]:
            grads[0] = per_sequence(res.p_end - res.p_start)
        if needs[1]:
            grads[1] = shared(res.trans_marg) + shared(res.first_marg)
        if needs[2]:
            grads[2] = shared(res.bias_marg)
        if needs[5] and ps is not None:
            grads[5] = per_sequence(res.p_start[:, :T])
        if needs[6] and pe is not None:
            grads[6] = per_sequence(res.p_end[:, 1:])
        for i, j in ((0, 0), (1, 1), (2, 2), (5, 3), (6, 4)):
            if grads[i] is not None:
                grads[i] = grads[i].to(ctx.dtypes[j])
        return tuple(grads[:given])


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


class StreamingMarginals(NamedTuple):
    """Posterior marginals of the streaming model, from one forward and one backward scan.

    Attributes:
        log_partition: ``(batch,)`` log Z.
        boundary: ``(batch, T)`` P(a segment starts at ``t``); 1 at ``t = 0``, 0 at padding.
        position: ``(batch, T, C)`` P(position ``t`` has label ``c``); rows sum to 1 at valid
            positions, 0 at padding.
        segment_start: ``(batch, T, C)`` P(a segment with label ``c`` starts at ``t``).
        segment_end: ``(batch, T, C)`` P(a segment with label ``c`` ends at ``t``, inclusive).
        entropy: ``(batch,)`` Shannon entropy (nats) of the segmentation distribution, exact:
            ``log Z - E[score]`` with the start score as its own input.

    All float32 (float64 for float64 inputs); a sequence with ``log Z = -inf`` has zero
    marginals and entropy.
    """

    log_partition: torch.Tensor
    boundary: torch.Tensor
    position: torch.Tensor
    segment_start: torch.Tensor
    segment_end: torch.Tensor
    entropy: torch.Tensor


def streaming_marginals_pytorch(
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    lengths: torch.Tensor,
    K: int,
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
    *,
    validate: bool = True,
) -> StreamingMarginals:
    """Boundary and position marginals and the entropy, without any ``T K C`` tensor.

    Position marginals come from the segment start/end probabilities by a float64 cumulative
    sum: ``P(t covered by label c) = sum_{s <= t} P_start[s, c] - sum_{e < t} P_end[e, c]``.
    Not differentiable (computed under ``no_grad``).

    Args:
        cum_scores: ``(batch, T+1, C)`` cumulative scores.
        transition: ``(C, C)`` or ``(K, C, C)``.
        duration_bias: ``(K, C)``.
        lengths: ``(batch,)`` integer lengths in ``[1, T]``.
        K: longest segment.
        proj_start: optional ``(batch, T, C)``.
        proj_end: optional ``(batch, T, C)``.
        validate: run the value checks of :func:`validate_streaming_inputs`.

    Returns:
        :class:`StreamingMarginals`.
    """
    validate_streaming_inputs(
        cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end, validate=validate
    )
    with torch.no_grad():
        prepared = prepare_inputs(
            cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end
        )
        inp = _working_inputs(prepared)
        state = _forward_scan(inp, "log")
        res = _backward_scan(inp, state)
        return _marginals(inp, state, res, prepared.cum_scores.dtype)


def _marginals(
    inp: KernelInputs, state: _ForwardState, res: _BackwardResult, dtype: torch.dtype
) -> StreamingMarginals:
    cum, trans, bias, _, _, ps, pe = inp
    T = cum.shape[1] - 1
    f64 = torch.float64
    alive = res.alive
    zero = torch.zeros((), dtype=f64, device=cum.device)
    p_start = torch.where(alive[:, None, None], res.p_start[:, :T].to(f64), zero)
    p_end = torch.where(alive[:, None, None], res.p_end[:, 1:].to(f64), zero)
    position = (p_start.cumsum(dim=1) - p_end.cumsum(dim=1) + p_end).clamp(min=0.0)

    def expect(theta: torch.Tensor, marg: torch.Tensor) -> torch.Tensor:
        # sum(theta * marginal) per sequence, with forbidden (-inf) choices contributing 0.
        product = torch.where(marg > 0, theta.to(f64) * marg, zero)
        return product.reshape(product.shape[0], -1).sum(dim=1)

    emissions = cum[:, 1:] - cum[:, :-1]
    score = expect(emissions, position) + expect(bias[None], res.bias_marg)
    score = score + expect(trans[None], res.trans_marg)
    start = safe_logsumexp(trans, dim=-2)  # (C,) or (K, C): the start score, its own input
    if trans.dim() == 3:
        score = score + expect(start[None], res.first_mu)
    else:
        score = score + expect(start[None], p_start[:, 0])
    if ps is not None:
        score = score + expect(ps, p_start)
    if pe is not None:
        score = score + expect(pe, p_end)
    entropy = torch.where(alive, state.log_z - score, zero)
    return StreamingMarginals(
        log_partition=state.log_z.to(dtype),
        boundary=p_start.sum(dim=-1).to(dtype),
        position=position.to(dtype),
        segment_start=p_start.to(dtype),
        segment_end=p_end.to(dtype),
        entropy=entropy.to(dtype),
    )
