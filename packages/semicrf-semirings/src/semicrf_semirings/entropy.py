"""The entropy semiring: the Shannon entropy of a distribution over structures."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor

from .base import LogSpaceSemiring, log_softmax, logsumexp, normalize_dim

__all__ = ["EntropySemiring"]


class EntropySemiring(LogSpaceSemiring):
    """Entropy semiring: element `(z, h)` = a set of structures of total weight `exp(z)` whose
    normalised distribution has entropy `h`.

    * ssize 2: channel 0 the log-potential `z`, channel 1 the entropy accumulator `h`.
    * zero `[-inf, 0]`; one `[0, 0]`.
    * `convert(x) = [x, 0]`; `unconvert(v) = v[1]` (the entropy, in nats).
    * `(x)`: channel-wise `+` (independent parts: log-weights add, entropies add).
    * `sum(xs, dim)`: with `p = softmax(z, dim)` (as `log p = log_softmax(z, dim)`),
      `[logsumexp(z), sum_i p_i * (h_i - log p_i)]`, the entropy of the mixture.

    Running a dynamic programme with it on `convert(log_potentials)` gives
    `H = -sum_y P(y) log P(y)` over all structures `y`, with `P(y) = exp(score(y)) / Z`.
    Terms with `p_i = 0` (a `-inf` log-potential, or a very negative one next to real ones)
    contribute 0; no NaN arises even when every `z_i` is `-inf`.
    """

    zero: ClassVar[Tensor] = torch.tensor([-math.inf, 0.0])
    one: ClassVar[Tensor] = torch.tensor([0.0, 0.0])

    @classmethod
    def size(cls) -> int:
        """2: (log-potential, entropy accumulator)."""
        return 2

    @classmethod
    def convert(cls, x: Tensor) -> Tensor:
        """`(2, *x.shape)`: `[x, 0]`."""
        return torch.stack([x, torch.zeros_like(x)], dim=0)

    @classmethod
    def unconvert(cls, v: Tensor) -> Tensor:
        """The entropy: channel 1 of `v (2, *shape)`."""
        return v[1]

    @classmethod
    def sum(cls, xs: Tensor, dim: int = -1) -> Tensor:
        """Merge the structures of `xs (2, *shape)` along `dim` (never 0) into `(2, *rest)`."""
        d = normalize_dim(xs, dim) - 1  # the dim in one channel
        z, h = xs[0], xs[1]
        logp = log_softmax(z, d)
        p = torch.exp(logp)
        # 0 * log 0 = 0: replace log p where p == 0 so neither value nor gradient sees -inf.
        logp = torch.where(p > 0, logp, torch.zeros_like(logp))
        return torch.stack([logsumexp(z, d), (p * (h - logp)).sum(d)], dim=0)
