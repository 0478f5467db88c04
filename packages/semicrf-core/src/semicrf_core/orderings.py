"""State orderings that shrink a matrix's bandwidth, and the bandwidth measure itself."""

from __future__ import annotations

import torch
from torch import Tensor

from .banded_matrix import BandedMatrix

__all__ = [
    "apply_permutation",
    "measure_effective_bandwidth",
    "rcm_ordering_from_adjacency",
    "snake_ordering",
]

#: Log-space zero of semicrf-semirings (kept local: the value is part of the conventions).
_LOG_ZERO = -1e9


def _auto_fill(x: Tensor) -> float | bool:
    if x.dtype == torch.bool:
        return False
    if bool(torch.isneginf(x).any()):
        return float("-inf")
    if bool((x == _LOG_ZERO).any()):
        return _LOG_ZERO
    return 0.0


def measure_effective_bandwidth(adj: Tensor | BandedMatrix, fill_value: float | None = None) -> int:
    """The largest `|i - j|` over the entries of `adj` that are not `fill_value`.

    Args:
        adj: `(n, n)` or `(batch, n, n)` tensor (any dtype), or a `BandedMatrix` (measured on its
            `to_dense()`, so only the non-fill cells of its band count).
        fill_value: the value of "no entry". `None` picks one: `False` for bool tensors; else
            `-inf` if any entry is `-inf`, else the log zero `-1e9` if any entry equals it, else
            `0`. For a `BandedMatrix` `None` means its `fill`. NaN always counts as an entry.

    Returns:
        An int in `[0, n - 1]`; 0 when every off-diagonal entry is fill.

    Raises:
        TypeError: if `adj` is neither a tensor nor a `BandedMatrix`.
        ValueError: if a tensor is not square 2D or 3D.
    """
    if isinstance(adj, BandedMatrix):
        if fill_value is None:
            fill_value = adj.fill
        adj = adj.to_dense()
    if not isinstance(adj, Tensor):
        raise TypeError(f"adj must be a torch.Tensor or BandedMatrix, got {type(adj).__name__}")
    if adj.dim() not in (2, 3) or adj.shape[-1] != adj.shape[-2]:
        raise ValueError(f"adj must be (n, n) or (batch, n, n), got shape {tuple(adj.shape)}")
    if fill_value is None:
        fill_value = _auto_fill(adj)
    present = adj != fill_value  # NaN != anything, so NaN counts as present
    if adj.dim() == 3:
        present = present.any(0)
    if not bool(present.any()):
        return 0
    i, j = present.nonzero(as_tuple=True)
    return int((i - j).abs().max())


def snake_ordering(K: int, C: int) -> Tensor:
    """Snake order of the `(duration, label)` states, state index `k * C + c`.

    Durations are visited `0, K-1, 1, K-2, 2, ...` (alternately the lowest and highest not yet
    visited), labels ascending within each, so states that a count-down links (k and k-1) and the
    short and long durations that a new segment links both stay close.

    Args:
        K: number of duration states, `>= 1`.
        C: number of labels, `>= 1`.

    Returns:
        `(K*C,)` int64 permutation: position `i` of the new order holds state `perm[i]`.
        For example `snake_ordering(4, 2) = [0, 1, 6, 7, 2, 3, 4, 5]`.
    """
    for name, v in (("K", K), ("C", C)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"{name} must be an int >= 1, got {type(v).__name__} {v!r}")
        if v < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    lo, hi = 0, K - 1
    order = []
    while lo <= hi:
        order.append(lo)
        if hi != lo:
            order.append(hi)
        lo, hi = lo + 1, hi - 1
    return torch.tensor([k * C + c for k in order for c in range(C)], dtype=torch.long)


def rcm_ordering_from_adjacency(adj: Tensor) -> tuple[Tensor, bool]:
    """Reverse Cuthill-McKee ordering of the graph whose edges are the nonzero entries of `adj`.

    The pattern is symmetrised (`adj[i, j] != 0 or adj[j, i] != 0`) and ordered with
    `scipy.sparse.csgraph.reverse_cuthill_mckee`. For log-space matrices pass a bool mask of the
    present entries (a log-space 0 is a real entry).

    Args:
        adj: `(n, n)` or `(batch, n, n)` (the union of the batch's patterns), any dtype.

    Returns:
        `(perm, success)`: `perm (n,)` int64 permutation (position `i` holds node `perm[i]`);
        `success` is False, with the identity permutation, when SciPy is unavailable or fails.

    Raises:
        TypeError: if `adj` is not a tensor.
        ValueError: if `adj` is not square 2D or 3D.
    """
    if not isinstance(adj, Tensor):
        raise TypeError(f"adj must be a torch.Tensor, got {type(adj).__name__}")
    if adj.dim() not in (2, 3) or adj.shape[-1] != adj.shape[-2]:
        raise ValueError(f"adj must be (n, n) or (batch, n, n), got shape {tuple(adj.shape)}")
    n = adj.shape[-1]
    identity = torch.arange(n, dtype=torch.long)
    pattern = adj != 0
    if pattern.dim() == 3:
        pattern = pattern.any(0)
    pattern = (pattern | pattern.T).cpu().numpy()
    try:
        from scipy.sparse import csr_matrix
        from scipy.sparse.csgraph import reverse_cuthill_mckee

        perm = reverse_cuthill_mckee(csr_matrix(pattern), symmetric_mode=True)
    except Exception:  # SciPy missing or unable to order: fall back to the identity.
        return identity, False
    return torch.as_tensor(perm.copy(), dtype=torch.long), True


def apply_permutation(potentials: Tensor, perm: Tensor) -> Tensor:
    """Reorder the states of square matrices: `out[..., i, j] = potentials[..., perm[i], perm[j]]`.

    Args:
        potentials: `(..., n, n)`.
        perm: `(n,)` integer permutation of `0..n-1`.

    Returns:
        `(..., n, n)`, the same matrices with rows and columns permuted (a copy).

    Raises:
        TypeError: if an argument is not a tensor or `perm` is not integer.
        ValueError: if `potentials` is not square in its last two dims or `perm` is not a
            permutation of `0..n-1`.
    """
    if not isinstance(potentials, Tensor) or not isinstance(perm, Tensor):
        raise TypeError("potentials and perm must be torch.Tensors")
    if potentials.dim() < 2 or potentials.shape[-1] != potentials.shape[-2]:
        raise ValueError(f"potentials must be (..., n, n), got shape {tuple(potentials.shape)}")
    if perm.dtype.is_floating_point or perm.dtype == torch.bool or perm.is_complex():
        raise TypeError(f"perm must be an integer tensor, got dtype {perm.dtype}")
    n = potentials.shape[-1]
    if perm.shape != (n,) or not torch.equal(
        torch.sort(perm.cpu()).values, torch.arange(n, dtype=perm.dtype)
    ):
        raise ValueError(
            f"perm must be a permutation of 0..{n - 1} with shape ({n},), got shape "
            f"{tuple(perm.shape)}"
        )
    perm = perm.to(potentials.device)
    return potentials.index_select(-1, perm).index_select(-2, perm)
