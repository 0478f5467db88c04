"""``semi_crf_streaming_cross_entropy`` / ``semi_crf_streaming_kl_divergence`` between two models."""

from __future__ import annotations

import torch

from .._shared.inputs import compute_dtype
from ..logpartition.api import semi_crf_streaming_forward
from ..validation import validate_streaming_inputs
from .pytorch import expected_score, feature_marginals, prepare_pair

__all__ = ["semi_crf_streaming_cross_entropy", "semi_crf_streaming_kl_divergence"]

_DOC_ARGS = """
    Args:
        p_cum_scores: p's ``(batch, T+1, C)`` cumulative scores (a constant: no gradient).
        p_transition: p's ``(C, C)`` or ``(K, C, C)`` (a constant).
        p_duration_bias: p's ``(K, C)`` (a constant).
        q_cum_scores: q's ``(batch, T+1, C)``, same shape as p's.
        q_transition: q's ``(C, C)`` or ``(K, C, C)`` (either shape, whatever p's).
        q_duration_bias: q's ``(K, C)``.
        lengths: ``(batch,)`` integer lengths in ``[1, T]``, shared by p and q.
        K: the longest segment, shared.
        p_proj_start, p_proj_end, q_proj_start, q_proj_end: optional ``(batch, T, C)``
            projections of each model.
        validate: run the value checks of :func:`validate_streaming_inputs` on both models.
"""


def _check_pair(p: tuple, q: tuple, lengths: torch.Tensor, K: int, validate: bool) -> None:
    def check(name: str, x: tuple) -> None:
        try:
            validate_streaming_inputs(x[0], x[1], x[2], lengths, K, x[3], x[4], validate=validate)
        except (ValueError, TypeError) as err:
            raise type(err)(f"{name}'s model: {err}") from None

    check("p", p)
    if not isinstance(q[0], torch.Tensor) or q[0].shape != p[0].shape or q[0].device != p[0].device:
        raise ValueError(
            f"q_cum_scores: expected p's shape {tuple(p[0].shape)} on {p[0].device} (the same "
            f"batch, T and C), got {tuple(getattr(q[0], 'shape', ()))} on "
            f"{getattr(q[0], 'device', None)}"
        )
    check("q", q)


def _divergence(p: tuple, q: tuple, lengths: torch.Tensor, K: int, validate: bool, kl: bool):
    _check_pair(p, q, lengths, K, validate)
    p_inp, q_inp = prepare_pair(p, q, lengths, K)
    marg = feature_marginals(p_inp)
    log_zq = semi_crf_streaming_forward(
        q[0], q[1], q[2], lengths, K, proj_start=q[3], proj_end=q[4], validate=False
    ).to(torch.float64)
    e_q, violated = expected_score(
        marg, q_inp.cum_scores, q_inp.transition, q_inp.duration_bias, q_inp.proj_start,
        q_inp.proj_end,
    )  # fmt: skip
    infinite = marg.alive & (violated | ~torch.isfinite(log_zq))
    safe_log_zq = torch.where(torch.isfinite(log_zq), log_zq, torch.zeros_like(log_zq))
    value = safe_log_zq - e_q
    if kl:
        e_p, _ = expected_score(
            marg, p_inp.cum_scores, p_inp.transition, p_inp.duration_bias, p_inp.proj_start,
            p_inp.proj_end,
        )  # fmt: skip
        log_zp = torch.where(marg.alive, marg.log_partition, torch.zeros_like(marg.log_partition))
        value = value - (log_zp - e_p)  # minus p's entropy
    value = torch.where(marg.alive, value, torch.zeros_like(value))
    value = torch.where(infinite, torch.full_like(value, torch.inf), value)
    return value.to(compute_dtype(q[0]))


def semi_crf_streaming_cross_entropy(
    p_cum_scores: torch.Tensor,
    p_transition: torch.Tensor,
    p_duration_bias: torch.Tensor,
    q_cum_scores: torch.Tensor,
    q_transition: torch.Tensor,
    q_duration_bias: torch.Tensor,
    lengths: torch.Tensor,
    K: int,
    *,
    p_proj_start: torch.Tensor | None = None,
    p_proj_end: torch.Tensor | None = None,
    q_proj_start: torch.Tensor | None = None,
    q_proj_end: torch.Tensor | None = None,
    validate: bool = True,
) -> torch.Tensor:
    """Exact cross-entropy ``CE(p, q) = -E_p[log q(y)]`` between two streaming models, any T.

    ``CE(p, q) = log Z_q - E_p[score_q]``, where ``score_q`` is linear in q's per-position
    scores, duration biases, transitions, start scores ``logsumexp_{c'} transition_q[c', c]``
    (taken as their own inputs) and projections, and the expectation uses p's marginals of
    exactly those features (``docs/conventions.md`` section 4): one forward and one backward
    scan of p, one forward of q. ``0 * (-inf) = 0``. Gradients flow to q's inputs only; p's are
    treated as constants (a student q trained against a fixed teacher p).
    """
    p = (p_cum_scores, p_transition, p_duration_bias, p_proj_start, p_proj_end)
    q = (q_cum_scores, q_transition, q_duration_bias, q_proj_start, q_proj_end)
    return _divergence(p, q, lengths, K, validate, kl=False)


def semi_crf_streaming_kl_divergence(
    p_cum_scores: torch.Tensor,
    p_transition: torch.Tensor,
    p_duration_bias: torch.Tensor,
    q_cum_scores: torch.Tensor,
    q_transition: torch.Tensor,
    q_duration_bias: torch.Tensor,
    lengths: torch.Tensor,
    K: int,
    *,
    p_proj_start: torch.Tensor | None = None,
    p_proj_end: torch.Tensor | None = None,
    q_proj_start: torch.Tensor | None = None,
    q_proj_end: torch.Tensor | None = None,
    validate: bool = True,
) -> torch.Tensor:
    """Exact ``KL(p || q) = CE(p, q) - H(p)`` between two streaming models, any T.

    Computed as ``(log Z_q - log Z_p) - E_p[score_q - score_p]`` from p's feature marginals
    (see :func:`semi_crf_streaming_cross_entropy`). Gradients flow to q's inputs only.
    """
    p = (p_cum_scores, p_transition, p_duration_bias, p_proj_start, p_proj_end)
    q = (q_cum_scores, q_transition, q_duration_bias, q_proj_start, q_proj_end)
    return _divergence(p, q, lengths, K, validate, kl=True)


_DOC_RETURNS = """
    Returns:
        ``(batch,)`` float32 (float64 for float64 ``q_cum_scores``): ``+inf`` where p puts mass
        on a segmentation q forbids (its gradient is then 0); 0 for a sequence where p allows
        no segmentation at all.

    Raises:
        ValueError: different shapes for p and q, or bad inputs (named with the model).
        TypeError: wrong types.
"""
for _f in (semi_crf_streaming_cross_entropy, semi_crf_streaming_kl_divergence):
    _f.__doc__ = _f.__doc__.rstrip() + "\n" + _DOC_ARGS + _DOC_RETURNS
