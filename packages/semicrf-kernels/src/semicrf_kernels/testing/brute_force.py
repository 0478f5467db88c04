"""Exhaustive enumeration of every segmentation: the ground truth for tests at tiny sizes.

Every layer of flash-semicrf checks its fast paths against this module. It scores each labelled
segmentation of each sequence one by one in float64 Python arithmetic, exactly as
``docs/conventions.md`` section 1 defines the model, and derives every quantity (log partition,
Viterbi, marginals, entropy) from the list of scores. The cost is exponential in the length:
keep ``L <= 8`` and ``C <= 5``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import torch

from ..constants import NEG_INF

__all__ = [
    "BruteForceResult",
    "brute_force_streaming",
    "enumerate_segmentations",
    "score_segmentation",
]

#: Relative tolerance under which two segmentation scores count as tied for Viterbi. Scores of
#: tied paths are summed in different orders, so exact float equality would make the tie-break
#: depend on rounding.
VITERBI_TIE_RTOL: float = 1e-9


class BruteForceResult(NamedTuple):
    """Every quantity of the streaming model, by enumeration (all float64, on the CPU).

    Attributes:
        log_partition: ``(batch,)`` log-sum-exp of all allowed segmentation scores; ``-inf`` when
            a sequence has no allowed segmentation.
        viterbi_score: ``(batch,)`` best segmentation score; ``-inf`` when none is allowed.
        viterbi_segments: per sequence, the best segmentation as ``(start, end_inclusive, label)``
            tuples in order; ties go to the smaller last label, then the smaller last duration,
            then the smaller previous label, and so on backwards (the dynamic program's
            tie-break); empty when no segmentation is allowed.
        position_marginals: ``(batch, T, C)`` probability that position ``t`` has label ``c``;
            0 at padding.
        boundary_marginals: ``(batch, T)`` probability that a segment starts at ``t``; 0 at
            padding.
        entropy: ``(batch,)`` Shannon entropy (nats) of the segmentation distribution; 0 when no
            segmentation is allowed.
    """

    log_partition: torch.Tensor
    viterbi_score: torch.Tensor
    viterbi_segments: list[list[tuple[int, int, int]]]
    position_marginals: torch.Tensor
    boundary_marginals: torch.Tensor
    entropy: torch.Tensor


def enumerate_segmentations(L: int, K: int) -> Iterator[list[tuple[int, int]]]:
    """Yield every way to tile ``[0, L)`` with segments of duration ``1..K``.

    Args:
        L: sequence length (``>= 0``; ``L = 0`` yields one empty segmentation).
        K: longest allowed segment (``>= 1``).

    Yields:
        Lists of ``(start, duration)`` in increasing start order.
    """
    if L < 0:
        raise ValueError(f"L: expected a length >= 0, got {L}")
    if K < 1:
        raise ValueError(f"K: expected a maximum duration >= 1, got {K}")

    def tile(pos: int) -> Iterator[list[tuple[int, int]]]:
        if pos == L:
            yield []
            return
        for d in range(1, min(K, L - pos) + 1):
            for rest in tile(pos + d):
                yield [(pos, d), *rest]

    yield from tile(0)


def _allowed(value: float) -> float:
    # The convention: anything at or below NEG_INF / 2 forbids the choice exactly.
    return -math.inf if value <= NEG_INF / 2 else value


def _logsumexp(values: list[float]) -> float:
    top = max(values, default=-math.inf)
    if top == -math.inf:
        return -math.inf
    return top + math.log(sum(math.exp(v - top) for v in values))


class _Sequence:
    """One sequence's parameters as float64 Python lists (fast scalar access)."""

    def __init__(
        self,
        cum_b: torch.Tensor,
        transition: torch.Tensor,
        duration_bias: torch.Tensor,
        proj_start_b: torch.Tensor | None,
        proj_end_b: torch.Tensor | None,
    ) -> None:
        self.cum = cum_b.detach().double().cpu().tolist()
        self.C = len(self.cum[0])
        trans = transition.detach().double().cpu()
        self.per_duration = trans.dim() == 3
        mats = trans if self.per_duration else trans[None]
        self.trans = [[[_allowed(v) for v in row] for row in mat] for mat in mats.tolist()]
        self.bias = [
            [_allowed(v) for v in row] for row in duration_bias.detach().double().cpu().tolist()
        ]
        self.K = len(self.bias)
        # start[k][c]: the virtual start label summed out of transition matrix k.
        self.start = [
            [_logsumexp([mat[cp][c] for cp in range(self.C)]) for c in range(self.C)]
            for mat in self.trans
        ]
        self.proj_start = None if proj_start_b is None else proj_start_b.detach().double().tolist()
        self.proj_end = None if proj_end_b is None else proj_end_b.detach().double().tolist()

    def _matrix(self, d: int) -> int:
        return d - 1 if self.per_duration else 0

    def segment(self, s: int, d: int, c: int) -> float:
        """Score of a segment at ``[s, s + d)`` with label ``c``, without any transition."""
        value = self.cum[s + d][c] - self.cum[s][c] + self.bias[d - 1][c]
        if self.proj_start is not None:
            value += self.proj_start[s][c]
        if self.proj_end is not None:
            value += self.proj_end[s + d - 1][c]
        return value

    def transition(self, d: int, c_prev: int, c: int) -> float:
        return self.trans[self._matrix(d)][c_prev][c]

    def start_score(self, d: int, c: int) -> float:
        return self.start[self._matrix(d)][c]


