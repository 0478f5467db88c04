"""p's expected feature counts, and scores that are linear in them (cross-entropy, KL).

The score of a segmentation is linear in the model's parameters taken as *separate* inputs:
per-position scores (emissions ``cum[t+1] - cum[t]``), duration biases, between-segment
transitions, the first segment's start score ``start[c] = logsumexp_{c'} transition[c', c]``, and
the boundary projections. So for any two models p and q on the same lengths and ``K``::

    E_p[score_q] = sum(theta_q * mu_p)       CE(p, q) = log Z_q - E_p[score_q]

with ``mu_p`` p's marginals of exactly those features (``docs/conventions.md`` section 4). The
gradient of p's log Z with respect to ``transition`` alone mixes in the start term, so the
transition counts here come from the backward scan (``s >= 1`` only) and the start counts from
the first segment's marginals. ``0 * (-inf) = 0``: a choice q forbids costs nothing where p never
makes it, and ``+inf`` where p gives it mass.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .._shared.inputs import KernelInputs, prepare_inputs
from .._shared.logspace import safe_logsumexp
from ..logpartition.pytorch import _backward_scan, _forward_scan, _working_inputs

__all__ = ["FeatureMarginals", "expected_score", "feature_marginals"]


class FeatureMarginals(NamedTuple):
    """p's expected feature counts (float64, no gradient), per sequence.

    Attributes:
        log_partition: ``(batch,)`` p's log Z (``-inf`` when nothing is allowed).
        alive: ``(batch,)`` bool, p's log Z is finite (the counts below are 0 otherwise).
        position: ``(batch, T, C)`` P(position t has label c).
        duration: ``(batch, K, C)`` expected number of segments of duration d, label c.
        transition: ``(batch, K, C, C)`` expected transitions ``c' -> c`` into a segment of
            duration d (not counting the first segment).
        first: ``(batch, K, C)`` P(the first segment has duration d and label c).
        segment_start: ``(batch, T, C)`` P(a segment with label c starts at t).
        segment_end: ``(batch, T, C)`` P(a segment with label c ends at t, inclusive).
    """

    log_partition: torch.Tensor
    alive: torch.Tensor
    position: torch.Tensor
    duration: torch.Tensor
    transition: torch.Tensor
    first: torch.Tensor
    segment_start: torch.Tensor
    segment_end: torch.Tensor


def per_duration(transition: torch.Tensor, K: int) -> torch.Tensor:
    """``(K, C, C)`` view of a ``(C, C)`` or ``(K, C, C)`` transition (the same model)."""
    return transition if transition.dim() == 3 else transition[None].expand(K, -1, -1)


def feature_marginals(inp: KernelInputs) -> FeatureMarginals:
    """p's :class:`FeatureMarginals` by one forward and one backward PyTorch scan (float64).

    Args:
        inp: p's prepared inputs (:func:`prepare_inputs`), transitions ``(K, C, C)`` (expand a
            ``(C, C)`` one with :func:`per_duration` so transitions are counted per duration).
    """
    with torch.no_grad():
        work = _working_inputs(inp)
        state = _forward_scan(work, "log")
        res = _backward_scan(work, state)
        T = work.cum_scores.shape[1] - 1
        zero = torch.zeros((), dtype=torch.float64, device=work.cum_scores.device)
        alive = res.alive

        def live(x: torch.Tensor) -> torch.Tensor:
            mask = alive.reshape(-1, *([1] * (x.dim() - 1)))
            return torch.where(mask, x, zero)

        p_start = live(res.p_start[:, :T])
        p_end = live(res.p_end[:, 1:])
        position = (p_start.cumsum(dim=1) - p_end.cumsum(dim=1) + p_end).clamp(min=0.0)
        return FeatureMarginals(
            state.log_z, alive, position, live(res.bias_marg), live(res.trans_marg),
            live(res.first_mu), p_start, p_end,
        )  # fmt: skip


def _dot(theta: torch.Tensor, marg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sequence ``sum(theta * marg)`` with ``0 * (-inf) = 0``, and whether mass falls on a
    forbidden (``-inf``) entry. ``theta`` broadcasts against ``marg (batch, ...)``."""
    theta = theta.to(torch.float64).expand_as(marg)
    forbidden = ~torch.isfinite(theta)
    safe = torch.where(forbidden, torch.zeros_like(theta), theta)
    total = (safe * marg).reshape(marg.shape[0], -1).sum(dim=1)
    violated = (forbidden & (marg > 0)).reshape(marg.shape[0], -1).any(dim=1)
    return total, violated


def expected_score(
    marginals: FeatureMarginals,
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``E_p[score_q]`` per sequence (float64, differentiable in q's inputs), and where p puts
    mass on a segmentation q forbids.

    Args:
        marginals: p's :class:`FeatureMarginals`.
        cum_scores: q's ``(batch, T+1, C)``.
        transition: q's ``(K, C, C)`` (forbidden entries ``-inf``).
        duration_bias: q's ``(K, C)`` (forbidden entries ``-inf``).
        proj_start: q's optional ``(batch, T, C)``.
        proj_end: q's optional ``(batch, T, C)``.

    Returns:
        ``(expected (batch,), violated (batch,) bool)``; ``expected`` leaves out the forbidden
        entries (so it stays finite, with finite gradients).
    """
    cum = cum_scores.to(torch.float64)
    emissions = cum[:, 1:] - cum[:, :-1]
    start = safe_logsumexp(transition.to(torch.float64), dim=-2)  # (K, C): its own input
    terms = [
        _dot(emissions, marginals.position),
        _dot(duration_bias[None], marginals.duration),
        _dot(transition[None], marginals.transition),
        _dot(start[None], marginals.first),
    ]
    if proj_start is not None:
        terms.append(_dot(proj_start, marginals.segment_start))
    if proj_end is not None:
        terms.append(_dot(proj_end, marginals.segment_end))
    total = sum(t for t, _ in terms)
    violated = torch.stack([v for _, v in terms]).any(dim=0)
    return total, violated


def prepare_pair(
    p: tuple, q: tuple, lengths: torch.Tensor, K: int
) -> tuple[KernelInputs, KernelInputs]:
    """Both models' prepared inputs with ``(K, C, C)`` transitions; p's detached.

    Args:
        p: ``(cum_scores, transition, duration_bias, proj_start, proj_end)`` of p.
        q: the same of q.
        lengths: ``(batch,)`` shared lengths.
        K: shared longest segment.
    """
    p = tuple(None if x is None else x.detach() for x in p)
    p_inp = prepare_inputs(p[0], per_duration(p[1], K), p[2], lengths, K, p[3], p[4])
    q_inp = prepare_inputs(q[0], per_duration(q[1], K), q[2], lengths, K, q[3], q[4])
    return p_inp, q_inp
