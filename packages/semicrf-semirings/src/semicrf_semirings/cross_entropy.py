"""The cross-entropy semiring: H(P, Q) between two distributions over the same structures."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor

from .base import LogSpaceSemiring, log_softmax, logsumexp, normalize_dim

__all__ = ["CrossEntropySemiring"]


class _TwoDistributionSemiring(LogSpaceSemiring):
    """Shared body of the cross-entropy and KL semirings (channels P, Q, value).

    Subclasses define `_term(logp, logq)`, the per-structure quantity whose P-expectation is
    accumulated (`-log q` for the cross-entropy, `log p - log q` for KL).
    """

    zero: ClassVar[Tensor] = torch.tensor([-math.inf, -math.inf, 0.0])
    one: ClassVar[Tensor] = torch.tensor([0.0, 0.0, 0.0])

    @classmethod
    def size(cls) -> int:
        """3: (log-potential of P, log-potential of Q, value accumulator)."""
        return 3

    @classmethod
    def convert(cls, x: Sequence[Tensor]) -> Tensor:
        """`[p, q]` (two log-potential tensors of one shape) -> `(3, *p.shape)`: `[p, q, 0]`.

        Raises:
            ValueError: unless `x` is a list/tuple of exactly two tensors of equal shape.
            TypeError: if an element is not a tensor.
        """
        if isinstance(x, Tensor) or not isinstance(x, (list, tuple)) or len(x) != 2:
            got = (
                f"a tensor of shape {tuple(x.shape)}"
                if isinstance(x, Tensor)
                else f"{type(x).__name__} of length {len(x)}"
                if isinstance(x, (list, tuple))
                else type(x).__name__
            )
            raise ValueError(
                f"{cls.__name__}.convert expects a list [p_log_potentials, q_log_potentials] of "
                f"two tensors, got {got}"
            )
        p, q = x
        if not isinstance(p, Tensor) or not isinstance(q, Tensor):
            raise TypeError(
                f"{cls.__name__}.convert expects two tensors, got "
                f"{type(p).__name__} and {type(q).__name__}"
            )
        if p.shape != q.shape:
            raise ValueError(
                f"{cls.__name__}.convert: p and q must have the same shape, got "
                f"{tuple(p.shape)} and {tuple(q.shape)}"
            )
        return torch.stack([p, q, torch.zeros_like(p)], dim=0)

    @classmethod
    def unconvert(cls, v: Tensor) -> Tensor:
        """The accumulated value: channel 2 of `v (3, *shape)`."""
        return v[2]

    @classmethod
    def _term(cls, logp: Tensor, logq: Tensor) -> Tensor:
        raise NotImplementedError

    @classmethod
    def sum(cls, xs: Tensor, dim: int = -1) -> Tensor:
        """Merge `xs (3, *shape)` along `dim` (never 0) into `(3, *rest)`:
        `[logsumexp P, logsumexp Q, sum_i p_i * (v_i + term_i)]`, `p = softmax(P)`,
        `q = softmax(Q)`.
        """
        d = normalize_dim(xs, dim) - 1  # the dim in one channel
        lp, lq, v = xs[0], xs[1], xs[2]
        logp = log_softmax(lp, d)
        logq = log_softmax(lq, d)
        p = torch.exp(logp)
        # Terms with p == 0 contribute 0; zero the logs there so no -inf enters value or gradient.
        keep = p > 0
        logp = torch.where(keep, logp, torch.zeros_like(logp))
        logq = torch.where(keep, logq, torch.zeros_like(logq))
        value = (p * (v + cls._term(logp, logq))).sum(d)
        return torch.stack([logsumexp(lp, d), logsumexp(lq, d), value], dim=0)


class CrossEntropySemiring(_TwoDistributionSemiring):
    """Cross-entropy semiring: `H(P, Q) = -sum_y P(y) log Q(y)` over structures `y`.

    * ssize 3: channels (P log-potential, Q log-potential, accumulated cross-entropy `v`).
    * zero `[-inf, -inf, 0]`; one `[0, 0, 0]`.
    * `convert([p, q])` takes a **list of two tensors** of one shape (the two models'
      log-potentials) and gives `[p, q, 0]`; `unconvert(v) = v[2]`.
    * `(x)`: channel-wise `+`.
    * `sum(xs, dim)`: `[logsumexp P, logsumexp Q, sum_i p_i * (v_i - log q_i)]` with
      `p = softmax(P, dim)`, `log q = log_softmax(Q, dim)`.

    Use it for the cross-entropy between two structured models (e.g. distillation). Terms with
    `p_i = 0` contribute 0. Where Q gives probability 0 (`-inf`) to a structure that P allows the
    result is `+inf`; a very negative finite score there gives a large finite value instead.
    """

    @classmethod
    def _term(cls, logp: Tensor, logq: Tensor) -> Tensor:
        return -logq
