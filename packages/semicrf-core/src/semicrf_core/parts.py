"""Conversions between label sequences, part indicators and edge potentials (pytorch-struct style)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["from_parts", "hsmm", "to_parts"]


def _check_pos_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= {low}, got {type(value).__name__} {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return value


def to_parts(sequence: Tensor, extra: tuple[int, int], lengths: Tensor | None = None) -> Tensor:
    """Encode marked fences as edge indicators.

    `sequence[b, 0]` is the start label. A label at fence `n > 0` closes the segment that began at
    the previous marked fence `last`: it sets `parts[b, last, n - last, sequence[b, n],
    sequence[b, last]] = 1` (index = duration). `-1` means "no segment boundary here".

    Args:
        sequence: `(batch, N)` integer, entries in `[-1, C)`, `sequence[:, 0] >= 0`.
        extra: `(C, K)`: number of labels and the edge tensor's duration size (durations
            `1..K-1`).
        lengths: optional `(batch,)` integer fences; fences `>= lengths[b]` are ignored.

    Returns:
        `(batch, N-1, K, C, C)` int64 indicators.

    Raises:
        TypeError: if `sequence` is not an integer tensor.
        ValueError: on bad shapes, labels outside `[-1, C)`, a missing start label or a segment
            longer than `K-1`.
    """
    if not isinstance(sequence, Tensor) or sequence.dtype.is_floating_point:
        raise TypeError("sequence must be an integer torch.Tensor (batch, N)")
    if sequence.dim() != 2 or sequence.shape[1] < 2:
        raise ValueError(f"sequence must be (batch, N) with N >= 2, got {tuple(sequence.shape)}")
    if not isinstance(extra, (tuple, list)) or len(extra) != 2:
        raise ValueError(f"extra must be (C, K), got {extra!r}")
    C = _check_pos_int("extra[0] (C)", extra[0], 1)
    K = _check_pos_int("extra[1] (K)", extra[1], 2)
    B, N = sequence.shape
    seq = sequence.detach().cpu().long()
    if lengths is None:
        lens = [N] * B
    else:
        if not isinstance(lengths, Tensor) or lengths.shape != (B,):
            raise ValueError(f"lengths must be a tensor of shape (batch,)=({B},)")
        lens = [int(x) for x in lengths.tolist()]
    if bool(((seq < -1) | (seq >= C)).any()):
        raise ValueError(
            f"sequence entries must be labels in [0, {C}) or -1, got range "
            f"[{int(seq.min())}, {int(seq.max())}]"
        )
    if bool((seq[:, 0] < 0).any()):
        raise ValueError("sequence[:, 0] must be the start label (>= 0), got -1")
    parts = torch.zeros((B, N - 1, K, C, C), dtype=torch.long)
    rows = seq.tolist()
    for b in range(B):
        last, prev = 0, rows[b][0]
        for n in range(1, min(lens[b], N)):
            lab = rows[b][n]
            if lab < 0:
                continue
            d = n - last
            if d > K - 1:
                raise ValueError(
                    f"sequence[{b}] has a segment of duration {d} (fences {last}..{n}), longer "
                    f"than K-1={K - 1}"
                )
            parts[b, last, d, lab, prev] = 1
            last, prev = n, lab
    return parts.to(sequence.device)


def from_parts(edge: Tensor) -> tuple[Tensor, tuple[int, int]]:
    """Decode edge indicators into marked fences (the inverse of `to_parts`).

    Args:
        edge: `(batch, N-1, K, C, C)`; nonzero entries are the chosen segments.

    Returns:
        `(sequence, (C, K))`: `sequence (batch, N)` int64, -1 where no segment ends, the start
        label at fence 0 (from the segment starting at 0) and each segment's label at its end
        fence.

    Raises:
        TypeError: if `edge` is not a tensor; ValueError: if it is not 5D.
    """
    if not isinstance(edge, Tensor):
        raise TypeError(f"edge must be a torch.Tensor, got {type(edge).__name__}")
    if edge.dim() != 5:
        raise ValueError(f"edge must be (batch, N-1, K, C, C), got shape {tuple(edge.shape)}")
    B, T, K, C, _ = edge.shape
    seq = torch.full((B, T + 1), -1, dtype=torch.long, device=edge.device)
    b, s, d, c_dst, c_src = (edge != 0).nonzero(as_tuple=True)
    first = s == 0
    seq[b[first], 0] = c_src[first]
    seq[b, s + d] = c_dst
    return seq, (C, K)


def hsmm(init: Tensor, trans_z: Tensor, trans_l: Tensor, emission: Tensor) -> Tensor:
    """Edge potentials of a hidden semi-Markov model (pytorch-struct semantics).

    `edges[b, n, k, c2, c1] = [n == 0] init[c1] + trans_z[c1, c2] + trans_l[c2, k]
    + emission[b, n, k, c2]`: a segment starting at position `n`, duration index `k`, label `c2`
    after label `c1`; `init` scores the start label.

    Args:
        init: `(C,)` or `(batch, C)` log scores of the start label.
        trans_z: `(C, C)` log transition scores, `trans_z[i, j]` from `i` to `j`.
        trans_l: `(C, K)` log duration scores, `trans_l[c, k]` for duration `k` (index 0 unused
            by `SemiMarkov`).
        emission: `(batch, N, K, C)` log emission scores of a segment `(n, k, c)`.

    Returns:
        `(batch, N, K, C, C)` in the promoted floating dtype. For `SemiMarkov` over `N`
        positions pass it whole with `lengths = N + 1`, or drop the last row for `N` fences.

    Raises:
        TypeError: if an argument is not a tensor; ValueError: on inconsistent shapes.
    """
    for name, t in (
        ("init", init),
        ("trans_z", trans_z),
        ("trans_l", trans_l),
        ("emission", emission),
    ):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if emission.dim() != 4:
        raise ValueError(f"emission must be (batch, N, K, C), got shape {tuple(emission.shape)}")
    B, _, K, C = emission.shape
    if tuple(trans_z.shape) != (C, C):
        raise ValueError(f"trans_z must be (C, C)=({C}, {C}), got {tuple(trans_z.shape)}")
    if tuple(trans_l.shape) != (C, K):
        raise ValueError(f"trans_l must be (C, K)=({C}, {K}), got {tuple(trans_l.shape)}")
    if tuple(init.shape) not in ((C,), (B, C)):
        raise ValueError(
            f"init must be (C,)=({C},) or (batch, C)=({B}, {C}), got {tuple(init.shape)}"
        )
    edges = (
        emission.unsqueeze(-1)  # (B, N, K, c2, 1)
        + trans_l.T.reshape(1, 1, K, C, 1)
        + trans_z.T.reshape(1, 1, 1, C, C)  # [c2, c1] = trans_z[c1, c2]
    )
    start = init.reshape(-1, 1, 1, 1, C)  # broadcast over batch (or per batch), k and c2
    first = edges[:, :1] + start
    return torch.cat([first, edges[:, 1:]], dim=1)
