"""Brute-force enumeration of every (start label, segmentation): the reference for tiny sizes."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch import Tensor

from semicrf_semirings import Semiring

__all__ = ["Structure", "brute_force_logpartition", "enumerate_structures", "segmentations"]

#: Refuse enumerations larger than this many structures per sequence.
MAX_STRUCTURES = 200_000


class Structure(NamedTuple):
    """One structure of the edge model: a start label and the segments that tile the sequence.

    Attributes:
        start_label: the label `c_src` of the first segment.
        segments: `(start, duration, label)` per segment, in order; `start` is a fence,
            `duration` the edge index `d`.
    """

    start_label: int
    segments: tuple[tuple[int, int, int], ...]


def segmentations(positions: int, max_duration: int) -> Iterator[tuple[int, ...]]:
    """Every tuple of durations in `[1, max_duration]` summing to `positions` (in lexicographic
    order)."""
    if positions == 0:
        yield ()
        return
    for d in range(1, min(max_duration, positions) + 1):
        for rest in segmentations(positions - d, max_duration):
            yield (d, *rest)


def enumerate_structures(positions: int, K: int, C: int) -> Iterator[Structure]:
    """Every (start label, segmentation, labels) of `positions` positions with durations
    `1..K-1` and `C` labels."""
    for durs in segmentations(positions, K - 1):
        starts = list(itertools.accumulate((0, *durs[:-1])))
        for labels in itertools.product(range(C), repeat=len(durs) + 1):
            segs = tuple(zip(starts, durs, labels[1:]))
            yield Structure(labels[0], segs)


def brute_force_logpartition(
    semiring: type[Semiring],
    log_potentials: Tensor | list[Tensor],
    lengths: Tensor | None = None,
) -> tuple[Tensor, list[list[Structure]]]:
    """The semiring sum over every structure of the semiring product of its edges.

    Each structure `(c0, [(s_1, d_1, c_1), ...])` scores
    `edge[s_1, d_1, c_1, c0] (x) edge[s_2, d_2, c_2, c_1] (x) ...`; the value is the (+) of the
    scores of all structures of each sequence. Only for tiny sizes: the count grows like
    `C^(N) 2^(N)`.

    Args:
        semiring: the semiring class.
        log_potentials: `(batch, N-1, K, C, C)` (a list `[p, q]` for CrossEntropy/KL).
        lengths: optional `(batch,)` integer fences in `[2, N]`.

    Returns:
        `(v, structures)`: converted `v (ssize, batch)` (like `logpartition`), and per sequence
        the list of structures in the order scored.

    Raises:
        ValueError: if a sequence has more than `MAX_STRUCTURES` structures.
    """
    conv = semiring.convert(log_potentials)  # (S, B, N-1, K, C, C)
    S, B, T, K, C, _ = conv.shape
    lens = [T + 1] * B if lengths is None else [int(x) for x in lengths.tolist()]
    values, everything = [], []
    for b in range(B):
        structs = list(enumerate_structures(lens[b] - 1, K, C))
        if len(structs) > MAX_STRUCTURES:
            raise ValueError(
                f"sequence {b} has {len(structs)} structures, more than {MAX_STRUCTURES}"
            )
        width = max(len(st.segments) for st in structs)
        # Index (s, d, c, c') per segment; padding slots read a "one" appended at the end.
        flat = conv[:, b].reshape(S, -1)
        one = semiring.ones((1,), dtype=conv.dtype, device=conv.device)
        flat = torch.cat([flat, one], dim=1)
        pad = flat.shape[1] - 1
        idx = torch.full((len(structs), width), pad, dtype=torch.long)
        for i, st in enumerate(structs):
            prev = st.start_label
            for j, (s, d, c) in enumerate(st.segments):
                idx[i, j] = ((s * K + d) * C + c) * C + prev
                prev = c
        scores = semiring.prod(flat[:, idx.to(conv.device)], dim=-1)  # (S, structures)
        values.append(semiring.sum(scores, dim=-1))
        everything.append(structs)
    return torch.stack(values, dim=1), everything
