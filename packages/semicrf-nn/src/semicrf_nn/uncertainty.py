"""``UncertaintySemiMarkovCRFHead``: posterior marginals, exact entropy, uncertainty-weighted loss.

Every quantity is exact for the head's model (conventions section 4), at any ``T`` with the
streaming backend:

* boundary marginal ``P(a segment starts at t)`` and position marginal ``P(label c at t)``:
  gradients of ``log Z`` with respect to a zero start bonus and to the per-position scores the
  model uses (one forward + backward of the kernels, Triton where available);
* entropy of the segmentation distribution: ``log Z - E[score]`` from one streaming
  forward/backward (``semicrf_kernels.streaming_marginals``), or with the
  ``EntropySemiring`` over the edge tensor (short ``T``).
"""

from __future__ import annotations

import math
import sys
import warnings

import torch

from semicrf_kernels import streaming_marginals
from semicrf_semirings import EntropySemiring, LogSemiring

from .head import REDUCTIONS, SemiMarkovCRFHead
from .masks import accepts_mask
from .preprocess import ModelInputs, cumulative_scores, position_mask
from .validation import check_choice

__all__ = ["FOCUS_MODES", "UncertaintySemiMarkovCRFHead"]

# Registered by importing semicrf_kernels (its public functions import the op modules).
ops = torch.ops.semicrf_kernels

FOCUS_MODES = ("high_uncertainty", "boundary_regions")


