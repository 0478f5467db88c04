"""The KL-divergence semiring: KL(P || Q) between two distributions over the same structures."""

from __future__ import annotations

from torch import Tensor

from .cross_entropy import _TwoDistributionSemiring

__all__ = ["KLDivergenceSemiring"]


class KLDivergenceSemiring(_TwoDistributionSemiring):
    """KL-divergence semiring: `KL(P || Q) = sum_y P(y) (log P(y) - log Q(y)) >= 0`.

    * ssize 3: channels (P log-potential, Q log-potential, accumulated divergence `v`).
    * zero `[-inf, -inf, 0]`; one `[0, 0, 0]`.
    * `convert([p, q])` takes a **list of two tensors** of one shape and gives `[p, q, 0]`;
      `unconvert(v) = v[2]`.
    * `(x)`: channel-wise `+`.
    * `sum(xs, dim)`: `[logsumexp P, logsumexp Q, sum_i p_i * (v_i + log p_i - log q_i)]` with
      `log p = log_softmax(P, dim)`, `log q = log_softmax(Q, dim)`.

    Use it to compare two structured models (`KL = H(P, Q) - H(P)`). Terms with `p_i = 0`
    contribute 0; a structure allowed by P and given probability 0 (`-inf`) by Q makes it `+inf`.
    """

    @classmethod
    def _term(cls, logp: Tensor, logq: Tensor) -> Tensor:
        return logp - logq
