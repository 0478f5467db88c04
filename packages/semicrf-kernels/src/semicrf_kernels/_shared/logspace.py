"""Log-space reductions that stay free of NaN when every entry is ``-inf``.

``torch.logsumexp`` returns ``-inf`` for an all ``-inf`` reduction but its gradient there is NaN,
and ``x - max`` is NaN when the max is ``-inf``. Forbidden choices make such reductions routine
(a label no transition may enter), so every path uses these instead.
"""

from __future__ import annotations

import torch

__all__ = ["safe_logsumexp", "safe_max_shift"]


def safe_max_shift(
    x: torch.Tensor, dim: int | tuple[int, ...], keepdim: bool = False
) -> torch.Tensor:
    """Max of ``x`` over ``dim`` (detached), with non-finite maxima replaced by 0.

    Subtracting it never produces NaN: an all ``-inf`` slice stays ``-inf``.
    """
    m = x.detach().amax(dim=dim, keepdim=keepdim)
    return torch.where(torch.isfinite(m), m, torch.zeros((), dtype=m.dtype, device=m.device))


def safe_logsumexp(
    x: torch.Tensor, dim: int | tuple[int, ...], keepdim: bool = False
) -> torch.Tensor:
    """``log(sum(exp(x)))`` over ``dim``: ``-inf`` (with zero gradient) for an all ``-inf`` slice."""
    m = safe_max_shift(x, dim, keepdim=True)
    total = torch.exp(x - m).sum(dim=dim, keepdim=True)
    alive = total > 0
    # log of a placeholder 1 where the slice is empty keeps the backward free of 0 * inf.
    out = torch.where(
        alive, m + torch.log(torch.where(alive, total, torch.ones_like(total))), -torch.inf
    )
    if not keepdim:
        out = out.squeeze(dim) if isinstance(dim, int) else out.squeeze(tuple(dim))
    return out