class UncertaintySemiMarkovCRFHead(SemiMarkovCRFHead):
    """``SemiMarkovCRFHead`` plus exact posterior marginals, entropy and an uncertainty-weighted
    loss. Same constructor and parameters; no extra state.

    Marginals and ``compute_entropy_streaming`` are computed without building a graph back to the
    encoder (they are returned detached); ``compute_entropy_exact`` is differentiable.
    """

    # ------------------------------------------------------------------ marginals
    def _log_z_inputs(
        self, hidden_states: torch.Tensor, lengths: torch.Tensor, backend: str
    ) -> tuple[str, ModelInputs]:
        backend = self._resolve_backend(backend)
        self._check(hidden_states, lengths)
        with torch.no_grad():
            inputs = self._prepare(hidden_states, lengths)
        return backend, inputs

    def _gradient_of_log_z(
        self,
        inputs: ModelInputs,
        lengths: torch.Tensor,
        backend: str,
        use_triton: bool,
        wrt: str,
    ) -> torch.Tensor:
        """``d sum_b log Z_b / d x`` for ``x`` = the per-position scores (``wrt="scores"``) or
        a zero bonus added to every segment start (``wrt="start"``); ``(batch, T, C)``."""
        if backend == "streaming":
            return self._streaming_gradient_of_log_z(inputs, lengths, use_triton, wrt)
        scores = inputs.scores.detach()
        cum = cumulative_scores(scores, scores.dtype)
        fixed_ps = None if inputs.proj_start is None else inputs.proj_start.detach()

        def log_z_sum(x: torch.Tensor) -> torch.Tensor:
            # x: the cumulative scores (wrt="scores") or a zero bonus on every segment start.
            ps = fixed_ps
            if wrt == "start":
                ps = x if ps is None else ps + x
            detached = ModelInputs(
                scores=scores,
                cum_scores=x if wrt == "scores" else cum,
                transition=inputs.transition.detach(),
                duration_bias=inputs.duration_bias.detach(),
                proj_start=ps,
                proj_end=None if inputs.proj_end is None else inputs.proj_end.detach(),
            )
            return self._semiring_sum(detached, lengths, backend, LogSemiring, use_triton).sum()

        x0 = cum if wrt == "scores" else torch.zeros_like(scores)
        if backend == "exact":
            # torch.func.grad is traced by torch.compile (fullgraph); torch.autograd.grad is not.
            grad = torch.func.grad(log_z_sum)(x0)
        else:
            # The sharded semiring's checkpointed products call torch.autograd inside their own
            # backward, which torch.func cannot transform: this backend stays eager-only.
            with torch.enable_grad():
                x = x0.detach().requires_grad_()
                (grad,) = torch.autograd.grad(log_z_sum(x), x)
        if wrt == "scores":
            grad = ops.cumulative_scores_backward.default(grad, scores.dtype)
        return grad.detach()

    def _streaming_gradient_of_log_z(
        self, inputs: ModelInputs, lengths: torch.Tensor, use_triton: bool, wrt: str
    ) -> torch.Tensor:
        """:meth:`_gradient_of_log_z` for the streaming backend without ``torch.autograd``.

        Calls the kernels' forward and backward operators directly with ``grad_output = 1``,
        so ``torch.compile`` traces it as one graph. The operators and casts are those autograd
        runs for the same gradient, so the results are bitwise the same.
        """
        scores = inputs.scores.detach()
        ps = None if inputs.proj_start is None else inputs.proj_start.detach()
        if wrt == "start" and ps is None:
            # The gradient with respect to a start bonus is the start projection's gradient;
            # adding a zero projection changes no value.
            ps = torch.zeros_like(scores)
        pe = None if inputs.proj_end is None else inputs.proj_end.detach()
        with torch.no_grad():
            cum = cumulative_scores(scores, scores.dtype)
            K, warps = self.max_duration, self.num_warps
            trans, bias = inputs.transition.detach(), inputs.duration_bias.detach()
            # with_backward: the backward scan runs alongside the forward one (Triton, (C, C)).
            partition, log_z, alpha, window, shift, *rows = ops.streaming_forward.default(
                cum, trans, bias, lengths, K, ps, pe, "log", bool(use_triton), int(warps), True
            )
            grad_cum, _, _, grad_ps, _ = ops.streaming_backward.default(
                torch.ones_like(partition), cum, trans, bias, lengths, K, ps, pe, log_z, alpha,
                window, shift, bool(use_triton), int(warps), *rows,
            )  # fmt: skip
            if wrt == "start":
                return grad_ps
            return ops.cumulative_scores_backward.default(grad_cum, scores.dtype)

    @accepts_mask
    def compute_boundary_marginals(
        self,
        hidden_states: torch.Tensor,
        lengths: torch.Tensor,
        backend: str = "auto",
        normalize: bool = True,
        *,
        use_triton: bool = True,
        use_streaming: bool | None = None,
    ) -> torch.Tensor:
        """``P(a segment starts at t)`` for every position.

        Args:
            hidden_states: ``(batch, T, hidden_dim)`` encoder output.
            lengths: ``(batch,)`` integer valid lengths.
            backend: ``"auto"``/``"streaming"`` (any ``T``), ``"exact"`` or
                ``"binary_tree_sharded"`` (edge tensor); the same numbers.
            normalize: clip the values into ``[0, 1]`` (they are probabilities already; this
                only removes floating-point rounding). Kept for API compatibility.
            use_triton: (keyword) let the kernels use Triton where available.
            use_streaming: (keyword, deprecated) the earlier name of ``backend``: ``True`` is
                ``backend="streaming"``, ``False`` is ``backend="exact"``. Accepted with a
                ``DeprecationWarning``; a bool passed positionally as ``backend`` is read the
                same way.

        Returns:
            ``(batch, T)`` float: 1 at ``t = 0``, 0 at padding; 0 everywhere for a sequence with
            no allowed segmentation.

        Raises:
            ValueError: ``use_streaming`` together with a ``backend`` other than ``"auto"`` that
                says otherwise.
        """
        backend = _backend_from_use_streaming(backend, use_streaming)
        backend, inputs = self._log_z_inputs(hidden_states, lengths, backend)
        grad = self._gradient_of_log_z(inputs, lengths, backend, use_triton, "start")
        boundary = grad.sum(dim=-1)
        boundary = torch.where(
            position_mask(lengths, boundary.shape[1]), boundary, torch.zeros_like(boundary)
        )
        return boundary.clamp(0.0, 1.0) if normalize else boundary

    @accepts_mask
    def compute_position_marginals(
        self,
        hidden_states: torch.Tensor,
        lengths: torch.Tensor,
        *,
        backend: str = "auto",
        use_triton: bool = True,
    ) -> torch.Tensor:
        """``P(position t has label c)``, exactly.

        It is the gradient of ``log Z`` with respect to the per-position scores the model uses
        (after centering when it is on).

        Args:
            hidden_states: ``(batch, T, hidden_dim)`` encoder output.
            lengths: ``(batch,)`` integer valid lengths.
            backend: (keyword) as in :meth:`compute_boundary_marginals`.
            use_triton: (keyword) let the kernels use Triton where available.

        Returns:
            ``(batch, T, C)`` float: rows sum to 1 at valid positions, 0 at padding (and 0 for a
            sequence with no allowed segmentation).
        """
        backend, inputs = self._log_z_inputs(hidden_states, lengths, backend)
        grad = self._gradient_of_log_z(inputs, lengths, backend, use_triton, "scores")
        return grad.clamp(0.0, 1.0)

    # ------------------------------------------------------------------ entropy
    @accepts_mask
    def compute_entropy_streaming(
        self, hidden_states: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        """Exact Shannon entropy (nats) of each sequence's segmentation distribution, any ``T``.

        ``H = log Z - E[score]``: the score is linear in the per-position scores, duration
        biases, between-segment transitions, boundary scores and start scores (each taken as
        its own input), so ``E[score]`` is the sum of each input times its posterior marginal.
        One streaming forward and backward in float64 (PyTorch), ``O(KC)`` state; not
        differentiable.

        Returns:
            ``(batch,)`` float (0 for a sequence with no allowed segmentation).
        """
        _, inputs = self._log_z_inputs(hidden_states, lengths, "streaming")
        f64 = torch.float64
        marg = streaming_marginals(
            inputs.cum_scores.to(f64),
            inputs.transition.to(f64),
            inputs.duration_bias.to(f64),
            lengths,
            self.max_duration,
            None if inputs.proj_start is None else inputs.proj_start.to(f64),
            None if inputs.proj_end is None else inputs.proj_end.to(f64),
            validate=self.validate,
        )
        # Rounding in log Z - E[score] can leave a tiny negative number for a near-deterministic
        # distribution; entropy is >= 0.
        return marg.entropy.clamp(min=0.0).to(inputs.cum_scores.dtype)

    @accepts_mask
    def compute_entropy_exact(
        self, hidden_states: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        """Exact entropy with the ``EntropySemiring`` over the ``(batch, T, K+1, C, C)`` edge tensor.

        For short sequences (the edge tensor must fit ``edge_memory_threshold``);
        differentiable. Equals :meth:`compute_entropy_streaming`.

        Returns:
            ``(batch,)`` float.
        """
        self._check(hidden_states, lengths)
        inputs = self._prepare(hidden_states, lengths)
        entropy = self._semiring_sum(inputs, lengths, "exact", EntropySemiring, use_triton=False)
        return entropy.to(inputs.cum_scores.dtype)

    # ------------------------------------------------------------------ weighted loss
    @accepts_mask
    def sequence_uncertainty(
        self,
        hidden_states: torch.Tensor,
        lengths: torch.Tensor,
        focus_mode: str = "high_uncertainty",
        *,
        use_triton: bool = True,
    ) -> torch.Tensor:
        """Per-sequence uncertainty ``u`` in ``[0, 1]`` used by the weighted loss (detached).

        * ``"high_uncertainty"``: the entropy rate relative to its largest possible value,
          ``u = H / (L log(2C))``. A segmentation is fixed by each position's label and whether
          a segment starts there (positions ``1..L-1``), so ``H <= L log C + (L-1) log 2``
          and ``u <= 1``; ``u = 0`` for a certain prediction.
        * ``"boundary_regions"``: how undecided the boundaries are,
          ``u = mean_{0 < t < L} 4 p_t (1 - p_t)`` with ``p_t`` the boundary marginal (1 where
          ``p_t = 1/2``); 0 when ``L = 1``.

        Returns:
            ``(batch,)`` detached, float32 (float64 when ``hidden_states`` is float64); the
            arithmetic is done in float64.
        """
        check_choice(focus_mode, "focus_mode", FOCUS_MODES)
        with torch.no_grad():
            L = lengths.to(torch.float64)
            if focus_mode == "high_uncertainty":
                H = self.compute_entropy_streaming(hidden_states, lengths).to(torch.float64)
                u = H / (L * math.log(2 * self.num_classes))
            else:
                p = self.compute_boundary_marginals(
                    hidden_states, lengths, use_triton=use_triton
                ).to(torch.float64)
                inner = position_mask(lengths, p.shape[1])
                inner[:, 0] = False
                spread = torch.where(inner, 4 * p * (1 - p), torch.zeros_like(p)).sum(dim=1)
                u = torch.where(L > 1, spread / (L - 1).clamp(min=1), torch.zeros_like(spread))
        out_dtype = torch.float64 if hidden_states.dtype == torch.float64 else torch.float32
        return u.clamp(0.0, 1.0).to(out_dtype)

    @accepts_mask
    def compute_loss_uncertainty_weighted(
        self,
        hidden_states: torch.Tensor,
        lengths: torch.Tensor,
        labels: torch.Tensor,
        uncertainty_weight: float = 1.0,
        focus_mode: str = "high_uncertainty",
        use_triton: bool = False,
        reduction: str = "mean",
    ) -> torch.Tensor:
        """NLL weighted per sequence by its uncertainty: ``(1 + w * u) * NLL``.

        ``u`` (:meth:`sequence_uncertainty`, in ``[0, 1]``) is detached, so the gradient is the
        NLL's gradient scaled per sequence; sequences the model is unsure about weigh up to
        ``1 + w`` times more (active learning, hard-example focus).

        Args:
            hidden_states: ``(batch, T, hidden_dim)`` encoder output.
            lengths: ``(batch,)`` integer valid lengths.
            labels: ``(batch, T)`` integer gold labels.
            uncertainty_weight: ``w >= 0``.
            focus_mode: ``"high_uncertainty"`` or ``"boundary_regions"``.
            use_triton: let the kernels use Triton where available.
            reduction: ``"mean"``, ``"sum"`` or ``"none"``.

        Returns:
            Scalar (``(batch,)`` for ``"none"``).
        """
        check_choice(focus_mode, "focus_mode", FOCUS_MODES)
        check_choice(reduction, "reduction", REDUCTIONS)
        if not (
            isinstance(uncertainty_weight, (int, float))
            and uncertainty_weight >= 0
            and math.isfinite(uncertainty_weight)
        ):
            raise ValueError(
                f"uncertainty_weight must be a finite number >= 0, got {uncertainty_weight!r}"
            )
        nll = self._nll(hidden_states, lengths, labels, None, use_triton, "auto")
        u = self.sequence_uncertainty(hidden_states, lengths, focus_mode, use_triton=use_triton)
        weighted = (1 + uncertainty_weight * u.to(nll.dtype)) * nll
        return self._reduce(weighted, reduction)


def _backend_from_use_streaming(backend: object, use_streaming: bool | None) -> object:
    """``backend``, after reading the deprecated ``use_streaming`` flag into it.

    Earlier code calls ``compute_boundary_marginals(h, lengths, use_streaming=True)`` or passes
    the flag third, where ``backend`` now is: both still work, with a warning naming the
    replacement.
    """
    if isinstance(backend, bool):
        if use_streaming is not None:
            raise ValueError(
                f"compute_boundary_marginals got a bool backend={backend} (the deprecated "
                f"positional use_streaming) and use_streaming={use_streaming}; pass backend="
                "'streaming' or 'exact' alone"
            )
        use_streaming, backend = backend, "auto"
    if use_streaming is None:
        return backend
    if not isinstance(use_streaming, bool):
        raise TypeError(f"use_streaming must be a bool, got {type(use_streaming).__name__}")
    replacement = "streaming" if use_streaming else "exact"
    # Point the warning at the caller's line, past this package's frames (decorators included).
    frame, level = sys._getframe(0), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("semicrf_nn"):
        frame, level = frame.f_back, level + 1
    warnings.warn(
        f"compute_boundary_marginals(use_streaming={use_streaming}) is deprecated; use "
        f"backend={replacement!r} instead",
        DeprecationWarning,
        stacklevel=level,
    )
    if backend not in ("auto", replacement):
        raise ValueError(
            f"use_streaming={use_streaming} (backend={replacement!r}) contradicts "
            f"backend={backend!r}; pass backend alone"
        )
    return replacement
