"""``SemiMarkovCRFHead``: a semi-Markov CRF on top of any encoder.

The model is the streaming model of conventions section 1. Per-position emission scores come
from the encoder (optionally through a linear projection), optionally zero-centered; segment
scores add a duration bias, optional boundary scores, and a transition from the previous label
(or, for the first segment, the start score ``logsumexp_{c'} transition[c', c]``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from semicrf_kernels import (
    NEG_INF,
    segments_to_labels,
    semi_crf_streaming_forward,
    semi_crf_streaming_viterbi,
)
from semicrf_semirings import LogSemiring, MaxSemiring, Semiring

from .backends import build_edge_tensor, check_edge_memory, exact_sum
from .distribution import SemiCRFDistribution
from .durations import DurationDistribution, LearnedDuration, create_duration_distribution
from .gold import describe_forbidden_gold, gold_segmentation, segments_to_tensors
from .masks import accepts_mask
from .preprocess import ModelInputs, position_mask, prepare_inputs
from .segment import Segment, ViterbiResult
from .validation import (
    check_choice,
    check_finite,
    check_hidden_states,
    check_labels,
    check_lengths,
    check_log_weights,
    check_scores_finite,
    value_checks_enabled,
)

__all__ = ["BACKENDS", "REDUCTIONS", "SemiMarkovCRFHead"]

BACKENDS = ("auto", "streaming", "exact", "binary_tree_sharded")
REDUCTIONS = ("mean", "sum", "none")


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return value


class SemiMarkovCRFHead(nn.Module):
    """Semi-Markov CRF head: partition function, NLL loss, Viterbi decoding.

    Args:
        num_classes: ``C``, number of labels.
        max_duration: ``K``, the longest segment (durations ``1..K``).
        hidden_dim: encoder feature size; when given, a linear projection ``hidden_dim -> C``
            produces the emission scores. When None, ``hidden_states`` must already be
            ``(batch, T, C)`` emission scores.
        init_scale: standard deviation of the random initialisation of transitions, the
            learned duration table and boundary projections.
        duration_distribution: ``None``/``"learned"`` (a free ``(K, C)`` table), a name
            accepted by :func:`create_duration_distribution` or a ``DurationDistribution``.
        edge_memory_threshold: bytes the exact backends may use for their
            ``(batch, T, K+1, C, C)`` edge tensor; above it they raise ``ValueError``.
        num_warps: Triton warps per program, a power of two in ``[1, 32]`` (2-8 recommended).
        center_emissions: (keyword) zero-center the emission scores per sequence and label
            over the valid positions. A model choice (it changes the distribution unless all
            labels have the same mean); it keeps cumulative sums small at large ``T``.
        duration_dependent_transitions: (keyword) learn ``(K, C, C)`` transitions, the
            segment of duration ``d`` reading ``transition[d-1]``.
        transition_mask: (keyword) bool ``(C, C)``, True where the transition ``c_prev -> c``
            is allowed. Forbidden transitions score ``-inf`` (never trained or penalised). A
            label no transition may enter also cannot start a sequence (its start score is a
            log-sum-exp over the column).
        use_sequence_boundaries: (keyword) learn ``pi_start``/``pi_end`` ``(C,)`` scores of
            the first and last segment's labels.
        use_boundary_projections: (keyword) learn linear maps ``hidden_dim -> C``
            (``proj_start_layer``, ``proj_end_layer``) scoring a segment at its first and last
            position. Needs ``hidden_dim``.
        validate: (keyword) run value checks (NaN, ranges, gold in support); they need a host
            synchronisation and are skipped under ``torch.compile``.

    Attributes:
        transition: ``(C, C)`` or ``(K, C, C)`` transitions in use (``-inf`` where masked).
        duration_bias: ``(K, C)`` duration scores in use.
    """

    def __init__(
        self,
        num_classes: int,
        max_duration: int,
        hidden_dim: int | None = None,
        init_scale: float = 0.1,
        duration_distribution: str | DurationDistribution | None = None,
        edge_memory_threshold: float = 8e9,
        num_warps: int = 4,
        *,
        center_emissions: bool = True,
        duration_dependent_transitions: bool = False,
        transition_mask: torch.Tensor | None = None,
        use_sequence_boundaries: bool = False,
        use_boundary_projections: bool = False,
        validate: bool = True,
    ) -> None:
        super().__init__()
        C = _check_int("num_classes", num_classes, 1)
        K = _check_int("max_duration", max_duration, 1)
        if hidden_dim is not None:
            _check_int("hidden_dim", hidden_dim, 1)
        _check_int("num_warps", num_warps, 1)
        if num_warps > 32 or num_warps & (num_warps - 1):
            # Triton needs a power of two; failing here beats failing at the first GPU call.
            raise ValueError(f"num_warps must be a power of two in [1, 32], got {num_warps}")
        if not (
            isinstance(init_scale, (int, float)) and math.isfinite(init_scale) and init_scale >= 0
        ):
            raise ValueError(f"init_scale must be a finite float >= 0, got {init_scale!r}")
        if not (isinstance(edge_memory_threshold, (int, float)) and edge_memory_threshold > 0):
            raise ValueError(
                f"edge_memory_threshold must be a positive number of bytes, got {edge_memory_threshold!r}"
            )
        if use_boundary_projections and hidden_dim is None:
            raise ValueError(
                "use_boundary_projections=True requires hidden_dim (the projections read hidden states)"
            )
        self.num_classes = C
        self.max_duration = K
        self.hidden_dim = hidden_dim
        self.edge_memory_threshold = float(edge_memory_threshold)
        self.num_warps = num_warps
        self.center_emissions = bool(center_emissions)
        self.duration_dependent_transitions = bool(duration_dependent_transitions)
        self.use_sequence_boundaries = bool(use_sequence_boundaries)
        self.use_boundary_projections = bool(use_boundary_projections)
        self.validate = bool(validate)

        shape = (K, C, C) if duration_dependent_transitions else (C, C)
        raw = torch.randn(shape) * init_scale
        if transition_mask is not None:
            if not isinstance(transition_mask, torch.Tensor):
                raise TypeError(
                    f"transition_mask must be a bool tensor, got {type(transition_mask).__name__}"
                )
            if transition_mask.dtype != torch.bool or transition_mask.shape != (C, C):
                raise ValueError(
                    f"transition_mask must be a bool tensor of shape (C, C) = ({C}, {C}), "
                    f"got {transition_mask.dtype} {tuple(transition_mask.shape)}"
                )
            transition_mask = transition_mask.detach().clone().cpu()
            raw = raw * transition_mask  # forbidden entries stay 0: never read, never trained
        self.transition_raw = nn.Parameter(raw)
        self.register_buffer("transition_mask", transition_mask)

        if duration_distribution is None or duration_distribution == "learned":
            self.duration_dist = LearnedDuration(K, C, init_std=init_scale)
        else:
            self.duration_dist = create_duration_distribution(duration_distribution, K, C)

        self.projection = nn.Linear(hidden_dim, C) if hidden_dim is not None else None
        self.proj_start_layer: nn.Linear | None = None
        self.proj_end_layer: nn.Linear | None = None
        if use_boundary_projections:
            self.proj_start_layer = nn.Linear(hidden_dim, C, bias=False)
            self.proj_end_layer = nn.Linear(hidden_dim, C, bias=False)
            for layer in (self.proj_start_layer, self.proj_end_layer):
                nn.init.normal_(layer.weight, std=init_scale)
        self.pi_start: nn.Parameter | None = None
        self.pi_end: nn.Parameter | None = None
        if use_sequence_boundaries:
            self.pi_start = nn.Parameter(torch.zeros(C))
            self.pi_end = nn.Parameter(torch.zeros(C))

    # ------------------------------------------------------------------ parameters in use
    @property
    def transition(self) -> torch.Tensor:
        """``(C, C)`` or ``(K, C, C)`` transitions, ``transition[c_prev, c]``; ``-inf`` where masked."""
        if self.transition_mask is None:
            return self.transition_raw
        return torch.where(
            self.transition_mask,
            self.transition_raw,
            torch.full_like(self.transition_raw, -torch.inf),
        )

    @property
    def duration_bias(self) -> torch.Tensor:
        """``(K, C)`` duration scores, row ``d-1`` for duration ``d``."""
        return self.duration_dist()

    def extra_repr(self) -> str:
        parts = [f"num_classes={self.num_classes}", f"max_duration={self.max_duration}"]
        if self.hidden_dim is not None:
            parts.append(f"hidden_dim={self.hidden_dim}")
        parts.append(f"center_emissions={self.center_emissions}")
        for flag in (
            "duration_dependent_transitions",
            "use_sequence_boundaries",
            "use_boundary_projections",
        ):
            if getattr(self, flag):
                parts.append(f"{flag}=True")
        if self.transition_mask is not None:
            parts.append(f"masked_transitions={int((~self.transition_mask).sum())}")
        return ", ".join(parts)

    # ------------------------------------------------------------------ preprocessing
    def _check(self, hidden_states: torch.Tensor, lengths: torch.Tensor) -> bool:
        """Check the arguments; return whether value checks are on."""
        feature_dim = self.hidden_dim if self.hidden_dim is not None else self.num_classes
        check_hidden_states(hidden_states, feature_dim)
        if hidden_states.device != self.transition_raw.device:
            raise ValueError(
                f"hidden_states is on {hidden_states.device} but the head's parameters are on "
                f"{self.transition_raw.device}"
            )
        checking = value_checks_enabled(self.validate)
        B, T, _ = hidden_states.shape
        if (
            isinstance(lengths, torch.Tensor)
            and lengths.ndim == 1
            and lengths.shape[0] != B
            and lengths.shape[0] == T
        ):
            # The usual cause: a sequence-first encoder output (T, batch, features).
            raise ValueError(
                f"hidden_states has shape {tuple(hidden_states.shape)}, read as (batch={B}, "
                f"T={T}, features), but lengths has {lengths.shape[0]} entries, the size of its "
                f"second dim: hidden_states is probably transposed (T, batch, features). Pass "
                f"(batch, T, features), e.g. hidden_states.transpose(0, 1)"
            )
        check_lengths(lengths, B, T, hidden_states.device, check_values=checking)
        if checking:
            # Padding is ignored (prepare_inputs zeroes it), so only valid positions must be finite.
            valid = position_mask(lengths, T)[..., None]
            zero = torch.zeros((), dtype=hidden_states.dtype, device=hidden_states.device)
            check_finite(torch.where(valid, hidden_states, zero), "hidden_states")
        return checking

    def _prepare(self, hidden_states: torch.Tensor, lengths: torch.Tensor) -> ModelInputs:
        inputs = prepare_inputs(
            hidden_states,
            lengths,
            projection=self.projection,
            transition=self.transition,
            duration_bias=self.duration_bias,
            center=self.center_emissions,
            proj_start_layer=self.proj_start_layer,
            proj_end_layer=self.proj_end_layer,
            pi_start=self.pi_start,
            pi_end=self.pi_end,
        )
        if value_checks_enabled(self.validate):
            check_scores_finite(inputs.cum_scores)
            # Checked here for every backend: the exact ones would otherwise read NaN as a
            # forbidden choice (build_edge_tensor) instead of failing like the streaming one.
            check_log_weights(inputs.transition, "transition")
            check_log_weights(inputs.duration_bias, "duration_bias")
        return inputs

    # ------------------------------------------------------------------ the semiring sum
    def _resolve_backend(self, backend: str) -> str:
        check_choice(backend, "backend", BACKENDS)
        return "streaming" if backend == "auto" else backend

    def _semiring_sum(
        self,
        inputs: ModelInputs,
        lengths: torch.Tensor,
        backend: str,
        semiring: type[Semiring],
        use_triton: bool,
    ) -> torch.Tensor:
        """``(batch,)`` semiring sum over segmentations (log Z, Viterbi score, entropy...)."""
        if backend == "streaming":
            name = {LogSemiring: "log", MaxSemiring: "max"}.get(semiring)
            if name is None:
                raise ValueError(
                    f"backend='streaming' supports the log and max semirings, got {semiring.__name__}"
                )
            return semi_crf_streaming_forward(
                inputs.cum_scores,
                inputs.transition,
                inputs.duration_bias,
                lengths,
                self.max_duration,
                name,
                use_triton,
                self.num_warps,
                proj_start=inputs.proj_start,
                proj_end=inputs.proj_end,
                validate=self.validate,
            )
        B, T1, C = inputs.cum_scores.shape
        check_edge_memory(
            B,
            T1 - 1,
            self.max_duration,
            C,
            inputs.cum_scores.dtype,
            self.edge_memory_threshold,
            backend,
        )
        edge = build_edge_tensor(
            inputs.cum_scores,
            inputs.transition,
            inputs.duration_bias,
            self.max_duration,
            inputs.proj_start,
            inputs.proj_end,
        )
        return exact_sum(edge, lengths, semiring, sharded=backend == "binary_tree_sharded")

    # ------------------------------------------------------------------ public API
    @accepts_mask
    def forward(
        self,
        hidden_states: torch.Tensor,
        lengths: torch.Tensor,
        use_triton: bool = True,
        backend: str = "auto",
    ) -> dict[str, torch.Tensor | None]:
        """Log partition function of each sequence.

        Args:
            hidden_states: ``(batch, T, hidden_dim)`` encoder output (``(batch, T, C)`` without
                projection), any floating dtype; bf16/fp16 are computed in float32.
            lengths: ``(batch,)`` integer valid lengths, ``1 <= L <= T``.
            use_triton: let the kernels use Triton where available (CUDA).
            backend: ``"auto"`` (= ``"streaming"``), ``"streaming"`` (no edge tensor, any
                ``T``), ``"exact"`` (edge tensor + linear scan) or ``"binary_tree_sharded"``
                (edge tensor + sharded binary tree); all give the same numbers.

        Returns:
            dict with ``partition`` ``(batch,)`` log Z (float32, float64 for float64 inputs;
            ``-inf`` when no segmentation is allowed), ``cum_scores`` ``(batch, T+1, C)``,
            ``proj_start``/``proj_end`` ``(batch, T, C)`` or None, ``transition`` and
            ``duration_bias`` as used (the inputs of :func:`score_gold_vectorized`).
        """
        backend = self._resolve_backend(backend)
        self._check(hidden_states, lengths)
        inputs = self._prepare(hidden_states, lengths)
        partition = self._semiring_sum(inputs, lengths, backend, LogSemiring, use_triton)
        return {
            "partition": partition.to(inputs.cum_scores.dtype),
            "cum_scores": inputs.cum_scores,
            "proj_start": inputs.proj_start,
            "proj_end": inputs.proj_end,
            "transition": inputs.transition,
            "duration_bias": inputs.duration_bias,
        }

    def _nll(
        self,
        hidden_states: torch.Tensor,
        lengths: torch.Tensor,
        labels: torch.Tensor | None,
        segments: Sequence[Sequence[Segment | tuple[int, int, int]]] | None,
        use_triton: bool,
        backend: str,
    ) -> torch.Tensor:
        """``(batch,)`` unreduced negative log-likelihood."""
        backend = self._resolve_backend(backend)
        checking = self._check(hidden_states, lengths)
        B, T, _ = hidden_states.shape
        if (labels is None) == (segments is None):
            raise ValueError("compute_loss needs exactly one of labels and segments")
        run_starts = None
        if segments is not None:
            labels, run_starts = segments_to_tensors(segments, lengths, T, self.num_classes)
        else:
            check_labels(labels, lengths, self.num_classes, B, T, check_values=checking)
        inputs = self._prepare(hidden_states, lengths)
        partition = self._semiring_sum(inputs, lengths, backend, LogSemiring, use_triton)
        parts = gold_segmentation(
            inputs.cum_scores,
            labels,
            lengths,
            inputs.transition,
            inputs.duration_bias,
            self.max_duration,
            inputs.proj_start,
            inputs.proj_end,
            run_starts,
        )
        gold = parts.segment_scores().sum(dim=1)
        impossible = gold == -torch.inf
        if checking and bool(impossible.any()):
            b = int(impossible.nonzero()[0])
            raise ValueError(
                f"the gold segmentation of sequence {b} has probability 0 under the model's "
                f"constraints: {describe_forbidden_gold(parts, b)}"
            )
        # A forbidden gold has NLL +inf (documented); the where keeps -inf - -inf out.
        safe_gold = torch.where(impossible, torch.zeros_like(gold), gold)
        nll = torch.where(
            impossible, torch.full_like(gold, torch.inf), partition.to(torch.float64) - safe_gold
        )
        return nll.to(inputs.cum_scores.dtype)

    @accepts_mask
    def compute_loss(
        self,
        hidden_states: torch.Tensor,
        lengths: torch.Tensor,
        labels: torch.Tensor | None = None,
        use_triton: bool = True,
        backend: str = "auto",
        reduction: str = "mean",
        *,
        segments: Sequence[Sequence[Segment | tuple[int, int, int]]] | None = None,
    ) -> torch.Tensor:
        """Negative log-likelihood ``log Z - score(gold) >= 0`` of the gold segmentation.

        Args:
            hidden_states: ``(batch, T, hidden_dim)`` encoder output.
            lengths: ``(batch,)`` integer valid lengths.
            labels: ``(batch, T)`` integer gold labels in ``[0, C)`` at valid positions
                (padding ignored). Gold segments are maximal runs of equal labels, runs longer
                than ``K`` split into ``K``-sized pieces.
            use_triton: let the kernels use Triton where available.
            backend: as in :meth:`forward`.
            reduction: ``"mean"`` over the batch, ``"sum"`` or ``"none"`` (``(batch,)``).
            segments: (keyword) explicit gold segments instead of ``labels``: ``segments[b]`` a
                list of ``Segment`` or ``(start, end, label)`` tiling ``[0, L)`` (two adjacent
                segments may share a label).

        Returns:
            Scalar (or ``(batch,)`` for ``"none"``) in the partition's dtype. A gold path that
            the constraints forbid raises ``ValueError`` when validating, else its NLL is
            ``+inf``.
        """
        check_choice(reduction, "reduction", REDUCTIONS)
        nll = self._nll(hidden_states, lengths, labels, segments, use_triton, backend)
        return self._reduce(nll, reduction)

    @staticmethod
    def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
        if reduction == "mean":
            return values.mean()
        if reduction == "sum":
            return values.sum()
        return values

    # ------------------------------------------------------------------ the distribution
    @accepts_mask
    def distribution(
        self, hidden_states: torch.Tensor, lengths: torch.Tensor | None = None, *,
        use_triton: bool = True,
    ) -> SemiCRFDistribution:  # fmt: skip
        """The distribution over segmentations for these inputs (differentiable in the head).

        Args:
            hidden_states: ``(batch, T, hidden_dim)`` encoder output.
            lengths: ``(batch,)`` integer valid lengths (or give ``mask=``; neither: every
                sequence is full length, as torch-crf without a mask).
            use_triton: (keyword) let the kernels use Triton where available.

        Returns:
            :class:`SemiCRFDistribution` of the head's scores (after centering, projections and
            boundaries): ``log_partition``, ``log_prob``, ``argmax``, ``topk``, ``sample``,
            ``entropy``, ``cross_entropy``, ``kl_divergence``, ``marginals``.
        """
        self._check(hidden_states, lengths)
        inputs = self._prepare(hidden_states, lengths)
        return SemiCRFDistribution(
            inputs.cum_scores, inputs.transition, inputs.duration_bias, lengths,
            self.max_duration, proj_start=inputs.proj_start, proj_end=inputs.proj_end,
            use_triton=use_triton, validate=self.validate,
        )  # fmt: skip

    @accepts_mask
    @torch.no_grad()
    def decode_labels(
        self, hidden_states: torch.Tensor, lengths: torch.Tensor | None = None, *,
        use_triton: bool = True,
    ) -> torch.Tensor:  # fmt: skip
        """The best segmentation as per-position labels (what torch-crf's ``decode`` gives).

        Args:
            hidden_states: ``(batch, T, hidden_dim)`` encoder output.
            lengths: ``(batch,)`` integer valid lengths (or give ``mask=``; neither: every
                sequence is full length, as torch-crf without a mask).
            use_triton: (keyword) let the kernels use Triton where available.

        Returns:
            ``(batch, T)`` int64 labels of the Viterbi segmentation, ``-1`` past each length
            (and everywhere for a sequence with no allowed segmentation).
        """
        self._check(hidden_states, lengths)
        inputs = self._prepare(hidden_states, lengths)
        path = semi_crf_streaming_viterbi(
            inputs.cum_scores, inputs.transition, inputs.duration_bias, lengths,
            self.max_duration, use_triton, self.num_warps, proj_start=inputs.proj_start,
            proj_end=inputs.proj_end, validate=self.validate,
        )  # fmt: skip
        return segments_to_labels(path, hidden_states.shape[1])

    @accepts_mask
    @torch.no_grad()
    def decode(
        self,
        hidden_states: torch.Tensor,
        lengths: torch.Tensor,
        use_triton: bool = True,
        backend: str = "auto",
    ) -> torch.Tensor:
        """Viterbi score (best segmentation's score) of each sequence.

        Returns:
            ``(batch,)`` float (``-inf`` when no segmentation is allowed).
        """
        backend = self._resolve_backend(backend)
        self._check(hidden_states, lengths)
        inputs = self._prepare(hidden_states, lengths)
        return self._semiring_sum(inputs, lengths, backend, MaxSemiring, use_triton).to(
            inputs.cum_scores.dtype
        )

    @accepts_mask
    @torch.no_grad()
    def decode_with_traceback(
        self,
        hidden_states: torch.Tensor,
        lengths: torch.Tensor,
        max_traceback_length: int = 10000,
        use_triton: bool = True,
    ) -> ViterbiResult:
        """Best segmentation of each sequence, as ``Segment`` lists.

        The kernels compute the path on the device; it then crosses to the host in one
        transfer. Ties go to the smaller duration, then the smaller label.

        Args:
            hidden_states: ``(batch, T, hidden_dim)`` encoder output.
            lengths: ``(batch,)`` integer valid lengths.
            max_traceback_length: longest sequence accepted; a longer one raises
                ``ValueError`` (the host-side lists grow with ``T``).
            use_triton: let the kernels use Triton where available.

        Returns:
            :class:`ViterbiResult`: ``scores (batch,)`` and per-sequence segments whose scores
            add up to the sequence's score.
        """
        _check_int("max_traceback_length", max_traceback_length, 1)
        self._check(hidden_states, lengths)
        longest = int(lengths.max())
        if longest > max_traceback_length:
            raise ValueError(
                f"a sequence of length {longest} exceeds max_traceback_length={max_traceback_length}; "
                "raise max_traceback_length or use decode() for the scores only"
            )
        inputs = self._prepare(hidden_states, lengths)
        path = semi_crf_streaming_viterbi(
            inputs.cum_scores,
            inputs.transition,
            inputs.duration_bias,
            lengths,
            self.max_duration,
            use_triton,
            self.num_warps,
            proj_start=inputs.proj_start,
            proj_end=inputs.proj_end,
            validate=self.validate,
        )
        return _to_viterbi_result(path, inputs.cum_scores.dtype)

    def parameter_penalty(self, p: float = 2.0, *, over: str = "scores") -> torch.Tensor:
        """Lp penalty for regularisation: ``||transition||_p^p + ||duration_bias||_p^p``.

        Args:
            p: the exponent, a finite number > 0.
            over: what is penalised.

                * ``"scores"`` (default): the scores the model uses, ``sum |transition|^p`` over
                  the allowed transitions (``(C, C)`` or ``(K, C, C)``; masked or
                  ``<= NEG_INF / 2`` entries left out) plus ``sum |duration_bias|^p`` over the
                  finite, allowed entries of the ``(K, C)`` duration scores (gradients reach the
                  duration distribution's parameters through them).
                * ``"parameters"``: ``sum |theta|^p`` over the raw learnable parameters: the
                  allowed transitions, the duration distribution's trainable parameters (its
                  rates, not the scores they give) and the boundary parameters
                  (``proj_start_layer`` / ``proj_end_layer`` weights, ``pi_start``, ``pi_end``).

                Neither includes the emission projection (regularise it with the encoder).

        Returns:
            Scalar tensor (differentiable).

        Raises:
            ValueError: ``p`` not a finite number > 0, or ``over`` not one of the two names.
        """
        if not (
            isinstance(p, (int, float)) and not isinstance(p, bool) and p > 0 and math.isfinite(p)
        ):
            raise ValueError(f"p must be a finite number > 0, got {p!r}")
        if over not in ("scores", "parameters"):
            raise ValueError(f"over must be 'scores' or 'parameters', got {over!r}")
        if over == "scores":
            total = _allowed(self.transition).abs().pow(p).sum()
            return total + _allowed(self.duration_bias).abs().pow(p).sum()
        trans = self.transition_raw
        if self.transition_mask is not None:
            trans = trans[self.transition_mask.expand_as(trans)]
        total = trans.abs().pow(p).sum()
        params = [q for q in self.duration_dist.parameters() if q.requires_grad]
        for layer in (self.proj_start_layer, self.proj_end_layer):
            if layer is not None:
                params.append(layer.weight)
        for q in (self.pi_start, self.pi_end):
            if q is not None:
                params.append(q)
        for q in params:
            total = total + q.abs().pow(p).sum()
        return total


def _allowed(scores: torch.Tensor) -> torch.Tensor:
    """The entries of ``scores`` that allow something: finite and above ``NEG_INF / 2``."""
    return scores[torch.isfinite(scores) & (scores > NEG_INF / 2)]


def _to_viterbi_result(path: object, dtype: torch.dtype) -> ViterbiResult:
    """Build ``Segment`` lists from a kernels ``ViterbiPath`` with a single device-to-host copy."""
    scores = path.scores.to(dtype)
    B, N = path.starts.shape
    # Integer fields are exact in float64 (|value| < 2**53), so one packed copy carries all.
    packed = torch.cat(
        [
            torch.stack(
                [
                    path.starts.double(),
                    path.durations.double(),
                    path.labels.double(),
                    path.segment_scores.double(),
                ],
                dim=2,
            ).reshape(B, 4 * N),
            path.num_segments.double()[:, None],
        ],
        dim=1,
    ).cpu()
    rows = packed.tolist()
    segments: list[list[Segment]] = []
    for row in rows:
        n = int(row[-1])
        segs = []
        for i in range(n):
            s, d, c, sc = row[4 * i : 4 * i + 4]
            segs.append(Segment(int(s), int(s) + int(d) - 1, int(c), float(sc)))
        segments.append(segs)
    return ViterbiResult(scores=scores, segments=segments)
