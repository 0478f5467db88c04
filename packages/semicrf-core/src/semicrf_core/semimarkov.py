"""`SemiMarkov`: partition functions, marginals and scores of semi-Markov structures over edges.

Edge model (conventions section 3, pytorch-struct's): `edge (batch, N-1, K, C, C)`,
`edge[b, s, d, c_dst, c_src]` scores a segment starting at fence `s` with duration `d` (index 0
unused, so `1 <= d <= K-1`), label `c_dst`, previous label `c_src`. A structure is a start label
(the first segment's `c_src`) and a segmentation of the sequence's `lengths[b] - 1` positions;
`lengths` count fences, `2 <= lengths <= N`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from semicrf_semirings import CheckpointShardSemiring, LogSemiring, Semiring

from . import parts as _parts
from .algorithms import (
    banded_tree,
    binary_tree,
    block_triangular_tree,
    linear_scan,
    vectorized_scan,
)
from .brute_force import Structure, brute_force_logpartition
from .validation import check_lengths, check_potentials, check_semiring

__all__ = [
    "AUTO_TREE_MAX_ELEMENTS_CPU",
    "AUTO_TREE_MAX_ELEMENTS_GPU",
    "AUTO_TREE_MAX_KC_GPU",
    "AUTO_TREE_MAX_STATES_CPU",
    "SemiMarkov",
]

#: Auto rule on the CPU: the binary tree only when its state count `(K-1) * C` is at most this
#: (beyond about 12 states its `((K-1) C)^3` work per step loses to the scans' per-step
#: overhead) and its first round broadcasts at most `AUTO_TREE_MAX_ELEMENTS_CPU` elements
#: (`ssize * batch * (N-1)/2 * ((K-1) C)^3`). Measured in docs/core.md.
AUTO_TREE_MAX_STATES_CPU = 12
AUTO_TREE_MAX_ELEMENTS_CPU = 2**24
#: Auto rule on other devices (GPUs): the tree when `K * C` is at most this and its first round
#: broadcasts at most `AUTO_TREE_MAX_ELEMENTS_GPU` elements (512 MiB in float32); there its
#: log-depth wins by 50-260x at `(K-1) C = 20` (docs/core.md).
AUTO_TREE_MAX_KC_GPU = 200
AUTO_TREE_MAX_ELEMENTS_GPU = 2**27

Potentials = Tensor | Sequence[Tensor]


def _check_flag(name: str, value: object, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool{' or None' if allow_none else ''}, got {value!r}")


class SemiMarkov:
    """Semi-Markov CRF over edge potentials, parameterised by a semiring.

    Args:
        semiring: a semiring class from `semicrf_semirings` (default `LogSemiring`): log gives
            `log Z`, max the Viterbi score, `KMaxSemiring(k)` the k best scores, entropy the
            entropy of the structure distribution, cross-entropy/KL compare two edge tensors
            given as a list `[p, q]`.

    Example:
        >>> import torch
        >>> from semicrf_core import SemiMarkov
        >>> edge = torch.randn(2, 5, 3, 4, 4)  # batch 2, N = 6 fences, durations 1..2, C = 4
        >>> log_z = SemiMarkov().sum(edge, lengths=torch.tensor([6, 4]))
        >>> log_z.shape
        torch.Size([2])
    """

    def __init__(self, semiring: type[Semiring] = LogSemiring) -> None:
        self.semiring = check_semiring(semiring)

    def _prepare(
        self, log_potentials: Potentials, lengths: Tensor | None, force_grad: bool
    ) -> tuple[Tensor, Tensor]:
        xs, (B, N, _, _) = check_potentials(log_potentials)
        # Half-precision potentials are accumulated in float32 (conventions section 5).
        xs = [x.float() if x.dtype in (torch.float16, torch.bfloat16) else x for x in xs]
        if force_grad:
            # A fresh alias of the caller's tensor: requires_grad_ on it leaves theirs untouched.
            xs = [x if x.requires_grad else x.detach().requires_grad_(True) for x in xs]
        lens = check_lengths(lengths, B, N, xs[0].device)
        return self._convert(log_potentials, xs), lens

    def _convert(self, log_potentials: Potentials, xs: list[Tensor]) -> Tensor:
        if isinstance(log_potentials, Tensor):
            return self.semiring.convert(xs[0])
        try:
            return self.semiring.convert(xs)
        except (AttributeError, TypeError) as err:  # a one-tensor semiring given a list
            raise TypeError(
                f"{self.semiring.__name__} takes log_potentials as one tensor, got a list of "
                f"{len(xs)}"
            ) from err

    def _choose(
        self,
        edge: Tensor,
        use_linear_scan: bool | None,
        use_vectorized: bool,
        use_banded: bool,
        use_block_triangular: bool,
        checkpoint_shards: int | None,
    ) -> str:
        for name, v in (
            ("use_vectorized", use_vectorized),
            ("use_banded", use_banded),
            ("use_block_triangular", use_block_triangular),
        ):
            _check_flag(name, v)
        _check_flag("use_linear_scan", use_linear_scan, allow_none=True)
        if checkpoint_shards is not None and (
            isinstance(checkpoint_shards, bool)
            or not isinstance(checkpoint_shards, int)
            or checkpoint_shards < 1
        ):
            raise ValueError(
                f"checkpoint_shards must be None or an int >= 1 (max elements per shard), got "
                f"{checkpoint_shards!r}"
            )
        chosen = [
            n
            for n, on in (
                ("use_banded", use_banded),
                ("use_block_triangular", use_block_triangular),
                ("checkpoint_shards", checkpoint_shards is not None),
                ("use_vectorized", use_vectorized),
            )
            if on
        ]
        if len(chosen) > 1:
            raise ValueError(f"choose at most one of {', '.join(chosen)}; got them together")
        tree_like = use_banded or use_block_triangular or checkpoint_shards is not None
        if tree_like and use_linear_scan is True:
            raise ValueError(
                f"{chosen[0]} is a tree algorithm; it needs use_linear_scan False/None"
            )
        if use_vectorized and use_linear_scan is False:
            raise ValueError(
                "use_vectorized=True is a linear scan; it needs use_linear_scan True/None"
            )
        if use_banded:
            return "banded"
        if use_block_triangular:
            return "block_triangular"
        if checkpoint_shards is not None:
            return "sharded"
        if use_vectorized:
            return "vectorized"
        if use_linear_scan is None:
            S, B, T, K, C, _ = edge.shape
            n = (K - 1) * C
            tree_elements = S * B * max(T // 2, 1) * n**3
            if edge.device.type == "cpu":
                small = (
                    n <= AUTO_TREE_MAX_STATES_CPU and tree_elements <= AUTO_TREE_MAX_ELEMENTS_CPU
                )
            else:
                small = (
                    K * C <= AUTO_TREE_MAX_KC_GPU and tree_elements <= AUTO_TREE_MAX_ELEMENTS_GPU
                )
            use_linear_scan = not small
        return "linear" if use_linear_scan else "tree"

    def logpartition(
        self,
        log_potentials: Potentials,
        lengths: Tensor | None = None,
        force_grad: bool = False,
        use_linear_scan: bool | None = None,
        use_vectorized: bool = False,
        use_banded: bool = False,
        *,
        use_block_triangular: bool = False,
        checkpoint_shards: int | None = None,
    ) -> tuple[Tensor, list[Tensor], None]:
        """The semiring sum over all structures of the product of their edge potentials.

        Args:
            log_potentials: `(batch, N-1, K, C, C)` float (`edge[b, s, d, c_dst, c_src]`, index
                `d` = duration, 0 unused); a list `[p, q]` of two such tensors for CrossEntropy
                and KL. float16/bfloat16 are computed in float32.
            lengths: `(batch,)` integer fences per sequence in `[2, N]`, or None for all `N`.
            force_grad: make the returned edge require grad (a fresh alias of the input; the
                caller's tensor is never modified) so that gradients can be taken w.r.t. it.
            use_linear_scan: True: O(N) scan; False: O(log N)-depth binary tree; None: auto.
                On the CPU the tree when `(K-1) * C <= 12` and its first round broadcasts at
                most `2**24` elements (`ssize * batch * (N-1)/2 * ((K-1) C)^3`); on other
                devices the tree when `K * C <= 200` and that count is at most `2**27`;
                otherwise the ring-buffer scan (measurements in docs/core.md).
            use_vectorized: the linear scan with hoisted gathers (faster, O(N K C^2) memory).
            use_banded: the banded prototype (Log and Max semirings only).
            use_block_triangular: the block-triangular tree (keyword only).
            checkpoint_shards: the sharded-checkpoint tree: the binary tree whose matmuls run
                through `CheckpointShardSemiring(semiring, checkpoint_shards)`, i.e. in chunks of
                at most this many intermediate elements, recomputed in backward (keyword only).

        Returns:
            `(v, [edge], None)`: `v (ssize, batch)` the converted value (`semiring.unconvert(v)`
            gives `(batch,)`), `edge (ssize, batch, N-1, K, C, C)` the converted potentials used.

        Raises:
            TypeError: wrong types.
            ValueError: wrong shapes (ndim, `C_dst != C_src`, `K < 2`), NaN or `+inf`
                potentials, lengths outside `[2, N]` (these two value checks run in eager mode
                only, not under `torch.compile`), contradictory options, or `use_banded` with a
                semiring other than log or max.
        """
        _check_flag("force_grad", force_grad)
        edge, lens = self._prepare(log_potentials, lengths, force_grad)
        algorithm = self._choose(
            edge,
            use_linear_scan,
            use_vectorized,
            use_banded,
            use_block_triangular,
            checkpoint_shards,
        )
        s = self.semiring
        if algorithm == "linear":
            v = linear_scan(s, edge, lens)
        elif algorithm == "vectorized":
            v = vectorized_scan(s, edge, lens)
        elif algorithm == "tree":
            v = binary_tree(s, edge, lens)
        elif algorithm == "sharded":
            v = binary_tree(s, edge, lens, CheckpointShardSemiring(s, checkpoint_shards))
        elif algorithm == "block_triangular":
            v = block_triangular_tree(s, edge, lens)
        else:
            v = banded_tree(s, edge, lens)
        return v, [edge], None

    def sum(
        self,
        log_potentials: Potentials,
        lengths: Tensor | None = None,
        _raw: bool = False,
        **kwargs: object,
    ) -> Tensor:
        """`semiring.unconvert` of `logpartition`: `(batch,)` (log Z, Viterbi score, best k-max
        score, entropy, cross-entropy or KL); with `_raw=True` the converted `(ssize, batch)`.

        `kwargs` are `logpartition`'s algorithm options.
        """
        v = self.logpartition(log_potentials, lengths, **kwargs)[0]
        return v if _raw else self.semiring.unconvert(v)

    def marginals(
        self,
        log_potentials: Potentials,
        lengths: Tensor | None = None,
        _raw: bool = False,
        **kwargs: object,
    ) -> Tensor | list[Tensor]:
        """Gradient of `sum(semiring.unconvert(v))` with respect to the potentials.

        For `LogSemiring` the posterior edge marginals `P(segment (s, d, c_dst) after c_src)`, in
        `[0, 1]`; for `MaxSemiring` the 0/1 indicators of one best structure; for other semirings
        the gradient of their value (e.g. of the entropy).

        Args:
            log_potentials: as in `logpartition`.
            lengths: as in `logpartition`.
            _raw: as pytorch-struct: one marginal per semiring channel, stacked. Channel `k` is
                the gradient of `v[k].sum()` with respect to the converted potentials,
                unconverted by the semiring (for `KMaxSemiring(k)`: the 0/1 edges of the k-th
                best structure; for Log and Max: `marginals(...)[None]`).
            kwargs: `logpartition`'s algorithm options.

        Returns:
            `(batch, N-1, K, C, C)` in the input dtype (a list of such for a list input);
            entries the model never uses (index 0, segments past a sequence's end) are 0. If the
            input requires grad the result is differentiable (double backward). With `_raw=True`:
            `(ssize, batch, N-1, K, C, C)`, one tensor even for a list input.
        """
        _check_flag("_raw", _raw)
        if _raw:
            return self._raw_marginals(log_potentials, lengths, **kwargs)
        xs, _ = check_potentials(log_potentials)
        differentiable = torch.is_grad_enabled() and any(x.requires_grad for x in xs)
        leaves = [x if x.requires_grad else x.detach().requires_grad_(True) for x in xs]
        arg = leaves[0] if isinstance(log_potentials, Tensor) else leaves
        with torch.enable_grad():
            v = self.logpartition(arg, lengths, **kwargs)[0]
            total = self.semiring.unconvert(v).sum()
            grads = torch.autograd.grad(
                total, leaves, create_graph=differentiable, allow_unused=True
            )
        out = [torch.zeros_like(x) if g is None else g for g, x in zip(grads, leaves)]
        return out[0] if isinstance(log_potentials, Tensor) else out

    def _raw_marginals(
        self, log_potentials: Potentials, lengths: Tensor | None, **kwargs: object
    ) -> Tensor:
        """`marginals(..., _raw=True)`: `(ssize, batch, N-1, K, C, C)`, see there."""
        if "force_grad" in kwargs:
            raise TypeError("marginals() takes no force_grad: it always differentiates")
        xs, _ = check_potentials(log_potentials)
        differentiable = torch.is_grad_enabled() and any(x.requires_grad for x in xs)
        with torch.enable_grad():
            v, (edge,), _ = self.logpartition(log_potentials, lengths, force_grad=True, **kwargs)
            out = []
            for k in range(v.shape[0]):
                (g,) = torch.autograd.grad(
                    v[k].sum(), edge, create_graph=differentiable, retain_graph=True,
                    allow_unused=True,
                )  # fmt: skip
                out.append(self.semiring.unconvert(torch.zeros_like(edge) if g is None else g))
        return torch.stack(out).to(xs[0].dtype)

    def score(self, potentials: Tensor, parts: Tensor) -> Tensor:
        """Semiring product of the potentials a structure selects.

        Args:
            potentials: `(batch, N-1, K, C, C)`.
            parts: `(batch, N-1, K, C, C)`, nonzero where the structure uses an edge (e.g.
                `to_parts`).

        Returns:
            `(batch,)`: `semiring.unconvert` of the (x)-product of the selected potentials (for
            log-space semirings their sum).
        """
        if not isinstance(potentials, Tensor):
            raise TypeError(f"potentials must be a torch.Tensor, got {type(potentials).__name__}")
        check_potentials(potentials, "potentials")
        if not isinstance(parts, Tensor) or parts.shape != potentials.shape:
            raise ValueError(
                f"parts must be a tensor of the potentials' shape {tuple(potentials.shape)}, "
                f"got {tuple(parts.shape) if isinstance(parts, Tensor) else type(parts).__name__}"
            )
        s = self.semiring
        conv = s.convert(potentials)
        one = s.one.to(dtype=conv.dtype, device=conv.device).view(-1, *([1] * (conv.dim() - 1)))
        chosen = torch.where((parts != 0).unsqueeze(0), conv, one)
        return s.unconvert(s.prod(chosen.reshape(conv.shape[0], conv.shape[1], -1), dim=-1))

    def enumerate(
        self, log_potentials: Potentials, lengths: Tensor | None = None, _raw: bool = False
    ) -> tuple[Tensor, list[list[Structure]]]:
        """Brute force: the semiring sum over every (start label, segmentation, labels).

        For checking tiny cases (the number of structures grows exponentially in N).

        Returns:
            `(value, structures)`: `(batch,)` unconverted (converted `(ssize, batch)` with
            `_raw=True`), and per sequence the list of `Structure`s enumerated.
        """
        xs, (B, N, _, _) = check_potentials(log_potentials)
        lens = check_lengths(lengths, B, N, xs[0].device)
        self._convert(log_potentials, xs)  # the semiring accepts this input
        arg = xs[0] if isinstance(log_potentials, Tensor) else xs
        v, structs = brute_force_logpartition(self.semiring, arg, lens)
        return (v if _raw else self.semiring.unconvert(v)), structs

    to_parts = staticmethod(_parts.to_parts)
    from_parts = staticmethod(_parts.from_parts)
    hsmm = staticmethod(_parts.hsmm)
