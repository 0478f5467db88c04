"""Plain float64 loops computing the streaming semi-CRF recurrence, written for clarity.

This is the executable form of ``docs/conventions.md`` section 1, used to test the vectorised
PyTorch path and the Triton kernels at sizes enumeration cannot reach (``T`` up to a few
hundred). Nothing here is vectorised: every sequence, position, duration and label is a
Python loop over float64 scalars, and the recurrence is the unfactorised one, literally::

    alpha[0, :] = 0
    alpha[t, c] = (+)_{d = 1..min(K, t)} link(t - d, d, c) + seg(t - d, d, c)
    link(0, d, c) = logsumexp_{c'} transition_d[c', c]          (in every semiring)
    link(s, d, c) = (+)_{c'} alpha[s, c'] + transition_d[c', c]  (s > 0)
    result = (+)_c alpha[L, c]

with ``(+)`` the log-sum-exp (``semiring="log"``) or the max (``semiring="max"``).
"""

from __future__ import annotations

import math

import torch

from ..constants import NEG_INF
from ..viterbi.path import ViterbiPath

__all__ = ["reference_forward", "reference_viterbi"]


def _allowed(value: float) -> float:
    return -math.inf if value <= NEG_INF / 2 else value


def _lse(values: list[float]) -> float:
    top = max(values, default=-math.inf)
    if top == -math.inf:
        return -math.inf
    return top + math.log(sum(math.exp(v - top) for v in values))


def _plus(semiring: str, values: list[float]) -> float:
    if semiring == "log":
        return _lse(values)
    return max(values, default=-math.inf)


class _Model:
    """The parameters of one sequence as float64 Python lists."""

    def __init__(
        self,
        cum_scores: torch.Tensor,
        transition: torch.Tensor,
        duration_bias: torch.Tensor,
        proj_start: torch.Tensor | None,
        proj_end: torch.Tensor | None,
        b: int,
    ) -> None:
        self.cum = cum_scores[b].detach().double().cpu().tolist()
        self.C = len(self.cum[0])
        trans = transition.detach().double().cpu()
        self.per_duration = trans.dim() == 3
        mats = trans.tolist() if self.per_duration else [trans.tolist()]
        self.trans = [[[_allowed(v) for v in row] for row in mat] for mat in mats]
        self.bias = [
            [_allowed(v) for v in row] for row in duration_bias.detach().double().cpu().tolist()
        ]
        self.ps = None if proj_start is None else proj_start[b].detach().double().cpu().tolist()
        self.pe = None if proj_end is None else proj_end[b].detach().double().cpu().tolist()

    def trans_d(self, d: int) -> list[list[float]]:
        return self.trans[d - 1] if self.per_duration else self.trans[0]

    def seg(self, s: int, d: int, c: int) -> float:
        value = self.cum[s + d][c] - self.cum[s][c] + self.bias[d - 1][c]
        if self.ps is not None:
            value += self.ps[s][c]
        if self.pe is not None:
            value += self.pe[s + d - 1][c]
        return value

    def link(self, semiring: str, alpha: list[list[float]], s: int, d: int, c: int) -> float:
        trans = self.trans_d(d)
        if s == 0:
            # The virtual start label is summed out in every semiring.
            return _lse([trans[cp][c] for cp in range(self.C)])
        return _plus(semiring, [alpha[s][cp] + trans[cp][c] for cp in range(self.C)])


#: Values within this relative distance count as tied in :func:`reference_viterbi`, so that the
#: tie-break of the convention does not depend on the rounding of differently ordered sums.
TIE_RTOL: float = 1e-9


def _better(value: float, current: float) -> bool:
    """``value`` beats ``current`` by more than the tie tolerance."""
    if current == -math.inf:
        return value > current
    return value > current + TIE_RTOL * max(1.0, abs(current))


def _check_semiring(semiring: str) -> None:
    if semiring not in ("log", "max"):
        raise ValueError(f"semiring: expected 'log' or 'max', got {semiring!r}")


