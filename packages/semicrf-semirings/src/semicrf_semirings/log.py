"""The log semiring (sum-product in log space): partition functions and marginals."""

from __future__ import annotations

from torch import Tensor

from .base import LogSpaceSemiring, logsumexp, normalize_dim

__all__ = ["LogSemiring"]


class LogSemiring(LogSpaceSemiring):
    """Log semiring: `a (+) b = log(exp(a) + exp(b))`, `a (x) b = a + b`.

    * ssize 1; zero `-inf` (log 0), one `0`.
    * `sum(xs, dim)` is the log-sum-exp along `dim`; `prod` is the sum.
    * `matmul(a, b)[i, j] = logsumexp_l a[i, l] + b[l, j]`.

    Use it for the log partition function `log Z`; its gradients with respect to log-potentials are
    the marginal probabilities. The log-sum-exp has a finite gradient (0, not NaN) even where every
    reduced input is `-inf`.
    """

    @classmethod
    def sum(cls, xs: Tensor, dim: int = -1) -> Tensor:
        """Log-sum-exp of the converted tensor `xs (1, *shape)` along `dim` (never 0)."""
        return logsumexp(xs, normalize_dim(xs, dim))
