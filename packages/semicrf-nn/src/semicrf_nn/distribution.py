"""``SemiCRFDistribution``: the distribution over segmentations of a streaming semi-CRF.

One object with everything a structured distribution offers (as pytorch-struct's
``SemiMarkovCRF`` does): log partition, ``log_prob`` of a segmentation, the mode, the k best,
exact samples, entropy, cross-entropy and KL to another model (also through
``torch.distributions.kl_divergence``), and posterior marginals. Every member streams over the
sequence (memory O(batch T C); O(k batch T C) for top-k), so it works at T = 100,000.
"""

from __future__ import annotations

import math
from typing import ClassVar, NamedTuple

import torch
from torch.distributions import Distribution, constraints, register_kl
from torch.distributions.utils import lazy_property

from semicrf_kernels import (
    Segmentation,
    score_segmentation_tensors,
    semi_crf_streaming_cross_entropy,
    semi_crf_streaming_forward,
    semi_crf_streaming_kl_divergence,
    semi_crf_streaming_sample,
    semi_crf_streaming_topk,
    semi_crf_streaming_viterbi,
    streaming_marginals_pytorch,
)
from semicrf_kernels.segmentation_score import check_segmentation
from semicrf_kernels.validation import check_K, validate_streaming_inputs

from .preprocess import position_mask

__all__ = ["SegmentationMarginals", "SemiCRFDistribution"]


class SegmentationMarginals(NamedTuple):
    """Posterior marginals of a :class:`SemiCRFDistribution` (no gradient).

    Attributes:
        boundary: ``(batch, T)`` P(a segment starts at t): 1 at ``t = 0``, 0 at padding.
        position: ``(batch, T, C)`` P(position t has label c); rows sum to 1 at valid positions.
    """

    boundary: torch.Tensor
    position: torch.Tensor


