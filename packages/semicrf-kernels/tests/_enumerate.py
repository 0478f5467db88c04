"""Test helper: every allowed segmentation of a tiny sequence with its probability.

Built from the enumerator and scorer of :mod:`semicrf_kernels.testing.brute_force`, so sampling,
top-k and divergence tests compare against exactly the model the brute force defines.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from typing import NamedTuple

import torch

from semicrf_kernels.testing.brute_force import enumerate_segmentations, score_segmentation


class Scored(NamedTuple):
    score: float
    segments: tuple[tuple[int, int, int], ...]  # (start, end_inclusive, label)

    def key(self, T: int) -> tuple[tuple[int, ...], tuple[bool, ...]]:
        """(labels, starts) per position, padded to ``T`` as a Segmentation stores them."""
        labels = [-1] * T
        starts = [False] * T
        for s, e, c in self.segments:
            starts[s] = True
            labels[s : e + 1] = [c] * (e - s + 1)
        return tuple(labels), tuple(starts)


def scored_segmentations(inp, b: int) -> list[Scored]:
    """All allowed segmentations of sequence ``b`` of ``inp`` (a ``StreamingInputs``)."""
    L = int(inp.lengths[b])
    C = inp.cum_scores.shape[-1]
    ps = None if inp.proj_start is None else inp.proj_start[b]
    pe = None if inp.proj_end is None else inp.proj_end[b]
    out = []
    for tiling in enumerate_segmentations(L, inp.K):
        for labels in itertools.product(range(C), repeat=len(tiling)):
            segs = tuple((s, s + d - 1, c) for (s, d), c in zip(tiling, labels))
            score = score_segmentation(
                inp.cum_scores[b], inp.transition, inp.duration_bias, list(segs), ps, pe
            )
            if score > -math.inf:
                out.append(Scored(score, segs))
    return out


def log_partition(paths: list[Scored]) -> float:
    top = max(p.score for p in paths)
    return top + math.log(sum(math.exp(p.score - top) for p in paths))


def tie_key(path: Scored) -> tuple[int, ...]:
    """The documented order among equal scores: from the last segment backwards, its label,
    then its duration, then the previous label, ..., smaller first."""
    return tuple(x for s, e, c in reversed(path.segments) for x in (c, e - s + 1))


#: Significance of the chi-square test; the seed is fixed, so the outcome is too.
ALPHA = 1e-3


def chi_square_pvalue(counts: Counter, probs: dict, n: int) -> float:
    """p-value of observed ``counts`` against ``probs``; bins expecting < 5 are pooled."""
    observed, expected = [], []
    pooled_o = pooled_e = 0.0
    for key, p in probs.items():
        if p * n >= 5:
            observed.append(counts.get(key, 0))
            expected.append(p * n)
        else:
            pooled_o += counts.get(key, 0)
            pooled_e += p * n
    if pooled_e > 0:
        observed.append(pooled_o)
        expected.append(pooled_e)
    if len(observed) < 2:
        return 1.0
    scale = sum(observed) / sum(expected)  # removes float rounding of sum(p) = 1
    stat = sum((o - e * scale) ** 2 / (e * scale) for o, e in zip(observed, expected))
    # Survival function of chi-square with len - 1 degrees of freedom: Q((len - 1) / 2, stat / 2).
    df = torch.tensor((len(observed) - 1) / 2, dtype=torch.float64)
    return float(torch.special.gammaincc(df, torch.tensor(stat / 2, dtype=torch.float64)))
