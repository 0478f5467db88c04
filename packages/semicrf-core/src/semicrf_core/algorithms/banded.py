"""The banded prototype: the binary tree with step matrices stored as `BandedMatrix`.

The states are reordered (identity, snake or reverse Cuthill-McKee, whichever gives the step
matrices the narrowest band) and each product is computed on the band only. The bands are the
exact structural bands of the step matrices and grow by addition under products, so the result
is exact; it saves work only while the bands stay narrower than the matrices.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from semicrf_semirings import LogSemiring, MaxSemiring, Semiring

from ..banded_matrix import BandedMatrix
from ..orderings import apply_permutation, rcm_ordering_from_adjacency, snake_ordering
from .binary_tree import read_out, step_matrices

#: The log-space zero written off the band (the semiring zero of log and max): a true -inf, so
#: that it stays absorbing whatever the magnitude of the potentials (docs/conventions.md sec. 3).
_FILL = -math.inf


def step_pattern(K: int, C: int) -> Tensor:
    """Where a step matrix of `step_matrices` can be nonzero (including the identity used past
    a sequence's end).

    Returns:
        bool `((K-1)*C, (K-1)*C)`, state index `r * C + c`.
    """
    D = K - 1
    r = torch.arange(D)
    new_segment = (r.view(1, 1, D, 1) == 0).expand(D, C, D, C)  # from (0, c') to any (d-1, c)
    same_label = torch.eye(C, dtype=torch.bool).view(1, C, 1, C)
    countdown = (r.view(D, 1, 1, 1) == r.view(1, 1, D, 1) - 1) & same_label
    diagonal = (r.view(D, 1, 1, 1) == r.view(1, 1, D, 1)) & same_label
    return (new_segment | countdown | diagonal).reshape(D * C, D * C)


def _bands(pattern: Tensor) -> tuple[int, int]:
    i, j = pattern.nonzero(as_tuple=True)
    return int((j - i).clamp(min=0).max()), int((i - j).clamp(min=0).max())


def choose_ordering(K: int, C: int) -> tuple[Tensor, int, int]:
    """The state order giving the step matrices the narrowest band (`lu + ld`).

    Candidates: the natural order, `snake_ordering(K-1, C)` and reverse Cuthill-McKee of
    `step_pattern` (when SciPy can order it); ties keep the earlier candidate.

    Returns:
        `(perm ((K-1)*C,) int64, lu, ld)`: position `i` holds state `perm[i]`; the band of the
        permuted pattern.
    """
    pattern = step_pattern(K, C)
    n = pattern.shape[0]
    candidates = [torch.arange(n), snake_ordering(K - 1, C)]
    rcm, ok = rcm_ordering_from_adjacency(pattern)
    if ok:
        candidates.append(rcm)
    best = (candidates[0], *_bands(pattern))
    for perm in candidates[1:]:
        lu, ld = _bands(apply_permutation(pattern, perm))
        if lu + ld < best[1] + best[2]:
            best = (perm, lu, ld)
    return best


def banded_tree(semiring: type[Semiring], edge: Tensor, lengths: Tensor) -> Tensor:
    """`binary_tree` with banded storage and banded (log, +) or (max, +) products.

    Args:
        semiring: `LogSemiring` or `MaxSemiring` (or a subclass such as a checkpoint wrapper).
        edge: converted `(1, batch, N-1, K, C, C)`, index `d` = duration (0 unused).
        lengths: `(batch,)` int64 fences in `[2, N]`.

    Returns:
        Converted `(1, batch)`.

    Raises:
        ValueError: for any other semiring (`BandedMatrix` offers only these two products).

    Cost: a product of bands `w1`, `w2` costs `O(n w1 (w1 + w2))` per matrix instead of `O(n^3)`;
    bands add up level by level, so after a few levels the products are as dense as the tree's.
    """
    if issubclass(semiring, LogSemiring):
        reduce = "log"
    elif issubclass(semiring, MaxSemiring):
        reduce = "max"
    else:
        raise ValueError(
            f"use_banded=True supports LogSemiring and MaxSemiring only, got {semiring.__name__}"
        )
    S, B, T, K, C, _ = edge.shape
    n = (K - 1) * C
    perm, lu, ld = choose_ordering(K, C)
    perm = perm.to(edge.device)
    mats = apply_permutation(step_matrices(semiring, edge, lengths), perm)  # (S, B, T, n, n)
    cur = BandedMatrix.from_dense(mats.reshape(-1, n, n), lu, ld, _FILL)
    eye = torch.full((n, n), _FILL, dtype=edge.dtype, device=edge.device)
    eye.fill_diagonal_(0.0)
    steps = T
    while steps > 1:
        data = cur.data.view(S * B, steps, n, cur.width)
        if steps % 2:
            pad = BandedMatrix.from_dense(eye, cur.lu, cur.ld, _FILL).data
            data = torch.cat([data, pad.view(1, 1, n, -1).expand(S * B, 1, n, -1)], dim=1)
            steps += 1
        later = BandedMatrix(data[:, 1::2].reshape(-1, n, cur.width), cur.lu, cur.ld, _FILL)
        earlier = BandedMatrix(data[:, 0::2].reshape(-1, n, cur.width), cur.lu, cur.ld, _FILL)
        cur = later.multiply_log(earlier) if reduce == "log" else later.multiply_max(earlier)
        steps //= 2
    product = cur.to_dense().view(S, B, n, n)
    inverse = torch.argsort(perm)
    return read_out(semiring, apply_permutation(product, inverse), C)