class SemiCRFDistribution(Distribution):
    """The distribution over labelled segmentations of the streaming semi-CRF.

    The model is ``docs/conventions.md`` section 1: ``p(y) = exp(score(y) - log Z)``. A
    segmentation is a :class:`semicrf_kernels.Segmentation` (per-position ``labels`` and
    ``starts``, ``(..., batch, T)``).

    Args:
        cum_scores: ``(batch, T+1, C)`` cumulative per-position scores, ``cum[:, 0] = 0``.
        transition: ``(C, C)`` or ``(K, C, C)``, ``transition[c_prev, c]``; ``-inf`` forbids.
        duration_bias: ``(K, C)``; row ``d - 1`` scores duration ``d``.
        lengths: ``(batch,)`` integer lengths in ``[1, T]``.
        K: the longest segment.
        proj_start: optional ``(batch, T, C)`` score at each segment's first position.
        proj_end: optional ``(batch, T, C)`` score at each segment's last position.
        use_triton: (keyword) let the kernels use Triton where they can run.
        validate: (keyword) run value checks on the inputs and on segmentations given to
            :meth:`log_prob`.

    Gradients: :attr:`log_partition` and :meth:`log_prob` are differentiable;
    :meth:`cross_entropy` / :meth:`kl_divergence` are differentiable in the *other* model's
    inputs only (this one is the fixed teacher); samples, top-k, entropy and marginals are not
    differentiable.
    """

    # Segmentations and unconstrained scores: nothing for torch.distributions to check.
    arg_constraints: ClassVar[dict] = {}
    has_rsample = False

    def __init__(
        self,
        cum_scores: torch.Tensor,
        transition: torch.Tensor,
        duration_bias: torch.Tensor,
        lengths: torch.Tensor,
        K: int,
        *,
        proj_start: torch.Tensor | None = None,
        proj_end: torch.Tensor | None = None,
        use_triton: bool = True,
        validate: bool = True,
    ) -> None:
        K = check_K(K)
        validate_streaming_inputs(
            cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end,
            validate=validate,
        )  # fmt: skip
        self.cum_scores = cum_scores
        self.transition = transition
        self.duration_bias = duration_bias
        self.lengths = lengths.long()
        self.K = K
        self.proj_start = proj_start
        self.proj_end = proj_end
        self.use_triton = bool(use_triton)
        self.validate = bool(validate)
        B, T1, C = cum_scores.shape
        self.num_classes = C
        super().__init__(
            batch_shape=torch.Size([B]), event_shape=torch.Size([T1 - 1]), validate_args=False
        )

    @property
    def support(self) -> constraints.Constraint:
        """Labelled segmentations (checked by :meth:`log_prob`; no ``torch.distributions``
        constraint describes them)."""
        return constraints.dependent

    @property
    def _model(self) -> tuple:
        return (self.cum_scores, self.transition, self.duration_bias, self.lengths, self.K)

    @property
    def _proj(self) -> dict:
        return {"proj_start": self.proj_start, "proj_end": self.proj_end}

    # ------------------------------------------------------------------ scores
    @lazy_property
    def log_partition(self) -> torch.Tensor:
        """``(batch,)`` log Z (differentiable); ``-inf`` where nothing is allowed."""
        return semi_crf_streaming_forward(
            *self._model, "log", self.use_triton, proj_start=self.proj_start,
            proj_end=self.proj_end, validate=False,
        )  # fmt: skip

    def score(self, segmentation: Segmentation) -> torch.Tensor:
        """``(..., batch)`` total score of each segmentation (differentiable).

        Raises:
            ValueError: a segmentation of the wrong shape, or (when validating) not a valid
                segmentation of every sequence (labels out of range, a segment longer than K...).
        """
        labels = getattr(segmentation, "labels", None)
        if isinstance(labels, torch.Tensor) and labels.shape[-1:] != self.event_shape:
            # before the value checks, which would misread a short segmentation
            raise ValueError(
                f"segmentation.labels: expected T = {self.event_shape[0]} positions, got shape "
                f"{tuple(labels.shape)}"
            )
        check_segmentation(
            segmentation, self.lengths, self.K, self.num_classes, check_values=self.validate
        )
        return score_segmentation_tensors(
            self.cum_scores, self.transition, self.duration_bias, self.lengths, segmentation,
            **self._proj,
        )  # fmt: skip

    def log_prob(self, value: Segmentation) -> torch.Tensor:
        """``(..., batch)`` ``log p(value) = score(value) - log Z`` (differentiable); ``-inf``
        for a segmentation the constraints forbid.

        Args:
            value: :class:`semicrf_kernels.Segmentation` with ``(..., batch, T)`` labels and
                starts (its ``scores`` are ignored: the score is recomputed).
        """
        score = self.score(value)
        log_z = self.log_partition.to(score.dtype)
        allowed = torch.isfinite(score) & torch.isfinite(log_z)
        safe = torch.where(allowed, score - torch.where(allowed, log_z, 0.0), 0.0)
        return torch.where(allowed, safe, -math.inf)

    # ------------------------------------------------------------------ decoding
    @lazy_property
    def argmax(self) -> Segmentation:
        """The most probable segmentation (Viterbi): :class:`Segmentation`, ``(batch, T)``."""
        path = semi_crf_streaming_viterbi(
            *self._model, self.use_triton, proj_start=self.proj_start, proj_end=self.proj_end,
            validate=False,
        )  # fmt: skip
        return path.to_segmentation()

    @property
    def mode(self) -> Segmentation:
        """Same as :attr:`argmax`."""
        return self.argmax

    def topk(self, k: int) -> Segmentation:
        """The ``k`` best segmentations, ``(k, batch, T)``, in decreasing score (ties as
        :func:`semicrf_kernels.semi_crf_streaming_topk` documents; ``topk(1)[0]`` is
        :attr:`argmax`). Ranks beyond the number of allowed segmentations score ``-inf``, with
        labels ``-1`` and no starts."""
        return semi_crf_streaming_topk(
            *self._model, k, **self._proj, use_triton=self.use_triton, validate=False
        )

    def sample(
        self, sample_shape: torch.Size | tuple[int, ...] = (), *,
        generator: torch.Generator | None = None,
    ) -> Segmentation:  # fmt: skip
        """Exact samples: :class:`Segmentation` with ``(*sample_shape, batch, T)`` labels and
        starts and ``(*sample_shape, batch)`` scores.

        Args:
            sample_shape: leading shape of the samples (``()``: one sample, no leading dim).
            generator: (keyword) a ``torch.Generator`` on the inputs' device, for reproducible
                samples.
        """
        shape = torch.Size(sample_shape)
        n = math.prod(shape)
        if n < 1:
            raise ValueError(f"sample_shape: expected at least one sample, got {tuple(shape)}")
        seg = semi_crf_streaming_sample(
            *self._model,
            n,
            **self._proj,
            generator=generator,
            use_triton=self.use_triton,
            validate=False,
        )
        B, T = seg.labels.shape[-2:]
        return Segmentation(
            seg.labels.reshape(*shape, B, T),
            seg.starts.reshape(*shape, B, T),
            seg.scores.reshape(*shape, B),
        )

    # ------------------------------------------------------------------ information
    @lazy_property
    def _marginals(self):
        return streaming_marginals_pytorch(
            *(x.detach() for x in self._model[:3]), self.lengths, self.K,
            *(None if x is None else x.detach() for x in (self.proj_start, self.proj_end)),
            validate=False,
        )  # fmt: skip

    def entropy(self) -> torch.Tensor:
        """``(batch,)`` exact Shannon entropy (nats), ``log Z - E[score]`` (no gradient); 0 where
        nothing is allowed."""
        return self._marginals.entropy.clamp(min=0.0)

    @property
    def marginals(self) -> SegmentationMarginals:
        """Posterior boundary ``(batch, T)`` and position ``(batch, T, C)`` marginals."""
        m = self._marginals
        valid = position_mask(self.lengths.to(m.position.device), self.event_shape[0])
        # exactly 0 past each length (the backward leaves rounding residue there)
        return SegmentationMarginals(
            torch.where(valid, m.boundary, 0.0), torch.where(valid[..., None], m.position, 0.0)
        )

    def __repr__(self) -> str:
        B, T1, C = self.cum_scores.shape
        return (
            f"SemiCRFDistribution(batch={B}, T={T1 - 1}, C={C}, K={self.K}, transition="
            f"{tuple(self.transition.shape)}, proj_start={self.proj_start is not None}, "
            f"proj_end={self.proj_end is not None}, device={self.cum_scores.device})"
        )

    def _check_other(self, other: object) -> SemiCRFDistribution:
        if not isinstance(other, SemiCRFDistribution):
            raise TypeError(f"other: expected a SemiCRFDistribution, got {type(other).__name__}")
        if other.cum_scores.shape != self.cum_scores.shape or other.K != self.K:
            raise ValueError(
                f"other: expected the same (batch, T+1, C) = {tuple(self.cum_scores.shape)} and "
                f"K = {self.K}, got {tuple(other.cum_scores.shape)} and K = {other.K}"
            )
        if not torch.equal(other.lengths.to(self.lengths.device), self.lengths):
            raise ValueError(
                f"other.lengths: expected this distribution's lengths {self.lengths.tolist()}, "
                f"got {other.lengths.tolist()}"
            )
        return other

    def _pair(self, other: SemiCRFDistribution) -> tuple:
        return (
            self.cum_scores, self.transition, self.duration_bias, other.cum_scores,
            other.transition, other.duration_bias, self.lengths, self.K,
        )  # fmt: skip

    def _pair_kwargs(self, other: SemiCRFDistribution) -> dict:
        return {
            "p_proj_start": self.proj_start, "p_proj_end": self.proj_end,
            "q_proj_start": other.proj_start, "q_proj_end": other.proj_end, "validate": False,
        }  # fmt: skip

    def cross_entropy(self, other: SemiCRFDistribution) -> torch.Tensor:
        """``(batch,)`` exact ``CE(self, other) = -E_self[log other(y)]``; differentiable in
        ``other``'s inputs only; ``+inf`` where ``self`` puts mass on what ``other`` forbids."""
        other = self._check_other(other)
        return semi_crf_streaming_cross_entropy(*self._pair(other), **self._pair_kwargs(other))

    def kl_divergence(self, other: SemiCRFDistribution) -> torch.Tensor:
        """``(batch,)`` exact ``KL(self || other)``; differentiable in ``other``'s inputs only."""
        other = self._check_other(other)
        return semi_crf_streaming_kl_divergence(*self._pair(other), **self._pair_kwargs(other))


@register_kl(SemiCRFDistribution, SemiCRFDistribution)
def _kl_semicrf(p: SemiCRFDistribution, q: SemiCRFDistribution) -> torch.Tensor:
    return p.kl_divergence(q)