def reference_forward(
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    lengths: torch.Tensor,
    K: int,
    semiring: str = "log",
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
) -> torch.Tensor:
    """Log partition (``"log"``) or Viterbi score (``"max"``) by the literal recurrence.

    Args:
        cum_scores: ``(batch, T+1, C)`` cumulative scores.
        transition: ``(C, C)`` or ``(K, C, C)``, ``transition[c_prev, c]``.
        duration_bias: ``(K, C)``; row ``d - 1`` scores duration ``d``.
        lengths: ``(batch,)`` integer lengths in ``[1, T]``.
        K: longest segment duration.
        semiring: ``"log"`` or ``"max"``.
        proj_start: optional ``(batch, T, C)`` score at each segment's first position.
        proj_end: optional ``(batch, T, C)`` score at each segment's last position.

    Returns:
        ``(batch,)`` float64 CPU tensor; ``-inf`` for a sequence with no allowed segmentation.
    """
    _check_semiring(semiring)
    B = cum_scores.shape[0]
    out = torch.empty(B, dtype=torch.float64)
    for b in range(B):
        model = _Model(cum_scores, transition, duration_bias, proj_start, proj_end, b)
        L = int(lengths[b])
        alpha = [[0.0] * model.C]
        for t in range(1, L + 1):
            row = []
            for c in range(model.C):
                terms = [
                    model.link(semiring, alpha, t - d, d, c) + model.seg(t - d, d, c)
                    for d in range(1, min(K, t) + 1)
                ]
                row.append(_plus(semiring, terms))
            alpha.append(row)
        out[b] = _plus(semiring, alpha[L])
    return out


def reference_viterbi(
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    lengths: torch.Tensor,
    K: int,
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
) -> ViterbiPath:
    """Best segmentation by the max recurrence with scalar backpointers.

    Ties go to the smaller duration, then the smaller previous label (and the smaller final
    label); values within a relative ``TIE_RTOL`` count as tied. Arguments are those of
    :func:`reference_forward`.

    Returns:
        A :class:`ViterbiPath` of float64 / int64 CPU tensors with ``N = T`` segment slots.
    """
    B, T1, _ = cum_scores.shape
    T = T1 - 1
    scores = torch.full((B,), -math.inf, dtype=torch.float64)
    starts = torch.full((B, T), -1, dtype=torch.int64)
    durations = torch.full((B, T), -1, dtype=torch.int64)
    labels = torch.full((B, T), -1, dtype=torch.int64)
    seg_scores = torch.zeros(B, T, dtype=torch.float64)
    num = torch.zeros(B, dtype=torch.int64)
    for b in range(B):
        model = _Model(cum_scores, transition, duration_bias, proj_start, proj_end, b)
        L = int(lengths[b])
        alpha = [[0.0] * model.C]
        # back[t][c] = (duration, previous label or -1 at the start, link + segment score)
        back: list[list[tuple[int, int, float]]] = [[]]
        for t in range(1, L + 1):
            row, back_row = [], []
            for c in range(model.C):
                best, choice = -math.inf, (1, -1, -math.inf)
                for d in range(1, min(K, t) + 1):
                    s = t - d
                    seg = model.seg(s, d, c)
                    if s == 0:
                        link, prev = model.link("max", alpha, 0, d, c), -1
                    else:
                        trans = model.trans_d(d)
                        link, prev = -math.inf, -1
                        for cp in range(model.C):
                            value = alpha[s][cp] + trans[cp][c]
                            if _better(value, link):  # ties keep the smaller label
                                link, prev = value, cp
                    if _better(link + seg, best):  # ties keep the smaller duration
                        best = link + seg
                        # The segment's own share: its link from the previous segment + itself.
                        own = (link if s == 0 else model.trans_d(d)[prev][c]) + seg
                        choice = (d, prev, own)
                row.append(best)
                back_row.append(choice)
            alpha.append(row)
            back.append(back_row)
        final = 0
        for c in range(1, model.C):
            if _better(alpha[L][c], alpha[L][final]):
                final = c
        if alpha[L][final] == -math.inf:
            continue
        scores[b] = alpha[L][final]
        path = []
        t, c = L, final
        while t > 0:
            d, prev, own = back[t][c]
            path.append((t - d, d, c, own))
            t, c = t - d, prev
        for i, (s, d, c, own) in enumerate(reversed(path)):
            starts[b, i], durations[b, i], labels[b, i], seg_scores[b, i] = s, d, c, own
        num[b] = len(path)
    return ViterbiPath(scores, starts, durations, labels, seg_scores, num)