def _check_segments(segments: list[tuple[int, int, int]], K: int, C: int) -> None:
    if not segments:
        raise ValueError("segments: expected at least one (start, end, label) segment, got []")
    expected_start = 0
    for i, (s, e, c) in enumerate(segments):
        if s != expected_start:
            raise ValueError(
                f"segments[{i}]: expected start {expected_start} (segments must tile [0, L)), got {s}"
            )
        if not 1 <= e - s + 1 <= K:
            raise ValueError(f"segments[{i}]: expected duration in [1, {K}], got {e - s + 1}")
        if not 0 <= c < C:
            raise ValueError(f"segments[{i}]: expected label in [0, {C}), got {c}")
        expected_start = e + 1


def score_segmentation(
    cum_scores_b: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    segments: list[tuple[int, int, int]],
    proj_start_b: torch.Tensor | None = None,
    proj_end_b: torch.Tensor | None = None,
) -> float:
    """Total score of one labelled segmentation of one sequence, in float64.

    Args:
        cum_scores_b: ``(T+1, C)`` cumulative scores of the sequence.
        transition: ``(C, C)`` or ``(K, C, C)``, ``transition[c_prev, c]``.
        duration_bias: ``(K, C)``; row ``d - 1`` scores duration ``d``.
        segments: ``(start, end_inclusive, label)`` tuples tiling ``[0, L)`` in order.
        proj_start_b: optional ``(T, C)`` score read at each segment's first position.
        proj_end_b: optional ``(T, C)`` score read at each segment's last position.

    Returns:
        The segment scores plus the transitions between consecutive segments plus the start
        score ``logsumexp_{c'} transition[c', c]`` of the first segment; ``-inf`` if a forbidden
        transition or duration is used.
    """
    seq = _Sequence(cum_scores_b, transition, duration_bias, proj_start_b, proj_end_b)
    _check_segments(segments, seq.K, seq.C)
    total = 0.0
    prev = -1
    for s, e, c in segments:
        d = e - s + 1
        link = seq.start_score(d, c) if prev < 0 else seq.transition(d, prev, c)
        total += link + seq.segment(s, d, c)
        prev = c
    return total


def _enumerate_paths(
    seq: _Sequence, L: int, K: int
) -> list[tuple[float, list[tuple[int, int, int]]]]:
    """All allowed labelled segmentations of ``[0, L)`` with their scores (depth-first)."""
    paths: list[tuple[float, list[tuple[int, int, int]]]] = []

    def extend(pos: int, prev: int, score: float, path: list[tuple[int, int, int]]) -> None:
        if pos == L:
            paths.append((score, list(path)))
            return
        for d in range(1, min(K, L - pos) + 1):
            for c in range(seq.C):
                link = seq.start_score(d, c) if prev < 0 else seq.transition(d, prev, c)
                value = score + link + seq.segment(pos, d, c)
                if value == -math.inf:
                    continue  # a forbidden choice drops every segmentation through it
                path.append((pos, pos + d - 1, c))
                extend(pos + d, c, value, path)
                path.pop()

    extend(0, -1, 0.0, [])
    return paths


def _tie_key(path: list[tuple[int, int, int]]) -> tuple[int, ...]:
    # The traceback picks, from the end, the smaller label, then the smaller duration.
    return tuple(x for s, e, c in reversed(path) for x in (c, e - s + 1))


def brute_force_streaming(
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    lengths: torch.Tensor,
    K: int,
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
) -> BruteForceResult:
    """Every quantity of the streaming semi-CRF by enumerating all segmentations.

    Args:
        cum_scores: ``(batch, T+1, C)`` cumulative scores.
        transition: ``(C, C)`` or ``(K, C, C)``, ``transition[c_prev, c]``.
        duration_bias: ``(K, C)``; row ``d - 1`` scores duration ``d``.
        lengths: ``(batch,)`` integer lengths in ``[1, T]``.
        K: longest segment duration.
        proj_start: optional ``(batch, T, C)`` score at each segment's first position.
        proj_end: optional ``(batch, T, C)`` score at each segment's last position.

    Returns:
        A :class:`BruteForceResult` (float64 CPU tensors).
    """
    B, T1, C = cum_scores.shape
    T = T1 - 1
    if duration_bias.shape[0] != K:
        raise ValueError(
            f"duration_bias: expected {K} rows (K), got shape {tuple(duration_bias.shape)}"
        )
    log_partition = torch.full((B,), -math.inf, dtype=torch.float64)
    viterbi_score = torch.full((B,), -math.inf, dtype=torch.float64)
    position = torch.zeros(B, T, C, dtype=torch.float64)
    boundary = torch.zeros(B, T, dtype=torch.float64)
    entropy = torch.zeros(B, dtype=torch.float64)
    viterbi_segments: list[list[tuple[int, int, int]]] = []
    for b in range(B):
        L = int(lengths[b])
        seq = _Sequence(
            cum_scores[b],
            transition,
            duration_bias,
            None if proj_start is None else proj_start[b],
            None if proj_end is None else proj_end[b],
        )
        paths = _enumerate_paths(seq, L, K)
        if not paths:
            viterbi_segments.append([])
            continue
        log_z = _logsumexp([score for score, _ in paths])
        best = max(score for score, _ in paths)
        tol = VITERBI_TIE_RTOL * max(1.0, abs(best))
        tied = [path for score, path in paths if score >= best - tol]
        viterbi_segments.append(min(tied, key=_tie_key))
        log_partition[b] = log_z
        viterbi_score[b] = best
        h = 0.0
        for score, path in paths:
            p = math.exp(score - log_z)
            if p > 0.0:
                h -= p * (score - log_z)
            for s, e, c in path:
                boundary[b, s] += p
                position[b, s : e + 1, c] += p
        entropy[b] = h
    return BruteForceResult(
        log_partition, viterbi_score, viterbi_segments, position, boundary, entropy
    )
